"""Retrain the churn model when the weekly drift check finds drift.

Scheduled on the asset ``trainkit://churn/drift`` that ``weekly_drift_check`` emits an event for;
the event's extra holds the drift summary (drifted columns, statistics, report location). Needs
nothing beyond airflow-trainkit on the embedded defaults.

TODO(lead): validate, train, register and promote are placeholders (EmptyOperator). When this was
written, ``TrainModelOperator`` was on main but the built-in trainer and the validation and registry
operators were not: wire ``TrainModelOperator(task_id="train", backend="onprem", spec={...})`` and
those operators in here.
"""

from __future__ import annotations

from datetime import datetime

from airflow.providers.standard.operators.empty import EmptyOperator
from airflow.sdk import DAG, task

from airflow_trainkit.operators.drift import drift_asset

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
        """The drift summaries that scheduled this run (none when started by hand)."""
        summaries = [event.extra for events in (triggering_asset_events or {}).values() for event in events]
        drifted = sorted({c["column"] for s in summaries for c in s.get("drifted_columns", [])})
        reports = [s.get("report_uri") for s in summaries if s.get("report_uri")]
        print(f"Retraining because of drift in: {drifted or 'nothing (manual run)'}; reports: {reports}")
        return {"drifted_columns": drifted, "reports": reports}

    # TODO(lead): DataValidationOperator once the contracts operator is on main.
    validate = EmptyOperator(task_id="validate")
    # TODO(lead): TrainModelOperator(task_id="train", backend="onprem", spec={...}) with the
    # built-in XGBoost trainer once it is on main.
    train = EmptyOperator(task_id="train")
    # TODO(lead): the MLflow registry operators (register the version, promote past the gate).
    register = EmptyOperator(task_id="register")
    promote = EmptyOperator(task_id="promote")

    drift_that_triggered() >> validate >> train >> register >> promote
# [END retrain_on_drift]
