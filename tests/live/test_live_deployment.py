"""A real Airflow deployment (api-server, scheduler, dag-processor, triggerer; LocalExecutor on
sqlite): deferral through the real triggerer, re-attach on clear, stop on mark failed.

``dag.test()`` runs triggers inline in the DAG's own process and never calls ``on_kill``; only
this shows what production does. Slow (a minute or more to start): marked ``live``.
"""

from __future__ import annotations

import json
import time
from pathlib import Path

import pytest
from deployment import Deployment

REPO = Path(__file__).resolve().parents[2]
pytestmark = [pytest.mark.live, pytest.mark.integration]
FINISHED = {"success", "failed", "upstream_failed", "skipped", "removed"}


@pytest.fixture(scope="module")
def deployment(tmp_path_factory):
    home = tmp_path_factory.mktemp("live")
    examples = REPO / "example_dags"
    dags = [
        examples / "trainkit_demo.py",
        examples / "contracts",
        Path(__file__).parent / "dags" / "live_training.py",
    ]
    deployment = Deployment(home, dags, {"TRAINKIT_ONPREM_GPUS": "none"})
    try:
        deployment.start()
        yield deployment
    except Exception:
        for name in ("api-server", "scheduler", "dag-processor", "triggerer"):
            print(f"--- {name} ---\n{deployment.log_tail(name)}")
        raise
    finally:
        deployment.stop()


def jobs_of(deployment: Deployment, dag_id: str, run_id: str) -> dict[str, dict]:
    """The on-prem job directories of one run's task: name -> state.json."""
    from airflow_trainkit.training.identity import JobIdentity

    prefix = JobIdentity(dag_id, run_id, "train").job_name(1)[: -len("-a1")]
    root = deployment.home / "trainkit" / "onprem-jobs"
    return {p.name: json.loads((p / "state.json").read_text()) for p in sorted(root.glob(f"{prefix}-a*"))}


def test_the_demo_dag_defers_in_the_real_triggerer_and_succeeds(deployment):
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


def test_clearing_a_deferred_task_reattaches_to_its_running_job(deployment):
    deployment.wait_for_dag("live_training")
    deployment.trigger("live_training", "live-clear", {"seconds": 45})
    deployment.wait_task("live_training", "live-clear", "train", {"deferred"})
    time.sleep(2)
    deployment.clear("live_training", "live-clear", "train")
    seen = deployment.wait_task("live_training", "live-clear", "train", FINISHED, timeout=400)
    assert seen[-1] == "success", seen
    assert deployment.task("live_training", "live-clear", "train")["try_number"] == 2
    jobs = jobs_of(deployment, "live_training", "live-clear")
    assert [(name[-3:], job["state"]) for name, job in jobs.items()] == [("-a1", "SUCCEEDED")]


def test_marking_a_deferred_task_failed_stops_its_job(deployment):
    deployment.wait_for_dag("live_training")
    deployment.trigger("live_training", "live-mark", {"seconds": 300})
    deployment.wait_task("live_training", "live-mark", "train", {"deferred"})
    time.sleep(2)
    deployment.mark("live_training", "live-mark", "train", "failed")
    end = time.monotonic() + 240
    while time.monotonic() < end:
        (job,) = jobs_of(deployment, "live_training", "live-mark").values()
        if job["state"] in ("STOPPED", "FAILED", "SUCCEEDED"):
            break
        time.sleep(2)
    assert job["state"] == "STOPPED", job
    assert "failed" in job["message"]
