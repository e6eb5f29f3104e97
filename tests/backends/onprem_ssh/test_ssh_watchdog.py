"""A task SIGKILLed while it waits in the worker for a job on a GPU host: the watchdog, handed the
on-prem connection and the host's ``ssh`` connection, stops the job there over SSH."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from ssh_testing import host_entry

from airflow_trainkit.training import watchdog
from airflow_trainkit.training.backend import JobRef
from airflow_trainkit.training.identity import JobIdentity

pytestmark = pytest.mark.integration
TESTS = Path(__file__).resolve().parents[2]
_TASK = """
import sys
sys.path.insert(0, sys.argv[1])
from trainkit_testing import make_context
from airflow_trainkit.operators.training import TrainModelOperator
context = make_context(try_number=1)
context["ti"].max_tries = 0
op = TrainModelOperator(
    task_id="train", backend="onprem", backend_conn_id="trainkit_onprem_ssh", spec={"command": ["sleep", "120"]},
    deferrable=False, poll_interval=0.2,
)
op.execute(context)
"""


def test_the_watchdog_gets_every_connection_the_backend_reads(onprem_ssh, gpu_hosts):
    onprem_ssh([host_entry(gpu_hosts["a"]), host_entry(gpu_hosts["b"])])
    ref = JobRef(backend="onprem", job_name="any")
    env = watchdog._connection_env(ref, "trainkit_onprem_ssh")
    assert sorted(env) == ["AIRFLOW_CONN_GPU_A", "AIRFLOW_CONN_GPU_B", "AIRFLOW_CONN_TRAINKIT_ONPREM_SSH"]


def test_a_hard_killed_task_has_its_job_stopped_on_the_host(onprem_ssh, gpu_hosts, tmp_path):
    backend = onprem_ssh()
    job = JobRef(backend="onprem", job_name=JobIdentity("dag", "run", "train").job_name(1))
    output = tmp_path / "task.log"
    with output.open("wb") as sink:
        task = subprocess.Popen(
            [sys.executable, "-c", _TASK, str(TESTS)],
            stdout=sink,
            stderr=subprocess.STDOUT,
            env=os.environ.copy(),
        )
    try:
        end = time.monotonic() + 120
        while not ((backend.find(job) or None) and backend.describe(job).state == "RUNNING"):
            assert task.poll() is None and time.monotonic() < end, (
                f"the job never started:\n{output.read_text()[-3000:]}"
            )
            time.sleep(0.2)
        log = tmp_path / "trainkit" / "watchdog" / f"{job.job_name}.log"
        while not log.exists():
            assert time.monotonic() < end, "no watchdog started"
            time.sleep(0.1)
        os.kill(task.pid, signal.SIGKILL)  # what the out-of-memory killer does
        task.wait()
        while backend.describe(job).phase.active:
            assert time.monotonic() < end, f"the watchdog never stopped the job: {log.read_text()}"
            time.sleep(0.2)
        status = backend.describe(job)
        assert status.state == "STOPPED" and "killed and has no retry left" in status.message
        assert "AIRFLOW_CONN" not in log.read_text() and "PRIVATE KEY" not in log.read_text()
    finally:
        if task.poll() is None:
            task.kill()
        backend.stop(job, reason="test cleanup")
