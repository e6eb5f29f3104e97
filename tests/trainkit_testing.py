"""Helpers shared by the tests (importable, unlike conftest): an Airflow-like task context."""

from __future__ import annotations

import asyncio
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from types import SimpleNamespace
from typing import Any

REPO = Path(__file__).resolve().parents[1]
# dag.test() of one example DAG file in a fresh interpreter; exits 0 on a successful run.
_RUN_DAG = """
import sys
from airflow.sdk import DagRunState
import runpy
dag = runpy.run_path(sys.argv[1])["dag"]
run = dag.test()
print("RUN_STATE", run.state)
sys.exit(0 if run.state == DagRunState.SUCCESS else 1)
"""


class TaskStateStore:
    """Airflow 3.3's ``task_state_store`` API (get/set/delete) over a dict, for unit tests."""

    def __init__(self) -> None:
        self.values: dict[str, Any] = {}

    def get(self, key: str, default: Any = None) -> Any:
        return self.values.get(key, default)

    def set(self, key: str, value: Any, **_: Any) -> None:
        if value is None:
            raise ValueError("None is refused")
        self.values[key] = value

    def delete(self, key: str) -> None:
        self.values.pop(key, None)


class FakeTaskInstance(SimpleNamespace):
    def xcom_push(self, key: str, value: Any) -> None:
        self.xcoms[key] = value


def make_context(
    *,
    dag_id: str = "dag",
    run_id: str = "run",
    task_id: str = "train",
    map_index: int = -1,
    try_number: int = 1,
    store: TaskStateStore | None = None,
    with_store: bool = True,
) -> dict[str, Any]:
    """A task's context; ``with_store=False`` leaves out ``task_state_store`` (Airflow before 3.3).
    ``context["ti"].xcoms`` holds what the task pushed."""
    ti = FakeTaskInstance(
        dag_id=dag_id, run_id=run_id, task_id=task_id, map_index=map_index, try_number=try_number, xcoms={}
    )
    context: dict[str, Any] = {"ti": ti, "task_instance": ti, "run_id": run_id}
    if with_store:
        context["task_state_store"] = store if store is not None else TaskStateStore()
    return context


async def trigger_event(trigger: Any) -> dict[str, Any]:
    """The payload of a trigger's one event, awaited in the running loop (as the triggerer does)."""
    async for event in trigger.run():
        return event.payload
    raise AssertionError("trigger ended without an event")


def first_trigger_event(trigger: Any) -> dict[str, Any]:
    """Run a trigger to its one event in a loop of its own and return the event's payload."""
    return asyncio.run(trigger_event(trigger))


def resume(operator: Any, context: dict[str, Any], deferred: Any) -> Any:
    """What the task does after its deferral (``deferred``: the ``TaskDeferred``): run the trigger to
    its event, then hand the event to the method the operator named."""
    method = getattr(operator, deferred.method_name)
    return method(context, event=first_trigger_event(deferred.trigger), **(deferred.kwargs or {}))


def wait_until(
    predicate: Callable[[], Any],
    what: str,
    *,
    timeout: float = 60,
    every: float = 0.1,
    log: Path | None = None,
) -> Any:
    """Poll ``predicate`` until it returns something true and return that; after ``timeout`` seconds,
    fail saying ``what`` did not happen (with the predicate's last answer and the end of ``log``)."""
    end = time.monotonic() + timeout
    while True:
        value = predicate()
        if value or time.monotonic() >= end:
            break
        time.sleep(every)
    if not value:
        tail = f"; {log.name}: {_tail(log)}" if log is not None else ""
        raise AssertionError(f"{what}: not within {timeout:g} s (last: {value!r}){tail}")
    return value


def job_reaches(backend: Any, job: Any, predicate: Callable[[Any], Any], *, timeout: float = 60) -> Any:
    """The job's status once ``predicate(status)`` holds (fails if it does not within ``timeout`` s)."""

    def reached() -> Any:
        status = backend.describe(job)
        return status if predicate(status) else None

    return wait_until(reached, f"job {job} to reach the expected state", timeout=timeout)


def settled(backend: Any, job: Any, *, timeout: float = 60) -> Any:
    """The job's status once it has ended (fails if it has not within ``timeout`` seconds)."""
    return job_reaches(backend, job, lambda status: not status.phase.active, timeout=timeout)


@contextmanager
def environ_set(values: Mapping[str, str]) -> Iterator[None]:
    """Set environment variables for a whole session fixture (monkeypatch is per test), then restore them."""
    saved = {key: os.environ.get(key) for key in values}
    os.environ.update(values)
    try:
        yield
    finally:
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value


