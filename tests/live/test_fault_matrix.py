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
from fault_backends import ROWS, row
from fault_matrix import Case, Outcome, report, save, write_dags
from fault_scenarios import BY_NAME, SCENARIOS, run_all

pytestmark = [pytest.mark.live, pytest.mark.integration]
DAG_FILE = Path(__file__).parent / "dags" / "fault_matrix.py"
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
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> dict[tuple[str, str], Outcome]:
    """Run every selected case once; the outcomes by (backend, scenario)."""
    selected = sorted(
        {
            (item.callspec.params["backend"], item.callspec.params["scenario"])
            for item in request.session.items
            if getattr(item, "originalname", "") == "test_fault_case"
        }
    )
    names = sorted({backend for backend, _ in selected}, key=list(ROWS).index)
    home = tmp_path_factory.mktemp("faults")
    backends = {name: row(name) for name in names}
    started = []
    deployment = None
    try:
        env: dict[str, str] = {"AIRFLOW__CORE__PARALLELISM": "32"}
        for name, backend in backends.items():
            backend.start(home / f"backend-{name}")
            started.append(backend)
            env.update(backend.deployment_env(home))
        deployment = Deployment(home, [DAG_FILE], env)
        scenarios = sorted({scenario for _, scenario in selected}, key=[s.name for s in SCENARIOS].index)
        write_dags(deployment.dags, list(backends.values()), [BY_NAME[s] for s in scenarios])
        deployment.start()
        cases = [Case(backends[b], BY_NAME[s], deployment) for b, s in selected]
        for case in cases:
            deployment.wait_for_dag(case.dag_id)
        outcomes = run_all(cases, concurrency=int(os.environ.get("TRAINKIT_FAULT_CONCURRENCY", "16")))
        print("\n" + report(outcomes))
        if os.environ.get("TRAINKIT_FAULT_REPORT"):
            save(outcomes, Path(os.environ["TRAINKIT_FAULT_REPORT"]))
        if any(not o.ok and not o.skipped for o in outcomes):
            for name in ("scheduler", "triggerer"):
                print(f"--- {name} ---\n{deployment.log_tail(name, 80)}")
        yield {(o.backend, o.scenario): o for o in outcomes}
    finally:
        if deployment is not None:
            deployment.stop()
        for backend in started:
            backend.stop()


@pytest.mark.parametrize(("backend", "scenario"), CASES)
def test_fault_case(matrix: dict[tuple[str, str], Outcome], backend: str, scenario: str) -> None:
    outcome = matrix[(backend, scenario)]
    if outcome.skipped:
        pytest.skip(outcome.skipped)
    assert outcome.ok, outcome.row()
    assert (outcome.orphaned, outcome.duplicated, outcome.falsely_successful) == (0, 0, 0), outcome.row()
