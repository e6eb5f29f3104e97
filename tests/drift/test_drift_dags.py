"""The example DAGs under dag.test(), with the asset events read back from Airflow's metadata DB."""

from __future__ import annotations

import importlib.util
import json
from datetime import UTC, datetime
from pathlib import Path

import pytest
from drift_testing import EXAMPLE_DAGS

from airflow_trainkit import storage

pytestmark = pytest.mark.integration

DRIFT_URI = "x-trainkit://churn/drift"


def _dag(name: str):
    spec = importlib.util.spec_from_file_location(f"trainkit_example_{name}", EXAMPLE_DAGS / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module.dag


def _events(run_id: str) -> list:
    from airflow.models.asset import AssetEvent, AssetModel
    from airflow.utils.session import create_session
    from sqlalchemy import select

    with create_session() as session:
        rows = session.scalars(
            select(AssetEvent)
            .join(AssetModel, AssetEvent.asset_id == AssetModel.id)
            .where(AssetModel.uri == DRIFT_URI, AssetEvent.source_run_id == run_id)
        ).all()
        return [dict(row.extra or {}) for row in rows]


def test_weekly_check_emits_the_drift_event_and_stores_the_report(airflow_db, trainkit_home):
    run = _dag("weekly_drift_check").test(logical_date=datetime(2026, 3, 2, tzinfo=UTC))
    assert run.state == "success"
    events = _events(run.run_id)
    assert len(events) == 1
    extra = events[0]
    assert {c["column"] for c in extra["drifted_columns"]} == {
        "monthly_charges",
        "support_calls",
        "data_usage_gb",
    }
    assert extra["dataset_drift"] is True
    report = Path(extra["report_uri"])
    assert report.is_relative_to(trainkit_home)
    assert (report / storage.SUCCESS_MARKER).exists() and (report / "report.html").stat().st_size > 10_000
    assert json.loads((report / "summary.json").read_text())["drift"] is True


def test_unchanged_week_emits_no_event(airflow_db, trainkit_home):
    run = _dag("weekly_drift_check").test(
        logical_date=datetime(2026, 3, 9, tzinfo=UTC), run_conf={"demo_week_drift": 0.0}
    )
    assert run.state == "success"
    assert _events(run.run_id) == []
