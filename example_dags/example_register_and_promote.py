"""Register a trained churn model in MLflow 3 and promote it past the quality gate.

Needs the ``mlflow`` and ``xgboost`` extras, nothing else: without a ``trainkit_mlflow_default``
connection it uses the embedded registry (sqlite + artifacts under ``$AIRFLOW_HOME/trainkit/mlflow``).

Trains the churn model with the built-in trainer on the on-prem backend (CPU if the host has no
GPU), then registers it with its lineage and promotes it. The churn data is generated in a task.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from airflow.sdk import dag, task

from airflow_trainkit.home import trainkit_home
from airflow_trainkit.operators.registry import PromoteModelOperator, RegisterModelOperator
from airflow_trainkit.operators.training import TrainModelOperator

MODEL_NAME = "churn-example"
DATA_URI = str(trainkit_home() / "data" / "churn_register_example.parquet")
# What the demo-sized model meets; the defaults (the guide's checklist) stay stricter.
DEMO_THRESHOLDS = {"auc_roc": 0.80, "f1_weighted": 0.70, "log_loss": 0.35}


@dag(
    dag_id="example_register_and_promote",
    schedule=None,
    start_date=datetime(2026, 1, 1),
    catchup=False,
    tags=["trainkit", "example"],
)
def example_register_and_promote() -> None:
    @task
    def churn_table() -> str:
        from airflow_trainkit.demo.data import write_churn_dataset

        return str(write_churn_dataset(DATA_URI, rows=4000, seed=11))

    train = TrainModelOperator(
        task_id="train",
        backend="onprem",
        spec={
            "command": ["python", "-m", "airflow_trainkit.trainers.xgboost"],
            "inputs": {"train": DATA_URI},
            "hyperparameters": {"target": "churned", "drop_columns": "customer_id"},
            "accelerator": "gpu:1",
            "allow_cpu": True,
            "max_runtime": "30m",
        },
        poll_interval=1,
    )
    churn_table() >> train

    # [START register_and_promote]
    register = RegisterModelOperator(
        task_id="register",
        model_name=MODEL_NAME,
        training_result=train.output,
    )
    promote = PromoteModelOperator(
        task_id="promote",
        model_name=MODEL_NAME,
        thresholds=DEMO_THRESHOLDS,
        compare_to="champion",
        on_failure="skip",
    )
    # [END register_and_promote]

    @task
    def summary(registered: dict[str, Any], decision: dict[str, Any]) -> str:
        uri = registered["tracking_uri"]
        ui = f"mlflow ui --backend-store-uri {uri}" if uri.startswith("sqlite") else uri
        text = (
            f"{MODEL_NAME} version {decision['version']} is @champion ({decision['decision']}; "
            f"previous champion: {decision['previous_champion']}). Load it with "
            f"mlflow.pyfunc.load_model('models:/{MODEL_NAME}@champion'). Open the MLflow UI: {ui}"
        )
        print(text)
        return text

    register >> promote
    summary(register.output, promote.output)


example_dag = example_register_and_promote()
