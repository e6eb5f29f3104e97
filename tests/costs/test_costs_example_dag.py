"""The compare_cloud_costs example DAG runs to success under dag.test() (needs the training operator)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

pytestmark = pytest.mark.integration


def test_compare_cloud_costs_dag(airflow_db, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from airflow.dag_processing.dagbag import DagBag

    monkeypatch.setenv("TRAINKIT_HOME", str(tmp_path / "trainkit"))
    monkeypatch.setenv("TRAINKIT_ONPREM_ROOT", str(tmp_path / "jobs"))
    bag = DagBag(dag_folder=str(Path(__file__).resolve().parents[2] / "example_dags"))
    assert not bag.import_errors, bag.import_errors
    dag = bag.dags["compare_cloud_costs"]
    run = dag.test()
    states = {ti.task_id: str(getattr(ti.state, "value", ti.state)) for ti in run.get_task_instances()}
    assert str(getattr(run.state, "value", run.state)) == "success", states

    reports = tmp_path / "trainkit" / "reports" / "costs" / "compare_cloud_costs"
    (run_dir,) = list(reports.iterdir())
    quote = run_dir / "quote"
    for name in ("quotes.csv", "report.md", "cost_per_backend.png", "_SUCCESS"):
        assert (quote / name).exists(), name
    quotes = json.loads((quote / "quotes.json").read_text())
    # The cheapest backend the job can train on here is picked: the on-prem workstation.
    assert quotes["cheapest"]["backend"] == "onprem"
    assert quotes["left_out"] == {}  # every backend could train it; on-prem is the cheapest
    facts = json.loads((run_dir / "actual_cost" / "actual_cost.json").read_text())
    assert facts["backend"] == "onprem"
    actual = facts["actual"]
    assert actual is not None and actual["amount"] > 0
    assert actual["price_row"]["backend"] == "onprem"
    # The actual cost is the run's billable hours at the hourly cost of the host it used.
    assert actual["amount"] == pytest.approx(
        actual["billable_seconds"] / 3600 * actual["hourly_price"], abs=1e-6
    )
