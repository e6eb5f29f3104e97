"""The process that supervises one on-prem job: ``python -m airflow_trainkit.backends.onprem.runner JOB_DIR``.

It is started detached by the backend, takes the GPUs the job needs (one lock file per GPU),
starts the command in a process group of its own, enforces the runtime limit, forwards a stop
as SIGTERM to the group and escalates to SIGKILL after the grace period, and records the outcome
in ``state.json``. It is the only writer of that file once it runs.

The command gets the runner's own environment, as the backend spawned it: ``job.json`` holds none.
Stdlib only, and importing nothing of trainkit: the SSH transport ships this file alone to the GPU
host (``python3 runner.py JOB_DIR``), so the few file helpers it needs are its own.
"""

from __future__ import annotations

import fcntl
import json
import os
import signal
import subprocess
import sys
import time
import uuid
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from collections.abc import Mapping

POLL_SECONDS = 0.5
GPU_WAIT_SECONDS = 2.0
# The job's own PYTHONPATH ("" for none): the runner is spawned with the worker's, to import trainkit.
JOB_PYTHONPATH_VAR = "TRAINKIT_RUNNER_JOB_PYTHONPATH"


PRIVATE_FILE_MODE = 0o600


def write_private_atomic(path: Path, data: bytes) -> None:
    """Write a job-control file whole (temporary sibling, then rename), readable by its owner only."""
    tmp = path.with_name(f".{path.name}.{uuid.uuid4().hex[:12]}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, PRIVATE_FILE_MODE)
    try:
        with os.fdopen(fd, "wb") as handle:
            os.fchmod(handle.fileno(), PRIVATE_FILE_MODE)
            handle.write(data)
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


def open_private_append(path: Path) -> Any:
    """Open a job-control file for appending, unbuffered, made (or tightened to) 0600."""
    fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, PRIVATE_FILE_MODE)
    os.fchmod(fd, PRIVATE_FILE_MODE)
    return os.fdopen(fd, "ab", buffering=0)


def process_start_ticks(pid: int) -> int | None:
    """The process's start time in clock ticks since boot (``/proc/<pid>/stat`` field 22)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except (FileNotFoundError, ProcessLookupError, PermissionError):
        return None
    return int(stat.rsplit(")", 1)[1].split()[19])


def utcnow() -> str:
    """Now in UTC, ISO 8601 to the millisecond: the timestamps of ``state.json``."""
    return datetime.now(UTC).isoformat(timespec="milliseconds")


class Runner:
    """Supervises one job from its directory: takes its GPUs, runs its command, records the outcome."""

    def __init__(self, job_dir: Path) -> None:
        self.job_dir = job_dir
        self.job = json.loads((job_dir / "job.json").read_text())
        self.state: dict[str, Any] = json.loads((job_dir / "state.json").read_text())
        self.stop_signalled = False
        self.lock_files: list[Any] = []

    def write_state(self, **changes: Any) -> None:
        """Merge ``changes`` into the job's state and rewrite ``state.json`` whole (0600)."""
        self.state.update(changes)
        write_private_atomic(self.job_dir / "state.json", json.dumps(self.state, indent=1).encode())

    def stop_request(self) -> dict[str, Any] | None:
        """The job's stop request (``stop.json``, or a SIGTERM this runner received), else ``None``."""
        path = self.job_dir / "stop.json"
        if path.exists():
            try:
                return json.loads(path.read_text())
            except ValueError:
                return {"reason": "stop requested"}
        if self.stop_signalled:
            return {"reason": "runner received SIGTERM"}
        return None

    def run(self) -> int:
        """Take the GPUs, start the command in a process group of its own and supervise it.

        :return: the runner's exit status, 0 whenever it recorded an outcome in ``state.json``.
        """
        signal.signal(signal.SIGTERM, self._on_sigterm)
        # From here on a stopper signals this process rather than relying on stop.json alone.
        self.write_state(runner_pid=os.getpid(), runner_start_ticks=process_start_ticks(os.getpid()))
        request = self.stop_request()
        if request is not None:
            self.write_state(state="STOPPED", message=str(request.get("reason")), ended_at=utcnow())
            return 0
        gpus = self.take_gpus()
        if gpus is None:
            return 0
        env = job_env(os.environ)
        env["CUDA_VISIBLE_DEVICES"] = ",".join(g["index"] for g in gpus)
        env["TRAINKIT_GPU_COUNT"] = str(len(gpus))
        log = open_private_append(self.job_dir / "output.log")  # the child writes to it
        try:
            child = subprocess.Popen(
                self.job["command"],
                cwd=self.job["workdir"],
                env=env,
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                process_group=0,
                # The child holds the GPU locks too, so they stay taken if this runner dies first.
                pass_fds=[f.fileno() for f in self.lock_files],
            )
        except OSError as err:
            log.write(f"trainkit: cannot start {self.job['command'][0]!r}: {err}\n".encode())
            self.write_state(
                state="FAILED", message=f"cannot start command: {err}", ended_at=utcnow(), exit_code=None
            )
            return 0
        started = time.monotonic()
        where = f"GPU {','.join(g['index'] for g in gpus)}" if gpus else "CPU"
        self.write_state(
            state="RUNNING",
            message=f"running {os.path.basename(self.job['command'][0])} (pid {child.pid}) on {where}",
            child_pid=child.pid,
            child_pgid=child.pid,
            started_at=utcnow(),
            gpus=gpus,
        )
        return self.supervise(child, started, log)

    def supervise(self, child: subprocess.Popen[bytes], started: float, log: Any) -> int:
        """Wait for the command; on a stop request or past ``max_runtime`` send its group SIGTERM,
        then SIGKILL after the grace period; record the outcome."""
        max_runtime = float(self.job["max_runtime"])
        grace = float(self.job["grace_seconds"])
        terminate_at: float | None = None
        outcome: tuple[str, str] | None = None
        while True:
            code = child.poll()
            if code is not None:
                break
            if outcome is None:
                request = self.stop_request()
                if request is not None:
                    outcome = ("STOPPED", str(request.get("reason") or "stop requested"))
                elif time.monotonic() - started > max_runtime:
                    outcome = ("FAILED", f"exceeded max_runtime of {int(max_runtime)} s")
                if outcome is not None:
                    self.write_state(state="STOPPING", message=outcome[1])
                    log.write(f"\ntrainkit: {outcome[1]}; sending SIGTERM\n".encode())
                    _killpg(child.pid, signal.SIGTERM)
                    terminate_at = time.monotonic() + grace
            elif terminate_at is not None and time.monotonic() > terminate_at:
                log.write(f"trainkit: still running {int(grace)} s after SIGTERM; sending SIGKILL\n".encode())
                _killpg(child.pid, signal.SIGKILL)
                terminate_at = None
            time.sleep(POLL_SECONDS)
        # Whatever the command left behind in its group goes with it.
        _killpg(child.pid, signal.SIGKILL)
        ended = utcnow()
        if outcome is not None:
            state, message = outcome
        elif code == 0:
            state, message = "SUCCEEDED", "exit code 0"
        else:
            state, message = "FAILED", _exit_message(code)
        self.write_state(
            state=state,
            message=message,
            exit_code=code,
            ended_at=ended,
            billable_seconds=round(time.monotonic() - started, 3),
        )
        log.close()
        return 0

    def take_gpus(self) -> list[dict[str, str]] | None:
        """Lock ``gpu_count`` free GPUs, waiting while they are busy; ``None`` if stopped meanwhile."""
        needed = int(self.job["gpu_count"])
        if needed == 0:
            return []
        host_gpus = [{"index": str(g["index"]), "name": g.get("name", "")} for g in self.job["host_gpus"]]
        lock_dir = Path(self.job["root"]) / "gpu-locks"
        lock_dir.mkdir(parents=True, exist_ok=True)
        deadline = time.monotonic() + float(self.job["max_wait"])
        waiting_logged = False
        while True:
            taken = _lock_free_gpus(host_gpus, lock_dir, needed)
            if taken is not None:
                self._hold_locks(taken)
                return [gpu for gpu, _ in taken]
            if not waiting_logged:
                self.write_state(message=f"waiting for {needed} free GPU(s)")
                waiting_logged = True
            if self._give_up_waiting(needed, deadline):
                return None
            time.sleep(GPU_WAIT_SECONDS)

    def _hold_locks(self, taken: list[tuple[dict[str, str], Any]]) -> None:
        """Keep the locks for the job's lifetime, each naming the job that holds it."""
        self.lock_files = [handle for _, handle in taken]
        for _, handle in taken:
            handle.seek(0)
            handle.truncate()
            handle.write(self.job["job_id"])
            handle.flush()

    def _give_up_waiting(self, needed: int, deadline: float) -> bool:
        """Record the outcome and say so when a stop was asked for or ``max_wait`` has passed."""
        request = self.stop_request()
        if request is not None:
            self.write_state(state="STOPPED", message=str(request.get("reason")), ended_at=utcnow())
            return True
        if time.monotonic() > deadline:
            self.write_state(
                state="FAILED", message=f"no {needed} free GPU(s) within max_wait", ended_at=utcnow()
            )
            return True
        return False

    def _on_sigterm(self, signum: int, frame: Any) -> None:
        self.stop_signalled = True


