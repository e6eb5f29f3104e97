"""Shared test set-up: one Airflow home with a migrated sqlite DB for the whole session.

The environment is set here, at import, because Airflow reads it when first imported.
"""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
from collections.abc import Callable, Iterator
from pathlib import Path

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


@pytest.fixture
def onprem_root(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A fresh on-prem job root (and trainkit home) per test."""
    monkeypatch.setenv("TRAINKIT_HOME", str(tmp_path / "trainkit"))
    monkeypatch.setenv("TRAINKIT_ONPREM_ROOT", str(tmp_path / "jobs"))
    return tmp_path / "jobs"


@pytest.fixture
def umask() -> Iterator[Callable[[int], int]]:
    """``os.umask`` for one test (processes it starts inherit it); the umask is restored afterwards."""
    saved = os.umask(0o022)
    try:
        yield os.umask
    finally:
        os.umask(saved)
