"""A hyperparameter search in the real deployment of the session (the demo test's): the tune task
defers to the real triggerer between trials, no worker slot held while they run, and ends with
every trial run once.

``dag.test()`` runs triggers inline in the DAG's own process; only the deployment shows the task
going back and forth between the triggerer and a worker. Four trials of the XGBoost trainer on a
few hundred demo rows, two in flight at once (``tests/live/dags/live_tuning.py``). Slow: marked ``live``.
"""

from __future__ import annotations

import json
import re
from collections import Counter

import pytest
from deployment import Deployment

pytestmark = [pytest.mark.live, pytest.mark.integration]
FINISHED = {"success", "failed", "upstream_failed", "skipped", "removed"}
DAG_ID, RUN_ID = "live_tuning", "live-tuning"


def trial_jobs(deployment: Deployment) -> list[str]:
    """The on-prem job directories of the DAG's tune task: one name per trial job."""
    root = deployment.home / "trainkit" / "onprem-jobs"
    return sorted(p.name for p in root.glob("tk-live-tuning-tune-s1-trial*") if p.is_dir())


def deferrals_logged(deployment: Deployment) -> int:
    """How often the tune task's worker handed it to the triggerer, from the task's own log (the
    triggerer's per-task trigger log keeps only the try's last trigger)."""
    log = (
        deployment.home / "logs" / f"dag_id={DAG_ID}" / f"run_id={RUN_ID}" / "task_id=tune" / "attempt=1.log"
    )
    return log.read_text(errors="replace").count("Pausing task as DEFERRED")


def test_the_tune_task_defers_between_trials_and_runs_each_trial_once(live_deployment):
    from airflow_trainkit.demo.data import write_churn_dataset

    deployment = live_deployment
    write_churn_dataset(deployment.home / "trainkit" / "data" / "live_tuning_churn.parquet", rows=300, seed=5)
    deployment.wait_for_dag(DAG_ID)
    deployment.trigger(DAG_ID, RUN_ID)
    seen = deployment.wait_task(DAG_ID, RUN_ID, "tune", FINISHED, timeout=600)
    assert seen[-1] == "success", (seen, deployment.log_tail("scheduler"), deployment.log_tail("triggerer"))

    # Deferred, woken by the trigger, back to a worker, deferred again: more than one deferral,
    # seen from the outside (the task's states) and in the worker's log of the one try.
    assert seen.count("deferred") >= 2, seen
    assert deferrals_logged(deployment) >= 2, deployment.log_tail("triggerer")

    # One job per trial number: nothing ran twice, nothing was lost.
    jobs = trial_jobs(deployment)
    per_trial = Counter(int(re.search(r"-s1-trial(\d+)-", name).group(1)) for name in jobs)
    assert per_trial == {0: 1, 1: 1, 2: 1, 3: 1}, jobs
    for name in jobs:
        state = json.loads((deployment.home / "trainkit" / "onprem-jobs" / name / "state.json").read_text())
        assert state["state"] == "SUCCEEDED", (name, state)

    entry = deployment.get(
        f"/api/v2/dags/{DAG_ID}/dagRuns/{RUN_ID}/taskInstances/tune/xcomEntries/return_value"
    )
    result = json.loads(entry["value"]) if isinstance(entry["value"], str) else entry["value"]
    assert result["trials"] == {"complete": 4, "pruned": 0, "failed": 0, "total": 4}
    assert result["objective"]["name"] == "auc_roc" and 0.5 < result["objective"]["value"] <= 1.0
    assert result["job_id"] in jobs
