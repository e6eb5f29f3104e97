"""``trainkit dag test``: a user's own DAG in a fresh Airflow home, a line per task, the rest in a log."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from airflow_trainkit.local.facts import MAX_FACT, fact

REPO = Path(__file__).resolve().parents[2]

OWN_DAG = """
from datetime import datetime
from airflow.sdk import dag, task

@dag(dag_id="{dag_id}", schedule=None, start_date=datetime(2026, 1, 1))
def my_dag():
    @task
    def extract():
        print("a line only the log should hold")
        return {{"rows": 3}}

    @task
    def load(value):
        if {fail}:
            raise ValueError("the warehouse said no")
        return value["rows"]

    @task
    def report(rows):
        return f"{{rows}} rows loaded"

    report(load(extract()))

my_dag()
"""


def trainkit_dag_test(dag_file: Path, home: Path, *args: str) -> subprocess.CompletedProcess[str]:
    trainkit = str(Path(sys.executable).parent / "trainkit")
    return subprocess.run(
        [trainkit, "dag", "test", str(dag_file), "--home", str(home), *args],
        capture_output=True,
        text=True,
        env={**os.environ, "PYTHONPATH": str(REPO)},
        cwd=dag_file.parent,
    )


def write_dag(folder: Path, dag_id: str, *, fail: bool) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"{dag_id}.py"
    path.write_text(OWN_DAG.format(dag_id=dag_id, fail=fail))
    return path


@pytest.mark.integration
def test_own_dag_runs_in_a_fresh_home_with_a_line_per_task(tmp_path: Path) -> None:
    home = tmp_path / "fresh-home"  # no database yet: the command migrates it
    proc = trainkit_dag_test(write_dag(tmp_path / "dags", "my_etl", fail=False), home)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    lines = proc.stdout.splitlines()
    assert lines[0] == f"AIRFLOW_HOME={home}"
    log = Path(lines[1].removeprefix("full log: "))
    assert log.is_relative_to(home / "logs") and log.exists()
    assert '  extract          success   {"rows": 3}' in lines
    assert "  load             success   3" in lines
    assert "  report           success   3 rows loaded" in lines
    assert lines[-1].startswith("my_etl run manual__") and "success (3 success)" in lines[-1]
    assert len(lines) <= 8, proc.stdout  # Airflow's own output is in the log, not here
    text = log.read_text()
    assert "a line only the log should hold" in text and "a line only the log should hold" not in proc.stdout
    assert (home / "airflow.db").exists()


@pytest.mark.integration
def test_failed_task_is_named_with_its_error_and_the_run_exits_1(tmp_path: Path) -> None:
    dags = tmp_path / "dags"
    write_dag(dags, "first", fail=False)  # a folder of several files: only the one given runs
    proc = trainkit_dag_test(write_dag(dags, "my_failing_etl", fail=True), tmp_path / "home")
    assert proc.returncode == 1, proc.stdout + proc.stderr
    assert "  load             failed    ValueError: the warehouse said no" in proc.stdout
    assert "  report           upstream_failed" in proc.stdout
    assert "the DAG run did not succeed: the full log is " in proc.stdout
    assert "first" not in proc.stdout


def test_a_file_that_is_not_python_is_refused(tmp_path: Path) -> None:
    from airflow_trainkit.cli import main

    (tmp_path / "dag.txt").write_text("")
    assert main(["dag", "test", str(tmp_path / "dag.txt"), "--home", str(tmp_path / "home")]) == 2
    assert not (tmp_path / "home").exists()


def test_facts_of_trainkit_results_and_of_anything_else() -> None:
    training = {
        "backend": "onprem",
        "job_id": "tk-demo-train-1-a1",
        "output_uri": "/out",
        "metrics": {"n_train": 4000, "auc_roc": 0.86512, "log_loss": 0.29513, "f1_weighted": 0.8648},
        "billable_seconds": 4.5,
    }
    assert (
        fact(training)
        == "onprem job tk-demo-train-1-a1: auc_roc 0.8651, log_loss 0.2951, f1_weighted 0.8648 (4.5 s)"
    )
    validation = {
        "success": False,
        "evaluated": 44,
        "passed": 43,
        "fingerprint": {},
        "dataset": "churn",
        "failed_checks": [{"check": "age.range"}],
    }
    assert fact(validation) == "contract churn FAILED: 43/44 checks; failed: age.range"
    decision = {
        "decision": "rejected",
        "model_name": "churn",
        "version": "2",
        "reasons": ["log_loss=0.3 fails"],
    }
    assert fact(decision) == "churn version 2 rejected: log_loss=0.3 fails"
    assert (
        fact({"model_name": "churn", "version": "2", "alias": "challenger"}) == "churn version 2 @challenger"
    )
    drift = {"drift": True, "drifted_columns": [{"column": "age"}], "columns_checked": 8}
    assert fact(drift) == "drift in 1 of 8 columns: age"
    assert fact(
        {"quotes": [{}, {}], "cheapest": {"backend": "onprem", "total": 0.17, "currency": "USD"}}
    ) == ("2 quotes; cheapest onprem: 0.17 USD")
    assert fact(None) == "" and fact(3) == "3" and fact("a\nb") == "a b"
    assert fact({"key": "x" * 500, "other": 1}) == "2 keys: key, other"
    assert len(fact("y" * 500)) == MAX_FACT
    assert fact({"backend": "onprem", "job_id": "j", "output_uri": None, "metrics": "odd"}) == "onprem job j"
