"""Fixtures for the registry tests: a real MLflow tracking server and real trained model folders."""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path
from typing import Any

import pytest

sys.path.insert(0, str(Path(__file__).parent))

from model_output import train_output  # noqa: E402
from trainkit_testing import free_port, server_process  # noqa: E402

os.environ.setdefault("MLFLOW_DISABLE_TELEMETRY", "true")


MLFLOW_READY_WITHIN = 120  # seconds; a cold start here takes about 10


def mlflow_server_at(root: Path, ready_within: float = MLFLOW_READY_WITHIN, **hooks: Any) -> Any:
    """``mlflow server`` on sqlite and a local artifact root under ``root``, on 127.0.0.1 and a free
    port, as a context manager that yields its URI once it answers ``/health``."""
    port = free_port()
    command = [
        str(Path(sys.executable).with_name("mlflow")),
        "server",
        "--backend-store-uri",
        f"sqlite:///{root / 'mlflow.db'}",
        "--artifacts-destination",
        str(root / "artifacts"),
        "--host",
        "127.0.0.1",
        "--port",
        str(port),
        "--workers",
        "1",
    ]
    return server_process(
        command,
        f"http://127.0.0.1:{port}/health",
        "the MLflow tracking server",
        log_path=root / "server.log",
        ready_within=ready_within,
        cwd=root,
        env={**os.environ, "MLFLOW_DISABLE_TELEMETRY": "true"},
        **hooks,
    )


@pytest.fixture(scope="session")
def mlflow_server(tmp_path_factory: pytest.TempPathFactory) -> Any:
    with mlflow_server_at(tmp_path_factory.mktemp("mlflow-server")) as proc:
        yield f"http://127.0.0.1:{proc.args[proc.args.index('--port') + 1]}"


@pytest.fixture(scope="session")
def model_folders(tmp_path_factory: pytest.TempPathFactory) -> dict[str, tuple[Path, dict[str, Any]]]:
    """Two real built-in-trainer outputs: a decent classifier and a much weaker one."""
    root = tmp_path_factory.mktemp("models")
    good = train_output(root / "good", rounds=40)
    weak = train_output(root / "weak", rounds=3, rows=600, features=["age", "data_usage_gb"])
    return {"good": (root / "good", good), "weak": (root / "weak", weak)}


@pytest.fixture()
def server_conn(mlflow_server: str, monkeypatch: pytest.MonkeyPatch) -> str:
    """A ``trainkit_mlflow`` connection to the test server, from an AIRFLOW_CONN_ variable."""
    monkeypatch.setenv(
        "AIRFLOW_CONN_TRAINKIT_MLFLOW_TEST",
        json.dumps({"conn_type": "trainkit_mlflow", "host": mlflow_server}),
    )
    return "trainkit_mlflow_test"
