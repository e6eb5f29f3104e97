"""Helpers shared by the tests (importable, unlike conftest): an Airflow-like task context."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
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
    """A task's context; ``with_store=False`` leaves out ``task_state_store`` (Airflow before 3.3)."""
    ti = FakeTaskInstance(
        dag_id=dag_id, run_id=run_id, task_id=task_id, map_index=map_index, try_number=try_number, xcoms={}
    )
    context: dict[str, Any] = {"ti": ti, "task_instance": ti}
    if with_store:
        context["task_state_store"] = store if store is not None else TaskStateStore()
    return context


def first_trigger_event(trigger: Any) -> dict[str, Any]:
    """Run a trigger to its one event, as the triggerer would, and return the event's payload."""

    async def first() -> dict[str, Any]:
        async for event in trigger.run():
            return event.payload
        raise AssertionError("trigger ended without an event")

    return asyncio.run(first())


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
