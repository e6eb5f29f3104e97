"""The MLflow server fixture has a bound: a server that hangs fails it, and leaves no process behind."""

from __future__ import annotations

import os
import signal
import subprocess

import pytest
from conftest import mlflow_server_at

pytestmark = pytest.mark.integration  # starts an MLflow server


def test_a_hung_mlflow_server_fails_its_fixture_within_its_bound(tmp_path):
    group: list[int] = []

    def hang(proc: subprocess.Popen) -> None:  # the server starts, then never answers
        group.append(proc.pid)
        os.killpg(proc.pid, signal.SIGSTOP)

    with pytest.raises(TimeoutError) as failed:
        with mlflow_server_at(tmp_path, ready_within=3, started=hang):
            pytest.fail("a stopped server cannot be ready")
    message = str(failed.value)
    assert message.startswith("the MLflow tracking server did not answer http://127.0.0.1:")
    assert "/health within 3 s" in message
    with pytest.raises(ProcessLookupError):  # the whole group is gone
        os.killpg(group[0], 0)
