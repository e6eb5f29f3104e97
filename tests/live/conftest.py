"""Real Airflow deployments for the live tests of a session: the first holds the demo DAG and the
first group of the fault matrix's selected cases; further groups (``-m faults`` selects all 84)
get deployments of their own, one after another, so that one sqlite metadata DB never serves more
cases than it keeps up with."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from deployment import Deployment
from fault_deployments import Pairs, running_deployment
from fault_matrix import LiveBackend
from fault_scenarios import deployment_groups, selected_cases


@pytest.fixture(scope="session")
def fault_groups(request: pytest.FixtureRequest) -> list[Pairs]:
    """The selected matrix cases, grouped by backend rows into one deployment each."""
    return deployment_groups(selected_cases(request.session))


@pytest.fixture(scope="session")
def first_deployment(
    tmp_path_factory: pytest.TempPathFactory, fault_groups: list[Pairs]
) -> Iterator[tuple[Deployment, dict[str, LiveBackend]]]:
    """The deployment with the demo DAG and the first group of matrix cases (if any)."""
    with running_deployment(
        tmp_path_factory.mktemp("live"), fault_groups[0] if fault_groups else [], demo=True
    ) as it:
        yield it


@pytest.fixture(scope="session")
def live_deployment(first_deployment: tuple[Deployment, dict[str, LiveBackend]]) -> Deployment:
    return first_deployment[0]
