"""The on-prem backend against real processes: runner, process groups, GPU locks, job directories."""

from __future__ import annotations

import json
import os
import signal
import sys
import time
from pathlib import Path

import pytest
from trainkit_testing import job_reaches

from airflow_trainkit.backends.onprem import OnPremBackend, inherited_env
from airflow_trainkit.exceptions import TrainingJobNotFound, TrainingJobUnreachable
from airflow_trainkit.training.backend import JobPhase, get_backend
from airflow_trainkit.training.spec import TrainingJobSpec


def group_alive(pgid: int) -> bool:
    """Whether any process of the group still runs (zombies waiting for a reaper do not count)."""
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(fields[2]) == pgid and fields[0] != "Z":
            return True
    return False


def spec(script: str, **extra) -> TrainingJobSpec:
    return TrainingJobSpec.parse({"command": ["sh", "-c", script], **extra})


@pytest.fixture
def backend(onprem_root) -> OnPremBackend:
    return get_backend("onprem")()


def test_registry_finds_the_backend_by_name():
    assert get_backend("onprem") is OnPremBackend
    with pytest.raises(ValueError, match="'nosuch' is not known; known backends: .*onprem"):
        get_backend("nosuch")


def test_a_job_runs_detached_and_records_success(backend, tmp_path):
    status = backend.submit(
        spec("echo hello; echo $TRAINKIT_JOB_ID > $TRAINKIT_OUTPUT_URI/who; sleep 1"), "job-ok"
    )
    assert status.phase in (JobPhase.PENDING, JobPhase.RUNNING)
    done = job_reaches(backend, "job-ok", lambda s: s.phase.terminal)
    assert (done.state, done.phase, done.details["exit_code"]) == ("SUCCEEDED", JobPhase.SUCCEEDED, 0)
    assert done.billable_seconds >= 1.0
    assert done.started_at <= done.ended_at
    assert Path(done.output_uri, "who").read_text().strip() == "job-ok"
    assert backend.log_tail("job-ok") == ["hello"]


def test_a_failing_command_reports_its_exit_code_and_log(backend):
    backend.submit(spec("echo boom >&2; exit 3"), "job-bad")
    done = job_reaches(backend, "job-bad", lambda s: s.phase.terminal)
    assert (done.state, done.message, done.details["exit_code"]) == ("FAILED", "exit code 3", 3)
    assert backend.log_tail("job-bad") == ["boom"]


def test_stop_sends_sigterm_to_the_group_then_sigkill_after_the_grace(onprem_root, monkeypatch):
    monkeypatch.setenv(
        "AIRFLOW_CONN_ONPREM_FAST",
        json.dumps({"conn_type": "trainkit_onprem", "extra": {"grace_seconds": 1}}),
    )
    backend = OnPremBackend("onprem_fast")
    # The shell ignores SIGTERM and so does its child: only SIGKILL ends them.
    backend.submit(
        spec("trap '' TERM; sh -c \"trap '' TERM; sleep 60\" & echo started; wait"), "job-stubborn"
    )
    job_reaches(backend, "job-stubborn", lambda s: s.state == "RUNNING" and backend.log_tail("job-stubborn"))
    backend.stop("job-stubborn", reason="test says stop")
    done = job_reaches(backend, "job-stubborn", lambda s: s.phase.terminal, timeout=20)
    assert (done.state, done.message) == ("STOPPED", "test says stop")
    log = "\n".join(backend.log_tail("job-stubborn"))
    assert "sending SIGTERM" in log and "sending SIGKILL" in log
    state = json.loads((onprem_root / "job-stubborn" / "state.json").read_text())
    assert not group_alive(state["child_pgid"])  # the whole group is gone
    backend.stop("job-stubborn")  # stopping twice is harmless
    assert backend.describe("job-stubborn").state == "STOPPED"


def test_max_runtime_is_a_wall_clock_limit(backend):
    backend.submit(spec("sleep 30", max_runtime=1), "job-slow")
    done = job_reaches(backend, "job-slow", lambda s: s.phase.terminal, timeout=40)
    assert done.state == "FAILED" and "max_runtime" in done.message


