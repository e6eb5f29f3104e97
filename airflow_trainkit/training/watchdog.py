"""A watchdog that stops a job when the task process waiting on it dies without a word.

Nothing in a task survives SIGKILL (an out-of-memory kill), and Airflow 3.3 runs nothing else for
it: the supervisor reports the try failed (or up for retry) and no failure callback runs, because
task callbacks run inside the task process (``docs/stopping.md`` has the details). So while a
task waits for its job in the worker (``deferrable=False``), a small detached process watches it
through a pipe: the task writes ``done`` before it stops waiting in any ordinary way; end-of-file
without it means the task process died. The watchdog then stops the job, unless the try has a
retry left (the retry re-attaches to the running job instead).

The job's connection travels to the watchdog on that pipe (stdin), never on disk or in argv.
"""

from __future__ import annotations

import json
import logging
import os
import subprocess
import sys
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from airflow_trainkit.training.backend import JobRef

log = logging.getLogger(__name__)
DONE = b"done\n"


class Watchdog:
    """The task's end of the pipe to a running watchdog."""

    def __init__(self, process: subprocess.Popen[bytes]) -> None:
        self.process = process

    def disarm(self) -> None:
        """The task stops waiting in an ordinary way: the watchdog exits without touching the job."""
        stdin = self.process.stdin
        if stdin is None or stdin.closed:
            return
        try:
            stdin.write(DONE)
            stdin.close()
        except OSError:  # the watchdog is gone already
            pass


def arm(ref: JobRef, *, conn_id: str | None, retry_left: bool, log_dir: str) -> Watchdog | None:
    """Start a watchdog for ``ref``; ``None`` (and a warning) if it cannot start.

    :param retry_left: whether Airflow runs the task again if this try dies; then the job is left
        running for the retry to re-attach to.
    :param log_dir: where the watchdog writes its log (a private file, one per job).
    """
    config = {
        "ref": ref.to_dict(),
        "conn_id": conn_id,
        "retry_left": retry_left,
        "connections": _connection_env(ref, conn_id),
    }
    try:
        os.makedirs(log_dir, mode=0o700, exist_ok=True)
        log_path = os.path.join(log_dir, f"{ref.job_name}.log")
        log_fd = os.open(log_path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
        try:
            process = subprocess.Popen(
                [sys.executable, "-m", "airflow_trainkit.training.watchdog"],
                stdin=subprocess.PIPE,
                stdout=log_fd,
                stderr=log_fd,
                # Its own session: the supervisor's kill of the task's process group misses it.
                start_new_session=True,
                env=_watchdog_env(),
            )
        finally:
            os.close(log_fd)
        if process.stdin is not None:  # always, with stdin=PIPE
            process.stdin.write(json.dumps(config).encode() + b"\n")
            process.stdin.flush()
    except OSError as err:
        log.warning(
            "Could not start a watchdog for job %s (%s): a hard kill would leave it running",
            ref.job_name,
            err,
        )
        return None
    return Watchdog(process)


def _watchdog_env() -> dict[str, str]:
    """The task's environment, minus what stops Airflow from importing outside a task.

    A task's supervisor sets the metadata DB URL to ``airflow-db-not-allowed:///``, which Airflow's
    settings cannot even parse at import; the watchdog never touches the DB, so it gets an in-memory
    sqlite URL instead.
    """
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(p for p in sys.path if p)}
    for name in ("AIRFLOW__DATABASE__SQL_ALCHEMY_CONN", "AIRFLOW__CORE__SQL_ALCHEMY_CONN"):
        if env.get(name, "").startswith("airflow-db-not-allowed"):
            env[name] = "sqlite://"
    return env


def _connection_env(ref: JobRef, conn_id: str | None) -> dict[str, str]:
    """``AIRFLOW_CONN_<ID>`` for each connection the job's backend reads (the on-prem connection
    and its SSH hosts' connections, say), so the watchdog can stop the job without the task's
    supervisor (which answers connection lookups only while the task runs)."""
    if not conn_id:
        return {}
    from airflow_trainkit._compat import BaseHook
    from airflow_trainkit.training.backend import get_backend

    try:
        conn_ids = get_backend(ref.backend)(conn_id).connection_ids()
    except Exception:  # settings that cannot be read: the job's own connection at least
        conn_ids = [conn_id]
    env = {}
    for name in conn_ids:
        try:
            connection = BaseHook.get_connection(name)
        except Exception:  # a default connection that does not exist: the backend copes without
            continue
        env[f"AIRFLOW_CONN_{name.upper()}"] = connection.as_json()
    return env


def watch(stream: Any) -> int:
    """The watchdog's body: read the config line, wait for ``done`` or end-of-file, act."""
    config = json.loads(stream.readline())
    os.environ.update(config.get("connections") or {})
    config.pop("connections", None)
    from airflow_trainkit.training.backend import JobRef, get_backend

    ref = JobRef.from_dict(config["ref"])
    # Import the backend (and Airflow) now, while the task is alive, so a stop is not seconds late.
    backend = get_backend(ref.backend)(config.get("conn_id"))
    rest = stream.read()  # blocks until the task writes "done" and closes, or dies
    if rest.strip() == DONE.strip():
        return 0
    if config["retry_left"]:
        print(
            f"task waiting on {ref.backend} job {ref.job_name} died; a retry will re-attach to it", flush=True
        )
        return 0
    print(
        f"task waiting on {ref.backend} job {ref.job_name} died with no retry left: stopping the job",
        flush=True,
    )
    import tenacity

    backend = get_backend(ref.backend)(config.get("conn_id"))

    # A throttled or briefly unreachable API gets a few more tries; nobody else will stop this job.
    def report(state: tenacity.RetryCallState) -> None:
        error = state.outcome.exception() if state.outcome else None
        print(f"stop failed ({type(error).__name__}: {error}); trying again", flush=True)

    for attempt in tenacity.Retrying(
        stop=tenacity.stop_after_attempt(6),
        wait=tenacity.wait_exponential(max=30),
        before_sleep=report,
        reraise=True,
    ):
        with attempt:
            backend.stop(ref, reason="the Airflow task waiting on this job was killed and has no retry left")
    print("stop requested", flush=True)
    return 0


def main() -> int:
    """The watchdog process's entry point: its job and connections come on stdin, never in a file."""
    return watch(sys.stdin.buffer)


if __name__ == "__main__":
    sys.exit(main())
