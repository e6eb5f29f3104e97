"""A real Airflow deployment (api-server, scheduler, dag-processor, triggerer; LocalExecutor on
sqlite): deferral through the real triggerer, re-attach on clear, stop on mark failed, on
execution_timeout while deferred and on a hard kill, for on-prem and for Vertex AI (its fake
served on loopback to the deployment's worker and triggerer).

``dag.test()`` runs triggers inline in the DAG's own process and never calls ``on_kill``; only
this shows what production does. Slow (a minute or more to start): marked ``live``.
"""

from __future__ import annotations

import json
import os
import signal
import sys
import time
from pathlib import Path

import pytest
from deployment import Deployment
from trainkit_testing import wait_until

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO / "tests" / "backends" / "vertex_ai"))

from _vertex_fake import FakeVertex, Plan  # noqa: E402
from vertex_testing import CONN_ID, connection_json  # noqa: E402

pytestmark = [pytest.mark.live, pytest.mark.integration]
FINISHED = {"success", "failed", "upstream_failed", "skipped", "removed"}


@pytest.fixture(scope="module")
def vertex():
    fake = FakeVertex().start()
    yield fake
    fake.stop()


@pytest.fixture(scope="module")
def deployment(tmp_path_factory, vertex):
    home = tmp_path_factory.mktemp("live")
    examples = REPO / "example_dags"
    dags = [
        examples / "trainkit_demo.py",
        examples / "contracts",
        Path(__file__).parent / "dags" / "live_training.py",
    ]
    env = {
        "TRAINKIT_ONPREM_GPUS": "none",
        f"AIRFLOW_CONN_{CONN_ID.upper()}": connection_json(vertex.endpoint_url),
    }
    deployment = Deployment(home, dags, env)
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


# -- execution_timeout while deferred, and hard kills ----------------------------------------------


def kill_task_process(deployment: Deployment, dag_id: str, run_id: str) -> float:
    """SIGKILL the task's own process (as the out-of-memory killer would); return when."""
    ti_id = deployment.task(dag_id, run_id, "train")["id"]
    title = f"airflow worker -- {ti_id}".encode()
    for pid in filter(str.isdigit, os.listdir("/proc")):
        try:
            cmdline = Path(f"/proc/{pid}/cmdline").read_bytes()
        except OSError:
            continue
        if cmdline.startswith(title):
            os.kill(int(pid), signal.SIGKILL)
            return time.time()
    raise AssertionError(f"no process titled {title!r}")


def try_clock(deployment: Deployment, dag_id: str, run_id: str) -> float:
    """When this try first ran execute(), from the task state store (what the cap counts from)."""
    path = f"/api/v2/dags/{dag_id}/dagRuns/{run_id}/taskInstances/train/state-store/trainkit_try_clock"
    value = deployment.get(path)
    value = value.get("value", value) if isinstance(value, dict) else value
    if isinstance(value, str):
        value = json.loads(value)
    return float(value["started"])


def test_execution_timeout_while_deferred_stops_the_onprem_job(deployment):
    dag_id, run_id = "live_exec_timeout", "live-exec-timeout"
    deployment.wait_for_dag(dag_id)
    deployment.trigger(dag_id, run_id, {"seconds": 75})
    seen = deployment.wait_task(dag_id, run_id, "train", FINISHED, timeout=300)
    assert "deferred" in seen and seen[-1] == "failed", seen
    ((name, job),) = jobs_of(deployment, dag_id, run_id).items()
    assert job["state"] == "STOPPED" and "execution_timeout" in job["message"], job
    stop = json.loads((deployment.home / "trainkit" / "onprem-jobs" / name / "stop.json").read_text())
    from datetime import datetime

    late = datetime.fromisoformat(stop["requested_at"]).timestamp() - (
        try_clock(deployment, dag_id, run_id) + 25
    )
    print(f"on-prem: job asked to stop {late:.1f} s after execution_timeout (poll interval 1 s)")
    assert -1 < late < 30, late  # stopped by the timeout, long before the job's own 75 s


def start_running(deployment: Deployment, dag_id: str, run_id: str, seconds: int) -> None:
    """Trigger the DAG's run and wait until its on-prem job runs."""
    deployment.wait_for_dag(dag_id)
    deployment.trigger(dag_id, run_id, {"seconds": seconds})
    wait_until(
        lambda: any(j["state"] == "RUNNING" for j in jobs_of(deployment, dag_id, run_id).values()),
        "the on-prem job to run",
        timeout=240,
        every=0.5,
    )


