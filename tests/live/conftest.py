"""One real Airflow deployment for the live tests of a session: the demo DAG, and the fault matrix's
DAGs with the backends its selected cases need (their fakes, clusters or hosts started first)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from deployment import Deployment
from fault_backends import row
from fault_matrix import LiveBackend, write_dags
from fault_scenarios import BY_NAME, selected_cases

REPO = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="session")
def matrix_backends(request: pytest.FixtureRequest) -> dict[str, LiveBackend]:
    """The backend rows the selected cases need, by name (not started yet)."""
    return {name: row(name) for name in dict.fromkeys(b for b, _ in selected_cases(request.session))}


@pytest.fixture(scope="session")
def live_deployment(
    request: pytest.FixtureRequest,
    tmp_path_factory: pytest.TempPathFactory,
    matrix_backends: dict[str, LiveBackend],
) -> Iterator[Deployment]:
    home = tmp_path_factory.mktemp("live")
    examples = REPO / "example_dags"
    dag_files = [
        examples / "trainkit_demo.py",
        examples / "contracts",
        Path(__file__).parent / "dags" / "fault_matrix.py",
    ]
    # Blocking cases hold a worker slot each while they wait: room for every selected case at once.
    env = {"TRAINKIT_ONPREM_GPUS": "none", "AIRFLOW__CORE__PARALLELISM": "32"}
    started: list[LiveBackend] = []
    deployment = None
    try:
        for name, backend in matrix_backends.items():
            backend.start(home / f"backend-{name}")
            started.append(backend)
            env.update(backend.deployment_env(home))
        deployment = Deployment(home, dag_files, env)
        scenarios = dict.fromkeys(s for _, s in selected_cases(request.session))
        write_dags(deployment.dags, list(matrix_backends.values()), [BY_NAME[s] for s in scenarios])
        deployment.start()
        yield deployment
    except Exception:
        if deployment is not None:
            for name in ("api-server", "scheduler", "dag-processor", "triggerer"):
                print(f"--- {name} ---\n{deployment.log_tail(name)}")
        raise
    finally:
        if deployment is not None:
            deployment.stop()
        for backend in started:
            backend.stop()
