"""The live tuning DAG: a four-trial search on the on-prem backend, two trials in flight at once,
each a short real run of the built-in XGBoost trainer. The test writes the demo table the trials
train on (``<trainkit home>/data/live_tuning_churn.parquet``) before it triggers a run."""

from __future__ import annotations

from datetime import datetime

from airflow.sdk import DAG

from airflow_trainkit.home import trainkit_home
from airflow_trainkit.operators.tuning import TuneModelOperator

DATA = str(trainkit_home() / "data" / "live_tuning_churn.parquet")

with DAG(dag_id="live_tuning", schedule=None, start_date=datetime(2026, 1, 1), catchup=False):
    TuneModelOperator(
        task_id="tune",
        backend="onprem",
        spec={
            "command": ["python", "-m", "airflow_trainkit.trainers.xgboost"],
            "inputs": {"train": DATA},
            "hyperparameters": {
                "target": "churned",
                "drop_columns": "customer_id",
                "num_boost_round": 30,
                "early_stopping_rounds": 0,
            },
            "max_runtime": "10m",
        },
        search_space={
            "learning_rate": {"type": "float", "low": 0.05, "high": 0.5, "log": True},
            "max_depth": {"type": "int", "low": 2, "high": 4},
        },
        objective="auc_roc",
        n_trials=4,
        parallel=2,
        seed=3,
        poll_interval=1,
        track_in_mlflow=False,
    )
