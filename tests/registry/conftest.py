"""Fixtures for the registry tests: a real MLflow tracking server and real trained model folders."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path
from typing import Any

import pytest

sys.path.insert(0, str(Path(__file__).parent))

from model_output import train_output  # noqa: E402

os.environ.setdefault("MLFLOW_DISABLE_TELEMETRY", "true")


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.fixture(scope="session")
def mlflow_server(tmp_path_factory: pytest.TempPathFactory) -> Any:
    """``mlflow server`` on sqlite and a local artifact root, on 127.0.0.1 and a free port."""
    root = tmp_path_factory.mktemp("mlflow-server")
    port = _free_port()
    uri = f"http://127.0.0.1:{port}"
    mlflow_bin = str(Path(sys.executable).with_name("mlflow"))
    log_file = (root / "server.log").open("wb")
    proc = subprocess.Popen(
        [
            mlflow_bin,
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
        ],
        stdin=subprocess.DEVNULL,
        stdout=log_file,
        stderr=subprocess.STDOUT,
        cwd=root,
        env={**os.environ, "MLFLOW_DISABLE_TELEMETRY": "true"},
    )
    try:
        while True:
            if proc.poll() is not None:
                raise RuntimeError(
                    f"mlflow server exited with {proc.returncode}: "
                    f"{(root / 'server.log').read_text()[-2000:]}"
                )
            try:
                with urllib.request.urlopen(f"{uri}/health", timeout=5) as response:
                    if response.status == 200:
                        break
            except OSError:
                time.sleep(0.5)
        yield uri
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        log_file.close()


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