def run_example_dag(
    file_name: str, airflow_home: Path, env: Mapping[str, str]
) -> subprocess.CompletedProcess:
    """``dag.test()`` of ``example_dags/<file_name>`` in its own process and metadata DB (migrated
    first), with ``env`` (connections, usually) added to this process's environment."""
    full_env = {
        **os.environ,
        "AIRFLOW_HOME": str(airflow_home),
        "AIRFLOW__CORE__DAGS_FOLDER": str(REPO / "example_dags"),
        "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
        "PYTHONPATH": str(REPO),
        **env,
    }
    airflow = str(Path(sys.executable).parent / "airflow")
    subprocess.run([airflow, "db", "migrate"], env=full_env, check=True, capture_output=True)
    return subprocess.run(
        [sys.executable, "-c", _RUN_DAG, str(REPO / "example_dags" / file_name)],
        env=full_env,
        capture_output=True,
        text=True,
    )


@contextmanager
def isolated_backends() -> Iterator[dict[str, Any]]:
    """Backends registered inside stay inside: every installed backend is registered first, then
    the registry is a copy until the block ends."""
    import airflow_trainkit.training.backend as backend_module

    for name in backend_module.available_backends():
        backend_module.get_backend(name)
    saved = backend_module._REGISTRY
    backend_module._REGISTRY = dict(saved)
    try:
        yield backend_module._REGISTRY
    finally:
        backend_module._REGISTRY = saved


@contextmanager
def server_process(
    command: list[str],
    health_url: str,
    what: str,
    *,
    log_path: Path,
    ready_within: float,
    started: Callable[[subprocess.Popen], None] | None = None,
    **popen: Any,
) -> Iterator[subprocess.Popen]:
    """Run ``command`` in a process group of its own until the block ends; it must answer
    ``health_url`` with 200 within ``ready_within`` seconds, else the block fails saying ``what`` did
    not come up, with the end of its log. The group is stopped on the way out either way.
    ``started`` is called with the process once it started (a test of this helper hangs it there)."""
    with log_path.open("wb") as log:
        proc = subprocess.Popen(
            command,
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
            **popen,
        )
    try:
        if started is not None:
            started(proc)
        end = time.monotonic() + ready_within
        while True:
            if proc.poll() is not None:
                raise RuntimeError(f"{what} exited with {proc.returncode}: {_tail(log_path)}")
            try:
                with urllib.request.urlopen(
                    health_url, timeout=max(0.1, min(5, end - time.monotonic()))
                ) as answer:
                    if answer.status == 200:
                        break
            except OSError:
                pass
            if time.monotonic() >= end:
                raise TimeoutError(
                    f"{what} did not answer {health_url} within {ready_within:g} s: {_tail(log_path)}"
                )
            time.sleep(0.2)
        yield proc
    finally:
        stop_process_group(proc)


def stop_process_group(proc: subprocess.Popen, grace: float = 30) -> None:
    """SIGTERM the process's group (SIGCONT first, should it be stopped), wait up to ``grace``
    seconds for the leader, then SIGKILL whatever of the group is left."""
    for sig in (signal.SIGCONT, signal.SIGTERM):
        try:
            os.killpg(proc.pid, sig)
        except ProcessLookupError:
            break
    try:
        proc.wait(timeout=grace)
    except subprocess.TimeoutExpired:
        pass
    try:
        os.killpg(proc.pid, signal.SIGKILL)
    except ProcessLookupError:
        pass
    proc.wait()


def _tail(path: Path, chars: int = 2000) -> str:
    return path.read_text(errors="replace")[-chars:] if path.exists() else "(no log)"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@dataclass(frozen=True)
class TrainingTasks:
    """``TrainModelOperator`` tasks of one DAG run on one backend: their operators, contexts and job
    names, for a backend's lifecycle suite (re-attach, stop on every exit path)."""

    backend: str
    conn_id: str | None
    spec: Mapping[str, Any]
    dag_id: str
    run_id: str = "manual__2026-01-05T10:00:00+00:00"

    def operator(self, task_id: str, **kwargs: Any) -> Any:
        from airflow_trainkit.operators.training import TrainModelOperator

        spec = kwargs.pop("spec", self.spec)
        return TrainModelOperator(
            task_id=task_id, backend=self.backend, spec=spec, backend_conn_id=self.conn_id, **kwargs
        )

    def context(
        self, task_id: str, try_number: int = 1, store: TaskStateStore | None = None
    ) -> dict[str, Any]:
        """The task's context; without ``store`` it has no task state store (Airflow before 3.3)."""
        return make_context(
            dag_id=self.dag_id,
            run_id=self.run_id,
            task_id=task_id,
            try_number=try_number,
            store=store,
            with_store=store is not None,
        )

    def job_name(self, task_id: str, attempt: int = 1) -> str:
        from airflow_trainkit.training.identity import JobIdentity

        return JobIdentity(self.dag_id, self.run_id, task_id).job_name(attempt)