def _lock_free_gpus(
    host_gpus: list[dict[str, str]], lock_dir: Path, needed: int
) -> list[tuple[dict[str, str], Any]] | None:
    """``needed`` GPUs with their lock files held (GPUs in host order), or ``None`` with none held."""
    taken: list[tuple[dict[str, str], Any]] = []
    for gpu in host_gpus:
        handle = open(lock_dir / f"gpu{gpu['index']}.lock", "a+")  # noqa: SIM115 - held for the job
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            handle.close()
            continue
        taken.append((gpu, handle))
        if len(taken) == needed:
            return taken
    for _, handle in taken:
        handle.close()
    return None


def job_env(environ: Mapping[str, str]) -> dict[str, str]:
    """The command's environment: the runner's, less what only the runner needed."""
    env = dict(environ)
    job_pythonpath = env.pop(JOB_PYTHONPATH_VAR, "")
    if job_pythonpath:
        env["PYTHONPATH"] = job_pythonpath
    else:
        env.pop("PYTHONPATH", None)
    return env


def _killpg(pgid: int, sig: int) -> None:
    try:
        os.killpg(pgid, sig)
    except (ProcessLookupError, PermissionError):
        pass


def _exit_message(code: int) -> str:
    if code < 0:
        try:
            return f"killed by signal {signal.Signals(-code).name}"
        except ValueError:
            return f"killed by signal {-code}"
    return f"exit code {code}"


def main(argv: list[str]) -> int:
    """Run the job in the folder ``argv[0]``; a runner error is recorded as FAILED, then raised."""
    if len(argv) != 1:
        print(
            "usage: python -m airflow_trainkit.backends.onprem.runner JOB_DIR (or runner.py JOB_DIR)",
            file=sys.stderr,
        )
        return 2
    runner = Runner(Path(argv[0]))
    try:
        return runner.run()
    except BaseException as err:
        runner.write_state(state="FAILED", message=f"runner error: {err!r}", ended_at=utcnow())
        raise


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
