"""retrain_on_drift reads each drift event once, although Airflow lists it under the asset and
under the alias the check emitted it through."""

from __future__ import annotations

import importlib.util
from datetime import UTC, datetime

from drift_testing import EXAMPLE_DAGS


def _retrain_dag():
    spec = importlib.util.spec_from_file_location(
        "trainkit_example_retrain", EXAMPLE_DAGS / "retrain_on_drift.py"
    )
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module.dag


def _event(report: str, column: str):
    from airflow.sdk.api.datamodels._generated import (
        AssetAliasReferenceAssetEventDagRun,
        AssetReferenceAssetEventDagRun,
    )
    from airflow.sdk.execution_time.comms import AssetEventDagRunReferenceResult

    from airflow_trainkit.operators.drift import drift_alias, drift_asset

    asset = drift_asset("churn")
    return AssetEventDagRunReferenceResult(
        asset=AssetReferenceAssetEventDagRun(name=asset.name, uri=asset.uri, extra={}),
        extra={"report_uri": report, "drifted_columns": [{"column": column}]},
        source_task_id="check_drift",
        source_dag_id="weekly_drift_check",
        source_run_id=f"scheduled__{report}",
        source_map_index=-1,
        source_aliases=[AssetAliasReferenceAssetEventDagRun(name=drift_alias("churn").name)],
        timestamp=datetime(2026, 3, 2, tzinfo=UTC),
    )


def test_each_drift_event_is_read_once():
    from airflow.sdk.execution_time.context import TriggeringAssetEventsAccessor

    events = TriggeringAssetEventsAccessor.build(
        [_event("/reports/w9", "age"), _event("/reports/w10", "region")]
    )
    assert len(events) == 2  # the asset and the alias: each holds both events
    task = _retrain_dag().get_task("drift_that_triggered")
    result = task.python_callable(triggering_asset_events=events)
    assert result == {"drifted_columns": ["age", "region"], "reports": ["/reports/w9", "/reports/w10"]}
    assert task.python_callable(triggering_asset_events=TriggeringAssetEventsAccessor.build([])) == {
        "drifted_columns": [],
        "reports": [],
    }
