"""A local Vertex AI JobService for the Vertex AI backend, and a connection that points at it."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parent))

from _vertex_fake import FakeVertex  # noqa: E402
from trainkit_testing import environ_set  # noqa: E402
from vertex_testing import CONN_ID, connection_json  # noqa: E402


@pytest.fixture(scope="session")
def vertex_server() -> FakeVertex:
    fake = FakeVertex().start()
    yield fake
    fake.stop()


@pytest.fixture(scope="session")
def gcp_env(vertex_server: FakeVertex) -> dict[str, str]:
    """``gcp_trainkit_test``: a service account key that never reaches a Google endpoint."""
    env = {f"AIRFLOW_CONN_{CONN_ID.upper()}": connection_json(vertex_server.endpoint_url)}
    with environ_set(env):
        yield env


@pytest.fixture
def fake(vertex_server: FakeVertex, gcp_env: dict[str, str]) -> FakeVertex:
    vertex_server.reset()
    return vertex_server


@pytest.fixture
def backend(gcp_env: dict[str, str]):
    from airflow_trainkit.backends.vertex_ai import VertexAIBackend

    return VertexAIBackend(CONN_ID)
