"""Train XGBoost on a GPU server over SSH: the on-prem backend with its SSH transport.

Needs a ``trainkit_onprem`` connection ``trainkit_onprem_ssh`` whose extra names the GPU hosts,
``{"transport": "ssh", "hosts": [{"ssh_conn_id": "gpu_server_1", "root": "/srv/trainkit-jobs",
"gpus": "0:A100,1:A100"}]}``, and for each host an ``ssh`` connection (host, port, login, private
key or key file, and ``host_key``: host keys are checked). The host needs Python 3.11+ with
xgboost, numpy, pandas, scikit-learn and pyarrow; trainkit's trainer is shipped with each job.

Inputs and outputs are paths on the GPU host. This example writes the model to ``output_uri`` on
storage the workers see too (the ``shared`` param: an NFS mount on both, or an object-store URI),
so the next task reads the model on a worker. Nothing is read and no connection is opened when
the DAG is parsed.
"""

from __future__ import annotations

from datetime import datetime

from airflow.sdk import DAG, Param, task

from airflow_trainkit.home import trainkit_home
from airflow_trainkit.operators.training import TrainModelOperator

# The folder both the workers and the GPU hosts mount; the default suits one machine (and the tests).
SHARED = str(trainkit_home() / "shared")

# [START example_onprem_ssh_training]
with DAG(
    dag_id="example_onprem_ssh_training",
    start_date=datetime(2026, 1, 1),
    schedule=None,
    catchup=False,
    params={"shared": Param(SHARED, type="string")},
    tags=["trainkit", "onprem", "ssh"],
) as dag:

    @task
    def prepare_data(params: dict) -> str:
        """Write the training table where the GPU host reads it (the shared folder)."""
        from airflow_trainkit.demo.data import write_churn_dataset

        uri = f"{params['shared']}/data/churn_train.parquet"
        write_churn_dataset(uri, rows=2000, seed=7)
        return uri

    train = TrainModelOperator(
        task_id="train_on_gpu_server",
        backend="onprem",
        backend_conn_id="trainkit_onprem_ssh",
        spec={
            "command": ["python", "-m", "airflow_trainkit.trainers.xgboost"],
            "inputs": {"train": "{{ params.shared }}/data/churn_train.parquet"},
            "output_uri": "{{ params.shared }}/models/{{ run_id | replace(':', '_') | replace('+', '_') }}",
            "hyperparameters": {"target": "churned", "drop_columns": "customer_id"},
            "accelerator": "A100:1",
            "allow_cpu": True,  # a host without GPUs trains on CPU
            "max_runtime": "1h",
        },
        poll_interval=2,
    )

    @task
    def report(result: dict) -> dict:
        """The model is on shared storage: read back here, on a worker, not on the GPU host."""
        from pathlib import Path

        model_files = sorted(p.name for p in Path(result["output_uri"]).iterdir())
        return {
            "host": result["details"]["host"],
            "job": result["job_id"],
            "metrics": result["metrics"],
            "model_files": model_files,
        }

    prepare_data() >> train
    report(train.output)
# [END example_onprem_ssh_training]