def test_unknown_job_and_invisible_root_are_told_apart(backend, onprem_root, tmp_path, monkeypatch):
    backend.submit(spec("true"), "job-any")
    with pytest.raises(TrainingJobNotFound):
        backend.describe("job-none")
    monkeypatch.setenv("TRAINKIT_ONPREM_ROOT", str(tmp_path / "elsewhere"))
    with pytest.raises(TrainingJobUnreachable, match="triggerer and the workers must share it"):
        OnPremBackend().describe("job-any")


def test_a_dead_runner_is_reported_lost(backend, onprem_root):
    backend.submit(spec("sleep 60"), "job-orphan")
    job_reaches(backend, "job-orphan", lambda s: s.state == "RUNNING")
    state = json.loads((onprem_root / "job-orphan" / "state.json").read_text())
    os.kill(state["runner_pid"], signal.SIGKILL)
    done = job_reaches(backend, "job-orphan", lambda s: s.phase.terminal)
    assert done.state == "LOST" and done.phase == JobPhase.FAILED
    backend.stop("job-orphan")  # with no runner left, stop kills the orphaned group itself
    time.sleep(0.5)
    assert not group_alive(state["child_pgid"])


def test_gpus_are_pinned_and_never_shared(onprem_root, monkeypatch):
    monkeypatch.setenv("TRAINKIT_ONPREM_GPUS", "0,1")
    backend = OnPremBackend()
    names = ["job-g1", "job-g2", "job-g3"]
    for name in names:
        backend.submit(spec("echo gpu=$CUDA_VISIBLE_DEVICES; sleep 4", accelerator="gpu:1"), name)
    # Which two start first is up to the runners; the third must wait for a free GPU.
    end = time.monotonic() + 30
    while time.monotonic() < end:
        statuses = [backend.describe(n) for n in names]
        running = [s for s in statuses if s.state == "RUNNING"]
        waiting = [s for s in statuses if s.state == "PENDING" and "waiting" in (s.message or "")]
        if len(running) == 2 and len(waiting) == 1:
            break
        time.sleep(0.1)
    assert sorted(g for s in running for g in s.details["gpus"]) == ["0", "1"]
    (waiting,) = [s for s in statuses if s.state == "PENDING"]
    assert "waiting for 1 free GPU" in waiting.message
    for name in names:
        assert job_reaches(backend, name, lambda s: s.phase.terminal, timeout=40).state == "SUCCEEDED"
    assert backend.log_tail(waiting.job_id)[0] in ("gpu=0", "gpu=1")


def test_a_gpu_job_on_a_host_without_gpus(backend, onprem_root):
    with pytest.raises(ValueError, match=r"spec.accelerator 'T4:1' asks for 1 GPU\(s\) but host .* has none"):
        backend.validate(spec("true", accelerator="T4:1"))
    cpu_ok = spec("echo devices=[$CUDA_VISIBLE_DEVICES]", accelerator="gpu:1", allow_cpu=True)
    backend.validate(cpu_ok)
    backend.submit(cpu_ok, "job-cpu")
    assert job_reaches(backend, "job-cpu", lambda s: s.phase.terminal).state == "SUCCEEDED"
    assert backend.log_tail("job-cpu") == ["devices=[]"]


def test_inputs_are_checked_and_secrets_stay_with_the_worker(backend, onprem_root, tmp_path, monkeypatch):
    with pytest.raises(ValueError, match=r"spec.inputs\['train'\]: no such file or folder '/nope/train.csv'"):
        backend.validate(spec("true", inputs={"train": "/nope/train.csv"}))
    data = tmp_path / "train.csv"
    data.write_text("a\n1\n")
    monkeypatch.setenv("AIRFLOW_CONN_SECRET_DB", "postgresql://u:hunter22@db/x")
    monkeypatch.setenv("MY_SERVICE_API_KEY", "apikey-hunter23")
    monkeypatch.setenv("MYSQL_PWD", "pwd-hunter24")
    monkeypatch.setenv("DATABASE_URL", "postgresql://u:p%40hunter25@h/db")
    monkeypatch.setenv("MY_PLAIN_SETTING", "kept")
    job = spec("env | sort", inputs={"train": f"file://{data}"}, env={"MY_SETTING": "spec-value-26"})
    backend.validate(job)
    backend.submit(job, "job-env")
    job_reaches(backend, "job-env", lambda s: s.phase.terminal)
    env = "\n".join(backend.log_tail("job-env", 500))
    assert f"TRAINKIT_INPUT_TRAIN=file://{data}" in env and "MY_SETTING=spec-value-26" in env
    assert "MY_PLAIN_SETTING=kept" in env and "TRAINKIT_RUNNER_JOB_PYTHONPATH" not in env
    assert "hunter2" not in env and "AIRFLOW_CONN_" not in env
    # The environment reached the job through the spawn: none of it is in the job directory.
    job_json = (onprem_root / "job-env" / "job.json").read_text()
    assert "env" not in json.loads(job_json) and "spec-value-26" not in job_json and "PATH" not in job_json


