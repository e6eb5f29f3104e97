"""A training job long enough to kill or clear while it is deferred (used by the live test)."""

from __future__ import annotations

from datetime import datetime

from airflow.sdk import dag

from airflow_trainkit.operators.training import TrainModelOperator


@dag(
    dag_id="live_training",
    schedule=None,
    start_date=datetime(2026, 1, 1),
    catchup=False,
    params={"seconds": 20},
)
def live_training():
    TrainModelOperator(
        task_id="train",
        backend="onprem",
        spec={
            "command": ["sh", "-c", "echo started; sleep {{ params.seconds }}; echo finished"],
            "max_runtime": 600,
        },
        poll_interval=1,
    )


live_training()
