"""Train on Azure ML serverless spot capacity with checkpoints, and report the billed seconds and the Studio link.

Needs an azure provider ``azure`` connection ``azure_default`` (a service principal's client id and
secret with ``tenantId`` in its extra, or a managed or workload identity) whose extra names
``subscriptionId``, ``resource_group_name`` and ``workspace_name``; an image with trainkit's
built-in trainer installed (or a registered environment, ``azureml:<name>:<version>``), and a
datastore (here ``workspaceblobstore``) for data, checkpoints and the model. Nothing is read and no
connection is opened when the DAG is parsed.
"""

from __future__ import annotations

from datetime import datetime

from airflow.sdk import DAG, Param

from airflow_trainkit.operators.training import TrainModelOperator

# [START example_azure_ml_spot_training]
with DAG(
    dag_id="example_azure_ml_spot_training",
    start_date=datetime(2026, 1, 1),
    schedule=None,
    catchup=False,
    params={
        "datastore": Param("workspaceblobstore", type="string"),
        "image": Param("myregistry.azurecr.io/training/churn-xgboost:1", type="string"),
    },
    tags=["trainkit", "azure_ml"],
) as dag:
    train = TrainModelOperator(
        task_id="train_churn_model",
        backend="azure_ml",
        backend_conn_id="azure_default",
        spec={
            "image": "{{ params.image }}",
            "command": ["python", "-m", "airflow_trainkit.trainers.xgboost"],
            "inputs": {"train": "azureml://datastores/{{ params.datastore }}/paths/churn/train/"},
            "output_uri": "azureml://datastores/{{ params.datastore }}/paths/churn/models/",
            "hyperparameters": {"target": "churned", "num_boost_round": 200, "max_depth": 5},
            "accelerator": "T4:1",
            "spot": True,  # serverless compute, job tier Spot
            "max_runtime": "2h",
            "checkpoint_uri": (
                "azureml://datastores/{{ params.datastore }}/paths/churn/checkpoints/"
                "{{ run_id | replace(':', '-') | replace('+', '-') }}/"
            ),
        },
    )
# [END example_azure_ml_spot_training]