def test_a_hard_killed_task_with_no_retry_left_has_its_onprem_job_stopped(deployment):
    dag_id, run_id = "live_hard_kill_last", "live-kill-last"
    start_running(deployment, dag_id, run_id, seconds=120)
    killed = kill_task_process(deployment, dag_id, run_id)
    ended = ("STOPPED", "FAILED", "SUCCEEDED")
    (job,) = wait_until(
        lambda: [j for j in jobs_of(deployment, dag_id, run_id).values() if j["state"] in ended] or None,
        "the job to end after the kill",
        timeout=180,
        every=0.5,
    )
    print(f"on-prem: job ended {job['state']} {time.time() - killed:.1f} s after the SIGKILL")
    assert job["state"] == "STOPPED" and "no retry left" in job["message"], job
    seen = deployment.wait_task(dag_id, run_id, "train", FINISHED, timeout=120)
    assert seen[-1] == "failed", seen


def test_a_hard_killed_task_with_a_retry_left_reattaches_to_its_onprem_job(deployment):
    dag_id, run_id = "live_hard_kill_retry", "live-kill-retry"
    start_running(deployment, dag_id, run_id, seconds=40)
    kill_task_process(deployment, dag_id, run_id)
    seen = deployment.wait_task(dag_id, run_id, "train", FINISHED, timeout=300)
    assert seen[-1] == "success", seen
    assert deployment.task(dag_id, run_id, "train")["try_number"] == 2
    jobs = jobs_of(deployment, dag_id, run_id)
    assert [(name[-3:], job["state"]) for name, job in jobs.items()] == [("-a1", "SUCCEEDED")]


def vertex_job(vertex: FakeVertex, dag_id: str, run_id: str):
    from airflow_trainkit.training.identity import JobIdentity

    name = JobIdentity(dag_id, run_id, "train").job_name(1)
    return name, [j for j in vertex.jobs.values() if j.message.display_name == name]


def cancels_of(vertex: FakeVertex, name: str) -> list:
    numbers = {j.message.name for j in vertex.jobs.values() if j.message.display_name == name}
    return [c for c in vertex.calls("CancelCustomJob") if c.get("name") in numbers]


def test_execution_timeout_while_deferred_cancels_the_vertex_job(deployment, vertex):
    dag_id, run_id = "live_vertex_exec_timeout", "live-vertex-exec-timeout"
    deployment.wait_for_dag(dag_id)
    vertex.plan_next(Plan(states=["PENDING"] + ["RUNNING"] * 100_000))
    deployment.trigger(dag_id, run_id)
    seen = deployment.wait_task(dag_id, run_id, "train", FINISHED, timeout=300)
    assert "deferred" in seen and seen[-1] == "failed", seen
    name, jobs = vertex_job(vertex, dag_id, run_id)
    assert len(jobs) == 1 and jobs[0].stop_requested, name
    assert len(cancels_of(vertex, name)) >= 1


def start_polled(deployment: Deployment, vertex: FakeVertex, dag_id: str, run_id: str, plan: Plan) -> None:
    """Trigger the DAG's run, its Vertex job following ``plan``, and wait until the job is polled."""
    deployment.wait_for_dag(dag_id)
    vertex.plan_next(plan)
    deployment.trigger(dag_id, run_id)
    wait_until(
        lambda: vertex_job(vertex, dag_id, run_id)[1] and vertex_job(vertex, dag_id, run_id)[1][0].step > 2,
        "the Vertex job to be polled three times",
        timeout=240,
        every=0.5,
    )


def test_a_hard_killed_task_with_no_retry_left_has_its_vertex_job_cancelled(deployment, vertex):
    dag_id, run_id = "live_vertex_hard_kill_last", "live-vertex-kill-last"
    start_polled(deployment, vertex, dag_id, run_id, Plan(states=["PENDING"] + ["RUNNING"] * 100_000))
    killed = kill_task_process(deployment, dag_id, run_id)
    name, _ = vertex_job(vertex, dag_id, run_id)
    wait_until(lambda: cancels_of(vertex, name), "the Vertex job's cancel", timeout=120, every=0.5)
    print(f"vertex: job cancelled {time.time() - killed:.1f} s after the SIGKILL")
    seen = deployment.wait_task(dag_id, run_id, "train", FINISHED, timeout=120)
    assert seen[-1] == "failed", seen


def test_a_hard_killed_task_with_a_retry_left_reattaches_to_its_vertex_job(deployment, vertex):
    dag_id, run_id = "live_vertex_hard_kill_retry", "live-vertex-kill-retry"
    start_polled(
        deployment, vertex, dag_id, run_id, Plan(states=["PENDING"] + ["RUNNING"] * 30 + ["SUCCEEDED"])
    )
    kill_task_process(deployment, dag_id, run_id)
    seen = deployment.wait_task(dag_id, run_id, "train", FINISHED, timeout=300)
    assert seen[-1] == "success", seen
    assert deployment.task(dag_id, run_id, "train")["try_number"] == 2
    name, jobs = vertex_job(vertex, dag_id, run_id)
    assert len(jobs) == 1 and not cancels_of(vertex, name)
