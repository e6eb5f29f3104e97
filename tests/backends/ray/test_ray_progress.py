"""The Ray backend reads a running job's per-round metrics (progress.json) from its output URI."""

from __future__ import annotations

import asyncio

import pytest
from trainkit_testing import job_reaches

from airflow_trainkit.training.spec import TrainingJobSpec

pytestmark = pytest.mark.integration

ROUNDS = 2000
DISTRIBUTED_ROUNDS = 1000  # each round is a collective call between the workers: slower


def test_a_trainer_jobs_progress_is_read_while_it_runs(cluster, backend, churn_table, tmp_path):
    output = str(tmp_path / "model")
    spec = TrainingJobSpec.parse(
        {
            "command": ["python", "-m", "airflow_trainkit.trainers.xgboost"],
            "inputs": {"train": churn_table},
            "output_uri": output,
            "hyperparameters": {
                "target": "churned",
                "drop_columns": "customer_id",
                "num_boost_round": ROUNDS,
                "early_stopping_rounds": 0,
                "progress_interval": 0.2,
            },
            "max_runtime": "10m",
        }
    )
    job = "tk-ray-progress-a1"
    backend.submit(spec, job)
    running: list[dict[str, list[float]]] = []

    def read_while_running(status):
        if status.state != "RUNNING":
            return status.phase.terminal
        assert status.output_uri == output  # from the job's metadata, known while it runs
        history = asyncio.run(backend.progress_async(status))
        if history and backend.describe(job).state == "RUNNING":
            running.append(history)
        return len(running) >= 2 and len(running[-1]["validation-auc"]) > len(running[0]["validation-auc"])

    status = job_reaches(backend, job, read_while_running, timeout=300)
    assert status.state == "RUNNING", f"the job ended before two growing reads: {backend.log_tail(job)}"
    assert {"validation-auc", "validation-logloss", "train-auc", "train-logloss"} <= set(running[0])
    assert 0 < len(running[0]["validation-auc"]) < ROUNDS

    # The finished file's length is the trainer's test (tests/trainers/test_trainer_progress.py):
    # stop here rather than train the remaining rounds.
    backend.stop(job)
    assert job_reaches(backend, job, lambda s: s.phase.terminal, timeout=120).state == "STOPPED"


def test_a_job_that_writes_no_progress_has_none(cluster, backend, tmp_path):
    command = ["python", "-c", "import time; time.sleep(1)"]
    spec = TrainingJobSpec.parse({"command": command, "output_uri": str(tmp_path / "out")})
    backend.submit(spec, "tk-ray-no-progress-a1")
    done = job_reaches(backend, "tk-ray-no-progress-a1", lambda s: s.phase.terminal, timeout=120)
    assert done.state == "SUCCEEDED" and done.output_uri == str(tmp_path / "out")
    assert backend.progress(done) is None


def test_the_distributed_trainer_writes_progress_from_its_first_worker(
    cluster, backend, churn_table, tmp_path
):
    output = str(tmp_path / "two")
    spec = TrainingJobSpec.parse(
        {
            "command": ["python", "-m", "airflow_trainkit.trainers.xgboost"],
            "inputs": {"train": churn_table},
            "output_uri": output,
            "instance_count": 2,
            "hyperparameters": {
                "target": "churned",
                "drop_columns": "customer_id",
                "num_boost_round": DISTRIBUTED_ROUNDS,
                "early_stopping_rounds": 0,
                "progress_interval": 0.2,
            },
            "max_runtime": "10m",
        }
    )
    job = "tk-ray-progress-two-a1"
    backend.submit(spec, job)
    seen: list[int] = []

    def read_while_running(status):
        if status.state != "RUNNING":
            return status.phase.terminal
        history = backend.progress(status)
        if history and backend.describe(job).state == "RUNNING":
            assert set(history) == {
                "validation-auc",
                "validation-logloss",
            }  # workers evaluate validation only
            seen.append(len(history["validation-auc"]))
        return len(seen) >= 2 and seen[-1] > seen[0]

    status = job_reaches(backend, job, read_while_running, timeout=300)
    assert status.state == "RUNNING", f"the job ended before two growing reads: {backend.log_tail(job)}"
    backend.stop(job)
    assert job_reaches(backend, job, lambda s: s.phase.terminal, timeout=120).state == "STOPPED"
