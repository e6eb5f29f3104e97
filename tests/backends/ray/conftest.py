"""One real local Ray cluster for the whole session, and a connection that points at it."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parent))

from ray_testing import CONN_ID, RayCluster, connection_json  # noqa: E402
from trainkit_testing import environ_set  # noqa: E402


@pytest.fixture(scope="session")
def ray_cluster() -> RayCluster:
    cluster = RayCluster().start()
    try:
        yield cluster
    finally:
        cluster.stop()


@pytest.fixture(scope="session")
def ray_env(ray_cluster: RayCluster) -> dict[str, str]:
    env = {f"AIRFLOW_CONN_{CONN_ID.upper()}": connection_json(ray_cluster.address)}
    with environ_set(env):
        yield env


@pytest.fixture
def cluster(ray_cluster: RayCluster, ray_env: dict[str, str]) -> RayCluster:
    """The session's cluster; every job a test leaves running is stopped after it."""
    yield ray_cluster
    ray_cluster.stop_all_jobs()


@pytest.fixture
def backend(ray_env: dict[str, str]):
    from airflow_trainkit.backends.ray import RayBackend

    return RayBackend(CONN_ID)


@pytest.fixture(scope="session")
def churn_table(tmp_path_factory: pytest.TempPathFactory) -> str:
    """A small churn table every job of the session reads (the cluster is on this host)."""
    from airflow_trainkit.demo.data import write_churn_dataset

    path = tmp_path_factory.mktemp("ray-data") / "churn.parquet"
    write_churn_dataset(path, rows=3000, seed=7)
    return str(path)
