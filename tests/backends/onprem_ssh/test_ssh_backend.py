"""The on-prem backend on a GPU host over SSH: jobs, their files and processes live on that host."""

from __future__ import annotations

import json
import os

import pytest
from ssh_testing import host_entry, spec
from trainkit_testing import job_reaches

from airflow_trainkit.exceptions import TrainingJobNotFound
from airflow_trainkit.training.backend import JobPhase, JobRef

pytestmark = pytest.mark.integration


def test_a_job_runs_on_the_host_and_records_success_with_metrics(onprem_ssh, gpu_hosts):
    entry = host_entry(gpu_hosts["a"])
    backend = onprem_ssh([entry])
    script = (
        'hostname; echo "{\\"auc_roc\\": 0.91}" > "$TRAINKIT_OUTPUT_URI/metrics.json"; '
        "echo in=$TRAINKIT_OUTPUT_URI; sleep 1"
    )
    status = backend.submit(spec(script), "ssh-ok")
    assert status.phase in (JobPhase.PENDING, JobPhase.RUNNING)
    assert status.handle == "gpu_a/ssh-ok" and status.details["host"] == "gpu_a"
    done = job_reaches(
        backend, JobRef(backend="onprem", job_name="ssh-ok", handle=status.handle), lambda s: s.phase.terminal
    )
    assert (done.state, done.details["exit_code"]) == ("SUCCEEDED", 0)
    assert done.billable_seconds >= 1.0
    assert done.output_uri == f"{entry['root']}/outputs/ssh-ok"
    # It ran there: the host's name, and the metrics read back over SSH.
    assert backend.log_tail("ssh-ok") == ["gpu-a", f"in={done.output_uri}"]
    result = backend.result(done)
    assert result["metrics"] == {"auc_roc": 0.91} and result["details"]["host"] == "gpu_a"
    # ... and nowhere here: the job root is on the host's private tmpfs.
    assert not os.path.exists(entry["root"]) and not any(gpu_hosts["a"].folder.iterdir())
    assert gpu_hosts["a"].run(f"cat {done.output_uri}/metrics.json").strip() == '{"auc_roc": 0.91}'


def test_a_failing_command_reports_its_exit_code_and_log(onprem_ssh):
    backend = onprem_ssh()
    backend.submit(spec("echo boom >&2; exit 3"), "ssh-bad")
    done = job_reaches(backend, "ssh-bad", lambda s: s.phase.terminal)
    assert (done.state, done.message, done.details["exit_code"]) == ("FAILED", "exit code 3", 3)
    assert backend.log_tail("ssh-bad") == ["boom"]


def test_stop_signals_the_group_on_the_host_then_kills_it_after_the_grace(onprem_ssh, gpu_hosts):
    entry = host_entry(gpu_hosts["a"])
    backend = onprem_ssh([entry], grace_seconds=1)
    backend.submit(
        spec("trap '' TERM; sh -c \"trap '' TERM; sleep 60\" & echo started; wait"), "ssh-stubborn"
    )
    job_reaches(backend, "ssh-stubborn", lambda s: s.state == "RUNNING" and backend.log_tail("ssh-stubborn"))
    backend.stop("ssh-stubborn", reason="test says stop")
    done = job_reaches(backend, "ssh-stubborn", lambda s: s.phase.terminal, timeout=20)
    assert (done.state, done.message) == ("STOPPED", "test says stop")
    log = "\n".join(backend.log_tail("ssh-stubborn"))
    assert "sending SIGTERM" in log and "sending SIGKILL" in log
    state = json.loads(gpu_hosts["a"].run(f"cat {entry['root']}/ssh-stubborn/state.json"))
    # The group is gone on the host (ps there lists no process of it).
    groups = gpu_hosts["a"].run("ps -eo pgid=").split()
    assert str(state["child_pgid"]) not in groups
    backend.stop("ssh-stubborn")  # stopping twice is harmless
    assert backend.describe("ssh-stubborn").state == "STOPPED"


