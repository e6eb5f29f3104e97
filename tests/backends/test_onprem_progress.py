"""The on-prem backend reads a running job's per-round metrics (progress.json) from its output."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

import pytest
from trainkit_testing import job_reaches

from airflow_trainkit.backends.onprem import OnPremBackend
from airflow_trainkit.training.backend import JobPhase, TrainingBackend
from airflow_trainkit.training.spec import TrainingJobSpec

ROUNDS = 3000


@pytest.fixture
def backend(onprem_root) -> OnPremBackend:
    return OnPremBackend()


@pytest.fixture
def table(tmp_path: Path) -> str:
    from airflow_trainkit.demo.data import write_churn_dataset

    return str(write_churn_dataset(tmp_path / "churn.csv", 400))


def test_the_backends_that_report_progress_say_so():
    from airflow_trainkit.backends.ray import RayBackend

    assert OnPremBackend.reports_progress and RayBackend.reports_progress
    assert TrainingBackend.reports_progress is False


def test_a_trainer_jobs_progress_is_read_while_it_runs_and_after(backend, table):
    spec = TrainingJobSpec.parse(
        {
            "command": ["python", "-m", "airflow_trainkit.trainers.xgboost"],
            "inputs": {"train": table},
            "hyperparameters": {
                "target": "churned",
                "drop_columns": "customer_id",
                "num_boost_round": ROUNDS,
                "early_stopping_rounds": 0,
                "progress_interval": 0.2,
            },
        }
    )
    backend.submit(spec, "job-progress")
    # While it runs: the status names the output, and progress read from there grows.
    running: list[dict[str, list[float]]] = []

    def read_while_running(status):
        if status.state != "RUNNING":
            return status.phase.terminal
        assert status.output_uri and Path(status.output_uri).is_dir()
        history = backend.progress(status)
        if history and backend.describe("job-progress").state == "RUNNING":
            running.append(history)
        return len(running) >= 2 and len(running[-1]["validation-auc"]) > len(running[0]["validation-auc"])

    status = job_reaches(backend, "job-progress", read_while_running, timeout=120)
    assert status.state == "RUNNING", f"the job ended before two growing reads: {running}"
    first = running[0]
    assert {"validation-auc", "validation-logloss", "train-auc", "train-logloss"} <= set(first)
    assert 0 < len(first["validation-auc"]) < ROUNDS
    assert asyncio.run(backend.progress_async(status)) is not None  # the triggerer's way

    done = job_reaches(backend, "job-progress", lambda s: s.phase.terminal, timeout=120)
    assert done.state == "SUCCEEDED", backend.log_tail("job-progress")
    final = backend.progress(done)
    assert final is not None and {len(v) for v in final.values()} == {ROUNDS}
    assert backend.metrics(done)["rounds_trained"] == ROUNDS
    assert asyncio.run(backend.progress_async(done)) == final


def test_a_job_that_writes_no_progress_has_none(backend):
    spec = TrainingJobSpec.parse({"command": ["python", "-c", "import time; time.sleep(2)"]})
    backend.submit(spec, "job-quiet")
    running = job_reaches(backend, "job-quiet", lambda s: s.state == "RUNNING")
    assert Path(running.output_uri).is_dir()  # the backend made the folder: it is no progress
    assert backend.progress(running) is None
    done = job_reaches(backend, "job-quiet", lambda s: s.phase.terminal)
    assert done.state == "SUCCEEDED"
    assert backend.progress(done) is None and asyncio.run(backend.progress_async(done)) is None


def test_a_failed_job_keeps_its_progress_and_still_fails(backend):
    # A trainer that wrote its output folder's progress.json and then died is a failure.
    document = {"round": 2, "first_round": 1, "history": {"validation-auc": [0.5, 0.6], "note": "x"}}
    script = f"echo '{json.dumps(document)}' > \"$TRAINKIT_OUTPUT_URI/progress.json\"; exit 3"
    backend.submit(TrainingJobSpec.parse({"command": ["sh", "-c", script]}), "job-died")
    done = job_reaches(backend, "job-died", lambda s: s.phase.terminal)
    assert (done.state, done.phase) == ("FAILED", JobPhase.FAILED)
    assert backend.progress(done) == {"validation-auc": [0.5, 0.6]}
