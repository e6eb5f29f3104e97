"""The validation example DAGs: light to parse, and they run under ``dag.test()`` on embedded defaults."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
DAGS = REPO / "example_dags"
FILES = ["example_validate_data.py", "example_validate_bad_partition.py"]
HEAVY = ("great_expectations", "pandas", "numpy", "pyarrow", "evidently", "mlflow", "boto3")


def _run(dag_id: str):
    from airflow.dag_processing.dagbag import DagBag

    bag = DagBag(dag_folder=str(DAGS))
    assert not bag.import_errors, bag.import_errors
    run = bag.dags[dag_id].test()
    return run, {ti.task_id: str(ti.state) for ti in run.get_task_instances()}


@pytest.mark.integration
def test_clean_demo_data_validates_and_training_runs(
    airflow_db: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("AIRFLOW__CORE__DAGS_FOLDER", str(DAGS))
    monkeypatch.setenv("TRAINKIT_HOME", str(tmp_path / "trainkit"))
    run, states = _run("example_validate_data")
    assert str(run.state).endswith("success"), states
    assert states == {"write_partition": "success", "validate": "success", "train": "success"}
    summaries = list((tmp_path / "trainkit" / "reports" / "validation").rglob("summary.json"))
    assert len(summaries) == 1
    assert json.loads(summaries[0].read_text())["success"] is True
    assert (summaries[0].parent / "data_docs.html").exists()


@pytest.mark.integration
def test_bad_partition_skips_training_and_keeps_the_report(
    airflow_db: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("AIRFLOW__CORE__DAGS_FOLDER", str(DAGS))
    monkeypatch.setenv("TRAINKIT_HOME", str(tmp_path / "trainkit"))
    run, states = _run("example_validate_bad_partition")
    assert str(run.state).endswith("success"), states
    assert states["validate"].endswith("skipped") and states["train"].endswith("skipped"), states
    (summary_file,) = (tmp_path / "trainkit" / "reports" / "validation").rglob("summary.json")
    summary = json.loads(summary_file.read_text())
    assert summary["success"] is False
    failed = {f["check"] for f in summary["failed_checks"]}
    assert {
        "columns.customer_id.nullable",
        "columns.age.range",
        "columns.tenure_months.type",
        "columns.region.exists",
    } <= failed
