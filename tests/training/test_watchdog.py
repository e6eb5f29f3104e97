"""A task process SIGKILLed while it waits for its job in the worker: with no retry left the
watchdog stops the job; with a retry left the job runs on for the retry to re-attach to."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from trainkit_testing import make_context, settled, wait_until

from airflow_trainkit.backends.onprem import OnPremBackend
from airflow_trainkit.training.identity import JobIdentity

pytestmark = pytest.mark.integration
TESTS = Path(__file__).resolve().parents[1]

# A worker process: runs a non-deferrable TrainModelOperator, which blocks until it is killed.
_TASK = """
import sys
sys.path.insert(0, sys.argv[1])
from trainkit_testing import make_context
from airflow_trainkit.operators.training import TrainModelOperator
context = make_context(try_number=1)
context["ti"].max_tries = int(sys.argv[2])
op = TrainModelOperator(
    task_id="train", spec={"command": ["sleep", "120"]}, deferrable=False, poll_interval=0.2
)
op.execute(context)
"""


@pytest.mark.parametrize(("max_tries", "expected"), [(0, "STOPPED"), (1, "RUNNING")])
def test_a_hard_killed_waiting_task(onprem_root, tmp_path, max_tries, expected):
    job_id = JobIdentity("dag", "run", "train").job_name(1)
    output = tmp_path / "task.log"
    with output.open("wb") as sink:
        task = subprocess.Popen(
            [sys.executable, "-c", _TASK, str(TESTS), str(max_tries)],
            stdout=sink,
            stderr=subprocess.STDOUT,
            env=os.environ.copy(),
        )
    backend = OnPremBackend()
    try:
        wait_until(
            lambda: (
                task.poll() is not None
                or ((backend.find(job_id) or None) and backend.describe(job_id).state == "RUNNING")
            ),
            "the task to start its job",
            timeout=300,
        )
        assert task.poll() is None, f"the job never started:\n{output.read_text()[-3000:]}"
        watchdog_log = onprem_root.parent / "trainkit" / "watchdog" / f"{job_id}.log"
        wait_until(watchdog_log.exists, "the watchdog to start", timeout=10)
        os.kill(task.pid, signal.SIGKILL)  # what the out-of-memory killer does
        task.wait(10)
        if expected == "STOPPED":
            # Stopped within seconds of the kill: the watchdog sees the pipe close at once.
            assert settled(backend, job_id, timeout=30).state == "STOPPED"
            assert "killed and has no retry left" in (backend.describe(job_id).message or "")
            assert "no retry left: stopping the job" in watchdog_log.read_text()
        else:
            time.sleep(3)  # the watchdog has long since seen the pipe close
            assert backend.describe(job_id).state == "RUNNING"
            assert "a retry will re-attach" in watchdog_log.read_text()
        # No credential or environment in the watchdog's log.
        assert "AIRFLOW_CONN" not in watchdog_log.read_text()
        assert json.loads((onprem_root / job_id / "state.json").read_text())
    finally:
        if task.poll() is None:
            task.kill()
        backend.stop(job_id, reason="test cleanup")


def test_an_ordinary_end_of_the_wait_disarms_the_watchdog(onprem_root):
    from airflow_trainkit.operators.training import TrainModelOperator

    context = make_context()
    context["ti"].max_tries = 0
    op = TrainModelOperator(task_id="train", spec={"command": ["true"]}, deferrable=False, poll_interval=0.05)
    assert op.execute(context)["state"] == "SUCCEEDED"
    job_id = JobIdentity("dag", "run", "train").job_name(1)
    log = onprem_root.parent / "trainkit" / "watchdog" / f"{job_id}.log"
    time.sleep(1)
    assert log.exists() and "died" not in log.read_text()
