"""A local Azure ML workspace for the Azure ML backend, and connections that point at it."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parent))

from _azure_ml_fake import FakeAzureML  # noqa: E402
from azure_testing import CONN_ID, add_stores, connection_json  # noqa: E402
from trainkit_testing import environ_set  # noqa: E402


@pytest.fixture(scope="session")
def azure_server() -> FakeAzureML:
    fake = FakeAzureML().start()
    yield fake
    fake.stop()


@pytest.fixture(scope="session")
def azure_env(azure_server: FakeAzureML) -> dict[str, str]:
    """``azure_trainkit_test``: a client-secret ``azure`` connection whose calls all reach the fake."""
    env = {f"AIRFLOW_CONN_{CONN_ID.upper()}": connection_json(azure_server.endpoint_url)}
    with environ_set(env):
        yield env


@pytest.fixture
def fake(azure_server: FakeAzureML, azure_env: dict[str, str]) -> FakeAzureML:
    azure_server.reset()
    add_stores(azure_server)
    return azure_server


@pytest.fixture
def backend(azure_env: dict[str, str]):
    from airflow_trainkit.backends.azure_ml import AzureMLBackend

    backend = AzureMLBackend(CONN_ID)
    backend.cancel_backoff = 0.0
    return backend
