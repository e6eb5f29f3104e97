"""The live fault matrix (issue 20): every selected backend x scenario in one real deployment.

``./run test -m faults`` runs all of it (about N minutes); the default run (CI) takes the ``ci``
subset: local on-prem's whole column of scenarios, and one scenario on each other backend. Each case
is one test; the fixture runs every selected case once, phase by phase (``fault_scenarios.py``),
prints the table and writes it as JSON to ``$TRAINKIT_FAULT_REPORT`` when that is set.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from deployment import Deployment
from fault_backends import ROWS
from fault_matrix import Case, LiveBackend, Outcome, report, save
from fault_scenarios import BY_NAME, SCENARIOS, run_all, selected_cases

pytestmark = [pytest.mark.live, pytest.mark.integration]
# What CI runs: one backend's full matrix, plus one scenario for each other backend.
CI_BACKEND = "onprem"
CI_ONE_EACH = {
    "onprem_ssh": "failing_job_retry",
    "ray": "mark_failed",
    "sagemaker": "sigkill_last_try",
    "vertex_ai": "lost_create",
    "azure_ml": "clear",
}
CASES = [
    pytest.param(
        backend,
        scenario.name,
        id=f"{backend}-{scenario.name}",
        marks=[pytest.mark.faults]
        + ([pytest.mark.ci] if backend == CI_BACKEND or CI_ONE_EACH.get(backend) == scenario.name else []),
    )
    for backend in ROWS
    for scenario in SCENARIOS
]


@pytest.fixture(scope="session")
def matrix(
    request: pytest.FixtureRequest, live_deployment: Deployment, matrix_backends: dict[str, LiveBackend]
) -> dict[tuple[str, str], Outcome]:
    """Run every selected case once; the outcomes by (backend, scenario)."""
    deployment = live_deployment
    cases = [Case(matrix_backends[b], BY_NAME[s], deployment) for b, s in selected_cases(request.session)]
    for case in cases:
        deployment.wait_for_dag(case.dag_id)
    outcomes = run_all(cases, concurrency=int(os.environ.get("TRAINKIT_FAULT_CONCURRENCY", "16")))
    print("\n" + report(outcomes))
    if os.environ.get("TRAINKIT_FAULT_REPORT"):
        save(outcomes, Path(os.environ["TRAINKIT_FAULT_REPORT"]))
    if any(not o.ok and not o.skipped for o in outcomes):
        for name in ("scheduler", "triggerer"):
            print(f"--- {name} ---\n{deployment.log_tail(name, 80)}")
    return {(o.backend, o.scenario): o for o in outcomes}


@pytest.mark.parametrize(("backend", "scenario"), CASES)
def test_fault_case(matrix: dict[tuple[str, str], Outcome], backend: str, scenario: str) -> None:
    outcome = matrix[(backend, scenario)]
    if outcome.skipped:
        pytest.skip(outcome.skipped)
    assert outcome.ok, outcome.row()
    assert (outcome.orphaned, outcome.duplicated, outcome.falsely_successful) == (0, 0, 0), outcome.row()
