"""Retrain the churn model when the weekly drift check finds drift.

Scheduled on the asset ``x-trainkit://churn/drift`` that ``weekly_drift_check`` emits an event for;
the event's extra holds the drift summary (drifted columns, statistics, report location). Needs
nothing beyond airflow-trainkit on the embedded defaults.

The run validates the latest table against the churn contract, trains on the on-prem backend,
registers the new version and promotes it only if it passes the gate and is no worse than the
champion; otherwise it stays ``challenger`` and the task is skipped.
"""

from __future__ import annotations

from datetime import datetime
from pathlib import Path

from airflow.sdk import DAG, task

from airflow_trainkit.home import trainkit_home
from airflow_trainkit.operators.drift import drift_asset
from airflow_trainkit.operators.registry import PromoteModelOperator, RegisterModelOperator
from airflow_trainkit.operators.training import TrainModelOperator
from airflow_trainkit.operators.validation import ValidateDataOperator

LATEST_URI = str(trainkit_home() / "demo" / "drift" / "latest.parquet")
CONTRACT = str(Path(__file__).parent / "contracts" / "churn.yaml")

# [START retrain_on_drift]
with DAG(
    dag_id="retrain_on_drift",
    schedule=[drift_asset("churn")],
    start_date=datetime(2026, 1, 5),
    catchup=False,
    tags=["trainkit", "drift", "training"],
) as dag:

    @task
    def drift_that_triggered(triggering_asset_events=None) -> dict:
        """The drift summaries that scheduled this run (none when started by hand).

        Read under the asset alone: an event added through the check's asset alias is listed
        under the alias as well, so going through every key would see each event twice.
        """
        events = (triggering_asset_events or {}).get(drift_asset("churn"), [])
        summaries = [event.extra for event in events]
        drifted = sorted({c["column"] for s in summaries for c in s.get("drifted_columns", [])})
        reports = [s.get("report_uri") for s in summaries if s.get("report_uri")]
        print(f"Retraining because of drift in: {drifted or 'nothing (manual run)'}; reports: {reports}")
        return {"drifted_columns": drifted, "reports": reports}

    @task
    def latest_table() -> str:
        """Demo only: the newest data to retrain on (in production, your latest partition)."""
        from airflow_trainkit.demo.data import write_churn_dataset

        write_churn_dataset(LATEST_URI, rows=5000, seed=9, drift=0.5)
        return LATEST_URI

    validate = ValidateDataOperator(task_id="validate", data=LATEST_URI, contract=CONTRACT)
    train = TrainModelOperator(
        task_id="train",
        backend="onprem",
        spec={
            "command": ["python", "-m", "airflow_trainkit.trainers.xgboost"],
            "inputs": {"train": LATEST_URI},
            "hyperparameters": {"target": "churned", "drop_columns": "customer_id"},
            "accelerator": "gpu:1",
            "allow_cpu": True,
            "max_runtime": "1h",
        },
        poll_interval=2,
    )
    register = RegisterModelOperator(
        task_id="register",
        model_name="churn",
        training_result=train.output,
        data_fingerprint=validate.output["fingerprint"],
    )
    # Not worse than the champion by more than the tolerance, or it stays challenger (skipped).
    promote = PromoteModelOperator(
        task_id="promote",
        model_name="churn",
        thresholds={"auc_roc": 0.80, "f1_weighted": 0.70, "log_loss": 0.35},
        on_failure="skip",
    )

    drift_that_triggered() >> latest_table() >> validate >> train >> register >> promote
# [END retrain_on_drift]
