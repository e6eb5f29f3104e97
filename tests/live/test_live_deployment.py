"""The demo DAG in a real Airflow deployment (api-server, scheduler, dag-processor, triggerer;
LocalExecutor on sqlite): its training task defers through the real triggerer and succeeds.

``dag.test()`` runs triggers inline in the DAG's own process and never calls ``on_kill``; only a
deployment shows what production does. What happens under faults (clears, marks, kills, timeouts,
restarts, API faults) is the fault matrix's (``test_fault_matrix.py``). Slow: marked ``live``.
"""

from __future__ import annotations

import json
import time

import pytest
from deployment import Deployment

pytestmark = [pytest.mark.live, pytest.mark.integration]
FINISHED = {"success", "failed", "upstream_failed", "skipped", "removed"}


def jobs_of(deployment: Deployment, dag_id: str, run_id: str) -> dict[str, dict]:
    """The on-prem job directories of one run's task: name -> state.json."""
    from airflow_trainkit.training.identity import JobIdentity

    prefix = JobIdentity(dag_id, run_id, "train").job_name(1)[: -len("-a1")]
    root = deployment.home / "trainkit" / "onprem-jobs"
    return {p.name: json.loads((p / "state.json").read_text()) for p in sorted(root.glob(f"{prefix}-a*"))}


def test_the_demo_dag_defers_in_the_real_triggerer_and_succeeds(live_deployment):
    deployment = live_deployment
    deployment.wait_for_dag("trainkit_demo")
    deployment.trigger("trainkit_demo", "live-demo")
    seen = deployment.wait_task("trainkit_demo", "live-demo", "train", FINISHED, timeout=600)
    assert "deferred" in seen, seen
    assert seen[-1] == "success", (seen, deployment.log_tail("scheduler"))
    end = time.monotonic() + 120
    while (
        deployment.run_state("trainkit_demo", "live-demo") not in ("success", "failed")
        and time.monotonic() < end
    ):
        time.sleep(2)
    assert deployment.run_state("trainkit_demo", "live-demo") == "success"
    (job,) = jobs_of(deployment, "trainkit_demo", "live-demo").values()
    assert job["state"] == "SUCCEEDED"
