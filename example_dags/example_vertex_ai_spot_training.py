"""Train on Vertex AI Spot VMs with checkpoints, and report the billed seconds and the console link.

Needs a google provider ``google_cloud_platform`` connection ``google_cloud_default`` (credentials as
the google provider reads them; ``project`` and optionally ``region`` in its extra), a training image
in Artifact Registry and a Cloud Storage bucket for data, checkpoints and the model. Nothing is read
and no connection is opened when the DAG is parsed.
"""

from __future__ import annotations

from datetime import datetime

from airflow.sdk import DAG, Param

from airflow_trainkit.operators.training import TrainModelOperator

# [START example_vertex_ai_spot_training]
with DAG(
    dag_id="example_vertex_ai_spot_training",
    start_date=datetime(2026, 1, 1),
    schedule=None,
    catchup=False,
    params={
        "bucket": Param("trainkit-demo", type="string"),
        "image": Param("europe-docker.pkg.dev/my-project/training/churn-xgboost:1", type="string"),
    },
    tags=["trainkit", "vertex_ai"],
) as dag:
    train = TrainModelOperator(
        task_id="train_churn_model",
        backend="vertex_ai",
        backend_conn_id="google_cloud_default",
        spec={
            "image": "{{ params.image }}",
            "command": ["python", "-m", "airflow_trainkit.trainers.xgboost"],
            "inputs": {"train": "gs://{{ params.bucket }}/churn/train/"},
            "output_uri": "gs://{{ params.bucket }}/churn/models/",
            "hyperparameters": {"target": "churned", "num_boost_round": 200, "max_depth": 5},
            "accelerator": "T4:1",
            "spot": True,
            "max_runtime": "2h",
            "checkpoint_uri": "gs://{{ params.bucket }}/churn/checkpoints/{{ run_id | replace(':', '-') }}/",
        },
    )
# [END example_vertex_ai_spot_training]
