"""The on-prem backend reads a job's progress.json on its GPU host over SSH."""

from __future__ import annotations

import asyncio
import json
import os

import pytest
from ssh_testing import host_entry, spec
from sshd_hosts import free_port
from trainkit_testing import job_reaches

from airflow_trainkit.training.backend import JobPhase, JobRef, JobStatus

pytestmark = pytest.mark.integration


def test_progress_is_read_on_the_host_while_the_job_runs(onprem_ssh, gpu_hosts):
    entry = host_entry(gpu_hosts["a"])
    backend = onprem_ssh([entry])
    document = {"round": 2, "first_round": 1, "history": {"validation-auc": [0.5, 0.6], "note": "x"}}
    script = (
        f"echo '{json.dumps(document)}' > \"$TRAINKIT_OUTPUT_URI/progress.json\"; "
        'touch "$TRAINKIT_OUTPUT_URI/written"; sleep 30'
    )
    status = backend.submit(spec(script), "ssh-progress")
    ref = JobRef(backend="onprem", job_name="ssh-progress", handle=status.handle)
    folder = f"{entry['root']}/outputs/ssh-progress"
    running = job_reaches(
        backend, ref, lambda s: gpu_hosts["a"].run(f"ls {folder}/written 2>/dev/null || true").strip() != ""
    )
    assert running.state == "RUNNING" and running.output_uri == folder
    assert backend.progress(running) == {"validation-auc": [0.5, 0.6]}
    assert asyncio.run(backend.progress_async(running)) == {"validation-auc": [0.5, 0.6]}
    assert not os.path.exists(folder)  # read there, over SSH: nothing of it is here
    backend.stop(ref)
    stopped = job_reaches(backend, ref, lambda s: s.phase.terminal, timeout=30)
    assert stopped.state == "STOPPED"
    gpu_hosts["a"].run(f"rm {folder}/progress.json")
    assert backend.progress(stopped) is None and asyncio.run(backend.progress_async(stopped)) is None


def test_a_host_that_does_not_answer_has_no_progress_now(onprem_ssh, gpu_hosts, monkeypatch):
    conn = json.loads(gpu_hosts["a"].connection())
    conn["port"] = free_port()  # nobody listens there
    monkeypatch.setenv("AIRFLOW_CONN_GPU_NOWHERE", json.dumps(conn))
    backend = onprem_ssh([host_entry(gpu_hosts["a"], ssh_conn_id="gpu_nowhere")])
    status = JobStatus(
        job_id="ssh-gone",
        state="RUNNING",
        phase=JobPhase.RUNNING,
        output_uri="/srv/outputs/ssh-gone",
        details={"host": "gpu_nowhere"},
    )
    assert backend.progress(status) is None
    assert asyncio.run(backend.progress_async(status)) is None
