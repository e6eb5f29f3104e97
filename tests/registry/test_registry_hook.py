"""The MLflow hook: connection parsing, credentials kept out of env, logs and errors; embedded default."""

from __future__ import annotations

import base64
import json
import logging
import os
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest

from airflow_trainkit.exceptions import TrainkitError
from airflow_trainkit.hooks.mlflow import MlflowHook

SECRET = "s3cr3t-Pa55w0rd-xyz"
TOKEN = "tok-9f8e7d6c5b4a-secret"


class _Recorder(BaseHTTPRequestHandler):
    """Answers /health with 200 and every API call with 401, recording the Authorization header."""

    seen: list[str] = []

    def _answer(self) -> None:
        self.seen.append(self.headers.get("Authorization") or "")
        if self.path.startswith("/health"):
            self.send_response(200)
            self.end_headers()
            self.wfile.write(b"OK")
            return
        body = json.dumps({"error_code": "UNAUTHENTICATED", "message": "bad credentials"}).encode()
        self.send_response(401)
        self.send_header("Content-Type", "application/json")
        self.end_headers()
        self.wfile.write(body)

    do_GET = do_POST = _answer

    def log_message(self, *args: Any) -> None:
        pass


@pytest.fixture()
def auth_server() -> Any:
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Recorder)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    _Recorder.seen = []
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()


@pytest.mark.parametrize(
    ("login", "password", "expected"),
    [
        ("alice", SECRET, "Basic " + base64.b64encode(f"alice:{SECRET}".encode()).decode()),
        ("", TOKEN, f"Bearer {TOKEN}"),
    ],
    ids=["basic", "token"],
)
def test_credentials_sent_but_never_in_env_logs_or_errors(
    auth_server, monkeypatch, caplog, login, password, expected
):
    monkeypatch.setenv(
        "AIRFLOW_CONN_MLFLOW_AUTH",
        json.dumps(
            {"conn_type": "trainkit_mlflow", "host": auth_server, "login": login, "password": password}
        ),
    )
    env_before = dict(os.environ)
    caplog.set_level(logging.DEBUG)
    hook = MlflowHook("mlflow_auth")
    assert password not in repr(hook.settings())
    with pytest.raises(Exception) as failure:
        hook.get_client().search_experiments(max_results=1)
    ok, message = hook.test_connection()
    assert not ok
    assert expected in _Recorder.seen  # the credentials reached the server
    assert dict(os.environ) == env_before
    for text in (caplog.text, str(failure.value), repr(failure.value), message):
        assert password not in text
        assert base64.b64encode(f"{login}:{password}".encode()).decode() not in text


def test_unreachable_server_names_the_uri(monkeypatch):
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    monkeypatch.setenv(
        "AIRFLOW_CONN_MLFLOW_DEAD",
        json.dumps({"conn_type": "trainkit_mlflow", "host": "127.0.0.1", "port": port, "password": TOKEN}),
    )
    with pytest.raises(TrainkitError, match=f"http://127.0.0.1:{port} is unreachable") as failure:
        MlflowHook("mlflow_dead").get_client()
    assert TOKEN not in str(failure.value)


def test_connection_fields(monkeypatch):
    monkeypatch.setenv(
        "AIRFLOW_CONN_MLFLOW_FIELDS",
        json.dumps(
            {
                "conn_type": "trainkit_mlflow",
                "host": "mlflow.internal",
                "schema": "https",
                "port": 8443,
                "extra": {"registry_uri": "https://registry.internal", "experiment": "churn"},
            }
        ),
    )
    settings = MlflowHook("mlflow_fields").settings()
    assert settings.tracking_uri == "https://mlflow.internal:8443"
    assert settings.registry_uri == "https://registry.internal"
    assert settings.experiment == "churn" and settings.auth == "none"
    monkeypatch.setenv("AIRFLOW_CONN_MLFLOW_NOHOST", json.dumps({"conn_type": "trainkit_mlflow"}))
    with pytest.raises(ValueError, match="host"):
        MlflowHook("mlflow_nohost").settings()


def test_embedded_default_is_sqlite_under_trainkit_home(monkeypatch, tmp_path):
    monkeypatch.setenv("TRAINKIT_HOME", str(tmp_path))
    monkeypatch.delenv("AIRFLOW_CONN_TRAINKIT_MLFLOW_DEFAULT", raising=False)
    settings = MlflowHook().settings()
    assert settings.tracking_uri == f"sqlite:///{tmp_path / 'mlflow' / 'mlflow.db'}"
    assert settings.artifact_location == (tmp_path / "mlflow" / "artifacts").as_uri()


def test_credentials_in_host_are_refused_without_echo(monkeypatch):
    monkeypatch.setenv(
        "AIRFLOW_CONN_MLFLOW_USERINFO",
        json.dumps({"conn_type": "trainkit_mlflow", "host": f"https://bob:{SECRET}@mlflow.internal"}),
    )
    with pytest.raises(ValueError, match="must not carry credentials") as failure:
        MlflowHook("mlflow_userinfo").settings()
    assert SECRET not in str(failure.value)
