"""Shared test set-up: one Airflow home with a migrated sqlite DB for the whole session.

The environment is set here, at import, because Airflow reads it when first imported.
"""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest

REPO = Path(__file__).resolve().parents[1]
_HOME = Path(tempfile.mkdtemp(prefix="trainkit-tests-"))
os.environ.update(
    {
        "AIRFLOW_HOME": str(_HOME),
        "AIRFLOW__CORE__DAGS_FOLDER": str(REPO / "example_dags"),
        "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
        "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": f"sqlite:///{_HOME / 'airflow.db'}",
        "AIRFLOW__CORE__UNIT_TEST_MODE": "False",
        "GX_ANALYTICS_ENABLED": "False",
        "MLFLOW_ENABLE_TELEMETRY": "false",
        "TRAINKIT_ONPREM_GPUS": "none",
    }
)


@pytest.fixture(scope="session")
def airflow_home() -> Path:
    return _HOME


@pytest.fixture(scope="session")
def airflow_db(airflow_home: Path) -> Path:
    """A migrated metadata DB, made once per session (``dag.test()`` needs it)."""
    subprocess.run([sys.executable, "-m", "airflow", "db", "migrate"], check=True, capture_output=True)
    return airflow_home / "airflow.db"


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
) -> dict[str, Any]:
    ti = FakeTaskInstance(
        dag_id=dag_id, run_id=run_id, task_id=task_id, map_index=map_index, try_number=try_number, xcoms={}
    )
    return {
        "ti": ti,
        "task_instance": ti,
        "task_state_store": store if store is not None else TaskStateStore(),
    }


@pytest.fixture
def onprem_root(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A fresh on-prem job root (and trainkit home) per test."""
    monkeypatch.setenv("TRAINKIT_HOME", str(tmp_path / "trainkit"))
    monkeypatch.setenv("TRAINKIT_ONPREM_ROOT", str(tmp_path / "jobs"))
    return tmp_path / "jobs"