@pytest.mark.parametrize(
    ("name", "value", "inherited"),
    [
        ("PATH", "/usr/bin", True),
        ("PWD", "/home/me", True),
        ("HTTP_PROXY", "http://proxy:3128", True),
        ("AIRFLOW__CORE__FERNET_KEY", "x", False),
        ("AIRFLOW_VAR_ANY", "x", False),
        ("OPENAI_API_KEY", "x", False),
        ("DD_APIKEY", "x", False),
        ("AWS_SECRET_ACCESS_KEY", "x", False),
        ("SIGNING_KEY", "x", False),
        ("MYSQL_PWD", "x", False),
        ("LDAP_PASSWD", "x", False),
        ("AZURE_STORAGE_CONNECTION_STRING", "x", False),
        ("HF_TOKEN", "x", False),
        ("DATABASE_URL", "postgresql://u:p%40ss@h/db", False),
        ("HTTPS_PROXY", "http://user:pw@proxy:3128", False),
    ],
)
def test_the_worker_environment_a_job_inherits(name, value, inherited):
    assert (name in inherited_env({name: value})) is inherited


def test_the_job_directory_is_private_and_the_artifacts_honour_the_umask(backend, onprem_root, umask):
    umask(0o022)
    write_artifact = (
        "import os; from airflow_trainkit import storage; "
        "storage.write_bytes_atomic(os.environ['TRAINKIT_OUTPUT_URI'] + '/model.json', b'{}'); print('trained')"
    )
    backend.submit(TrainingJobSpec.parse({"command": ["python", "-c", write_artifact]}), "job-modes")
    done = job_reaches(backend, "job-modes", lambda s: s.phase.terminal)
    assert done.state == "SUCCEEDED", backend.log_tail("job-modes")
    backend.submit(spec("sleep 30"), "job-stopped")
    job_reaches(backend, "job-stopped", lambda s: s.state == "RUNNING")
    backend.stop("job-stopped")
    job_reaches(backend, "job-stopped", lambda s: s.phase.terminal)

    def mode(path: Path) -> int:
        return path.stat().st_mode & 0o777

    files = {}
    for job_id in ("job-modes", "job-stopped"):
        job_dir = onprem_root / job_id
        assert mode(job_dir) == 0o700
        files.update({f"{job_id}/{p.name}": mode(p) for p in job_dir.iterdir() if p.is_file()})
    assert files == {
        f"{job_id}/{name}": 0o600
        for job_id, names in {
            "job-modes": ["job.json", "state.json", "runner.json", "output.log"],
            "job-stopped": ["job.json", "state.json", "runner.json", "stop.json", "output.log"],
        }.items()
        for name in names
    }
    artifact = Path(done.output_uri, "model.json")
    assert (mode(artifact), mode(artifact.parent)) == (0o644, 0o755)


def test_python_runs_the_workers_own_interpreter(backend):
    backend.submit(
        TrainingJobSpec.parse({"command": ["python", "-c", "import sys; print(sys.executable)"]}), "job-py"
    )
    job_reaches(backend, "job-py", lambda s: s.phase.terminal)
    assert backend.log_tail("job-py") == [sys.executable]


def test_submitting_the_same_name_twice_is_refused(backend):
    backend.submit(spec("true"), "job-once")
    with pytest.raises(FileExistsError):
        backend.submit(spec("true"), "job-once")