def test_the_environment_travels_on_the_channel_and_never_lands_on_the_host_disk(
    onprem_ssh, gpu_hosts, monkeypatch
):
    entry = host_entry(gpu_hosts["a"])
    backend = onprem_ssh([entry])
    monkeypatch.setenv("WORKER_ONLY_SETTING", "worker-value-31")
    job = spec("env | sort; ls -la $TRAINKIT_JOB_DIR", env={"MY_TOKEN": "spec-secret-hunter42"})
    backend.submit(job, "ssh-env")
    job_reaches(backend, "ssh-env", lambda s: s.phase.terminal)
    env = "\n".join(backend.log_tail("ssh-env", 500))
    assert "MY_TOKEN=spec-secret-hunter42" in env and "TRAINKIT_JOB_ID=ssh-env" in env
    # The host's own login environment, not the worker's.
    assert "worker-value-31" not in env and "SSH_CONNECTION=" in env
    assert "TRAINKIT_RUNNER_JOB_PYTHONPATH" not in env
    # Nothing under the job root holds the secret; control files 0600 in a 0700 directory.
    hits = gpu_hosts["a"].run(f"grep -rl hunter42 {entry['root']} --exclude=output.log || true").split()
    assert hits == []
    modes = gpu_hosts["a"].run(
        f"cd {entry['root']}/ssh-env && stat -c '%n %a' . job.json state.json runner.json runner.py output.log"
    )
    assert dict(line.split() for line in modes.splitlines()) == {
        ".": "700",
        "job.json": "600",
        "state.json": "600",
        "runner.json": "600",
        "runner.py": "600",
        "output.log": "600",
    }


def test_python_commands_run_the_hosts_python_and_the_runner_ships_with_the_job(onprem_ssh, gpu_hosts):
    backend = onprem_ssh()
    job = {
        "command": ["python", "-c", "import sys; print(sys.executable, flush=True); import airflow_trainkit"]
    }
    from airflow_trainkit.training.spec import TrainingJobSpec

    backend.submit(TrainingJobSpec.parse(job), "ssh-py")
    done = job_reaches(backend, "ssh-py", lambda s: s.phase.terminal)
    tail = backend.log_tail("ssh-py", 20)
    # The host's Python has no trainkit: the runner needed none, the job's import fails.
    assert tail[0] == "/usr/bin/python3" and "No module named 'airflow_trainkit'" in tail[-1]
    assert done.state == "FAILED"


def test_unknown_job_and_a_second_submit_of_one_name(onprem_ssh):
    backend = onprem_ssh()
    backend.submit(spec("true"), "ssh-once")
    with pytest.raises(FileExistsError, match="on host 'gpu_a'"):
        backend.submit(spec("true"), "ssh-once")
    with pytest.raises(TrainingJobNotFound):
        backend.describe("ssh-none")
    with pytest.raises(TrainingJobNotFound):
        backend.describe(JobRef(backend="onprem", job_name="ssh-none", handle="gpu_a/ssh-none"))


def test_no_key_or_secret_in_logs_results_or_the_hosts_files(onprem_ssh, gpu_hosts, monkeypatch, caplog):
    host = gpu_hosts["a"]
    key_text = host.keys.user_key.read_text()
    key_line = key_text.splitlines()[1]  # a line of the private key's body
    conn = json.loads(host.connection())
    del conn["extra"]["key_file"]
    conn["extra"]["private_key"] = key_text  # the key inline, as a secrets backend would hold it
    monkeypatch.setenv("AIRFLOW_CONN_GPU_A_INLINE", json.dumps(conn))
    entry = host_entry(host, ssh_conn_id="gpu_a_inline")
    backend = onprem_ssh([entry])
    caplog.set_level("DEBUG")
    job = spec("echo ran; sleep 1", env={"DB_PASSWORD": "pw-hunter77"})
    backend.check(job)
    status = backend.submit(job, "ssh-secrets")
    done = job_reaches(
        backend,
        JobRef(backend="onprem", job_name="ssh-secrets", handle=status.handle),
        lambda s: s.phase.terminal,
    )
    result = json.dumps(backend.result(done))
    assert done.state == "SUCCEEDED" and backend.log_tail("ssh-secrets") == ["ran"]
    for secret in (key_line, "pw-hunter77"):
        assert secret not in caplog.text and secret not in result
        assert host.run(f"grep -rl -- '{secret}' {entry['root']} || true").split() == []
