"""Ray token authentication, against a second real local cluster started with ``RAY_AUTH_MODE=token``."""

from __future__ import annotations

import json
import logging
import secrets

import pytest
from ray_testing import RayCluster, connection_json
from trainkit_testing import environ_set

from airflow_trainkit.exceptions import TrainingJobUnreachable

pytestmark = pytest.mark.integration
TOKEN = secrets.token_hex(24)


@pytest.fixture(scope="module")
def token_cluster() -> RayCluster:
    # The token reaches the cluster's processes through their environment only while they start.
    with environ_set({"RAY_AUTH_MODE": "token", "RAY_AUTH_TOKEN": TOKEN}):
        cluster = RayCluster(num_cpus=1)
        cluster.start()
    try:
        yield cluster
    finally:
        cluster.stop()


def backend_with(monkeypatch, address: str, conn_id: str, token: str | None):
    from airflow_trainkit.backends.ray import RayBackend

    conn = json.loads(connection_json(address))
    if token:
        conn["password"] = token
    monkeypatch.setenv(f"AIRFLOW_CONN_{conn_id.upper()}", json.dumps(conn))
    return RayBackend(conn_id)


def test_the_token_is_sent_as_a_bearer_header_and_a_refused_one_is_authentication_failed(
    token_cluster, monkeypatch, caplog
):
    caplog.set_level(logging.DEBUG)
    good = backend_with(monkeypatch, token_cluster.address, "ray_token_good", TOKEN)
    assert good.find("tk-no-such-job-a1") is None  # authorised: the cluster says "no such job"
    wrong = backend_with(monkeypatch, token_cluster.address, "ray_token_wrong", "not-" + TOKEN[4:])
    with pytest.raises(
        TrainingJobUnreachable, match=r"authentication failed: .*'ray_token_wrong' \(HTTP 403\)"
    ):
        wrong.find("tk-no-such-job-a1")
    missing = backend_with(monkeypatch, token_cluster.address, "ray_token_missing", None)
    with pytest.raises(
        TrainingJobUnreachable, match=r"without a token of connection 'ray_token_missing' \(HTTP 401\)"
    ):
        missing.find("tk-no-such-job-a1")
    assert TOKEN not in caplog.text and TOKEN[4:] not in caplog.text
