"""Train XGBoost data-parallel on a Ray cluster through the Ray Jobs API, and read back the metrics.

Needs a ``trainkit_ray`` connection ``trainkit_ray_default`` whose host is the cluster's dashboard
(``http://ray-head:8265``; its password the cluster's token, if token authentication is on). The
cluster needs Python with ``ray``, ``xgboost``, ``pandas``, ``pyarrow`` and ``scikit-learn``; it needs
neither Airflow nor trainkit (the job carries the trainer). ``data_dir`` and the output must be
storage that every node and the Airflow worker can read (a shared folder here; ``s3://`` or ``gs://``
on a real cluster). Nothing is read and no connection is opened when the DAG is parsed.
"""

from __future__ import annotations

from datetime import datetime

from airflow.sdk import DAG, Param, task

from airflow_trainkit.home import trainkit_home
from airflow_trainkit.operators.training import TrainModelOperator

SHARED = str(trainkit_home() / "ray")

# [START example_ray_cluster_training]
with DAG(
    dag_id="example_ray_cluster_training",
    start_date=datetime(2026, 1, 1),
    schedule=None,
    catchup=False,
    params={
        "data_dir": Param(f"{SHARED}/data", type="string"),
        "models_dir": Param(f"{SHARED}/models", type="string"),
        "workers": Param(2, type="integer", minimum=1),
    },
    tags=["trainkit", "ray"],
    render_template_as_native_obj=True,  # instance_count from the params stays a number
) as dag:

    @task
    def prepare_data(params=None) -> str:
        """Write the demo churn table where the cluster's nodes can read it."""
        from airflow_trainkit.demo.data import write_churn_dataset

        return str(write_churn_dataset(f"{params['data_dir']}/churn.parquet", rows=3000, seed=7))

    train = TrainModelOperator(
        task_id="train_churn_model",
        backend="ray",
        backend_conn_id="trainkit_ray_default",
        spec={
            "command": ["python", "-m", "airflow_trainkit.trainers.xgboost"],
            "inputs": {"train": "{{ ti.xcom_pull(task_ids='prepare_data') }}"},
            "output_uri": "{{ params.models_dir }}/{{ run_id | replace(':', '-') | replace('+', '-') }}",
            "hyperparameters": {"target": "churned", "drop_columns": "customer_id", "num_boost_round": 200},
            # More than one instance: the built-in trainer trains across that many Ray workers.
            "instance_count": "{{ params.workers }}",
            "max_runtime": "30m",
            "tags": {"model": "churn"},
        },
        poll_interval=5,
    )

    prepare_data() >> train
# [END example_ray_cluster_training]
