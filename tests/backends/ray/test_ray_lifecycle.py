"""TrainModelOperator and TrainingJobTrigger on a real local Ray cluster: train, re-attach, fail, stop."""

from __future__ import annotations

import asyncio
import json
import time

import pytest
from ray_testing import CONN_ID, Relay, connection_json
from trainkit_testing import TaskStateStore, first_trigger_event, job_reaches, make_context

from airflow_trainkit._compat import TaskDeferred
from airflow_trainkit.exceptions import TrainingJobFailed
from airflow_trainkit.operators.training import TrainModelOperator
from airflow_trainkit.training.identity import JobIdentity
from airflow_trainkit.training.spec import TrainingJobSpec
from airflow_trainkit.triggers.training import TrainingJobTrigger

pytestmark = pytest.mark.integration

DAG_ID = "ray_lifecycle"
RUN_ID = "manual__2026-01-05T10:00:00+00:00"
SLEEP = ["python", "-c", "import time; print('sleeping', flush=True); time.sleep(600)"]


def trainer_spec(table: str, output: str, **changes: object) -> dict:
    spec = {
        "command": ["python", "-m", "airflow_trainkit.trainers.xgboost"],
        "inputs": {"train": table},
        "output_uri": output,
        "hyperparameters": {"target": "churned", "drop_columns": "customer_id", "num_boost_round": 150},
        "max_runtime": "10m",
        "tags": {"model": "churn"},
    }
    spec.update(changes)
    return spec


def context(task_id: str, try_number: int = 1, store: TaskStateStore | None = None) -> dict:
    return make_context(dag_id=DAG_ID, run_id=RUN_ID, task_id=task_id, try_number=try_number, store=store)


def operator(task_id: str, spec: dict, **kwargs: object) -> TrainModelOperator:
    return TrainModelOperator(task_id=task_id, backend="ray", spec=spec, backend_conn_id=CONN_ID, **kwargs)


def job_name(task_id: str, attempt: int = 1) -> str:
    return JobIdentity(DAG_ID, RUN_ID, task_id).job_name(attempt)


def wait_for_state(backend, job: str, states: set[str], limit: float = 120.0):
    """The job's status once it is in one of ``states`` (fails naming the last status)."""
    return job_reaches(backend, job, lambda status: status.state in states, timeout=limit)


def test_train_succeeds_with_metrics_and_a_retry_reattaches_with_one_submission(
    cluster, churn_table, tmp_path
):
    task_id = "train_reattach"
    spec = trainer_spec(churn_table, str(tmp_path / "model"))
    store = TaskStateStore()
    with pytest.raises(TaskDeferred) as first:
        operator(task_id, spec, poll_interval=0.5).execute(context(task_id, 1, store))
    # The worker died; the retry runs a fresh operator (and backend) and finds the same job.
    retry = operator(task_id, spec, poll_interval=0.5)
    with pytest.raises(TaskDeferred) as second:
        retry.execute(context(task_id, 2, store))
    assert first.value.trigger.job_id == second.value.trigger.job_id == job_name(task_id)
    # A restarted triggerer rebuilds the trigger from its serialized kwargs.
    _, kwargs = second.value.trigger.serialize()
    event = first_trigger_event(TrainingJobTrigger(**kwargs))
    assert event["status"] == "done", event
    ctx = context(task_id, 2, store)
    result = retry.execute_complete(ctx, event, **second.value.kwargs)
    assert result["state"] == "SUCCEEDED" and result["backend"] == "ray"
    assert result["job_id"] == job_name(task_id)
    assert result["metrics"]["auc_roc"] > 0.8 and result["metrics"]["n_train"] == 2400
    assert result["output_uri"] == str(tmp_path / "model")
    assert (tmp_path / "model" / "model.json").is_file()
    assert result["billable_seconds"] > 0 and result["details"]["driver_exit_code"] == 0
    assert ctx["ti"].xcoms["console_url"] == f"{cluster.address}/#/jobs/{job_name(task_id)}"
    json.dumps(result)  # a JSON result, nothing else
    # A submit under a name the cluster knows (a crash between submit and its record) follows that job.
    from airflow_trainkit.backends.ray import RayBackend

    again = RayBackend(CONN_ID).submit(TrainingJobSpec.parse(spec), job_name(task_id))
    assert again.state == "SUCCEEDED" and again.job_id == job_name(task_id)
    # Exactly one job on the cluster carries this task, submitted once.
    (job,) = cluster.jobs_of("airflow_task_id", task_id)
    assert job["submission_id"] == job_name(task_id)
    assert job["metadata"]["airflow_dag_id"] == DAG_ID and job["metadata"]["model"] == "churn"


def test_a_failing_command_fails_the_task_with_exit_code_and_last_lines(cluster, tmp_path):
    task_id = "train_fails"
    spec = {
        "command": ["python", "-c", "import sys; print('loading data'); print('bad row 17'); sys.exit(3)"],
        "output_uri": str(tmp_path / "out"),
        "max_runtime": "5m",
    }
    with pytest.raises(TaskDeferred) as deferred:
        operator(task_id, spec, poll_interval=0.5).execute(context(task_id))
    event = first_trigger_event(deferred.value.trigger)
    assert event["job"]["state"] == "FAILED"
    with pytest.raises(TrainingJobFailed) as failed:
        operator(task_id, spec).execute_complete(context(task_id), event, **deferred.value.kwargs)
    assert failed.value.state == "FAILED"
    assert "exit code 3" in str(failed.value)
    assert "bad row 17" in str(failed.value) and "bad row 17" in failed.value.log_tail
    # A retry is a new attempt, under a new name.
    with pytest.raises(TaskDeferred) as retried:
        operator(task_id, spec).execute(context(task_id, 2))
    assert retried.value.trigger.job_id == job_name(task_id, 2)


def test_max_runtime_is_enforced_on_the_cluster_by_the_launcher(cluster, backend, tmp_path):
    spec = TrainingJobSpec.parse({"command": SLEEP, "output_uri": str(tmp_path), "max_runtime": 3})
    backend.check(spec)
    backend.submit(spec, "tk-ray-max-runtime-a1")
    status = wait_for_state(backend, "tk-ray-max-runtime-a1", {"FAILED", "SUCCEEDED", "STOPPED"})
    assert status.state == "FAILED" and status.details["driver_exit_code"] == 124
    assert "max_runtime of 3 s passed" in "\n".join(backend.log_tail("tk-ray-max-runtime-a1"))


def test_kill_of_a_non_deferred_task_stops_the_job(cluster, backend, tmp_path):
    task_id = "train_killed"
    op = operator(
        task_id, {"command": SLEEP, "output_uri": str(tmp_path)}, deferrable=False, poll_interval=0.5
    )
    op.on_kill()  # SIGTERM before the wait loop's first check
    with pytest.raises(Exception, match="killed"):
        op.execute(context(task_id))
    assert wait_for_state(backend, job_name(task_id), {"STOPPED"}).phase.value == "stopped"


def test_deferral_timeout_stops_the_job(cluster, backend, tmp_path):
    task_id = "train_deferral_timeout"
    spec = {"command": SLEEP, "output_uri": str(tmp_path)}
    store = TaskStateStore()
    with pytest.raises(TaskDeferred):
        operator(task_id, spec).execute(context(task_id, 1, store))
    wait_for_state(backend, job_name(task_id), {"RUNNING"})
    with pytest.raises(Exception):  # noqa: B017 - TaskDeferralTimeout from the base class
        operator(task_id, spec).resume_execution(
            "__fail__", {"error": "Trigger timeout"}, context(task_id, 1, store)
        )
    wait_for_state(backend, job_name(task_id), {"STOPPED"})


def test_execution_timeout_while_deferred_stops_the_job(cluster, backend, tmp_path):
    from datetime import timedelta

    from airflow_trainkit._compat import AirflowTaskTimeout

    task_id = "train_execution_timeout"
    spec = {"command": SLEEP, "output_uri": str(tmp_path)}
    store = TaskStateStore()
    op = operator(task_id, spec, poll_interval=0.5, execution_timeout=timedelta(seconds=4))
    with pytest.raises(TaskDeferred) as deferred:
        op.execute(context(task_id, 1, store))
    event = first_trigger_event(deferred.value.trigger)
    assert event["status"] == "timeout" and event["reason"] == "execution_timeout"
    with pytest.raises(AirflowTaskTimeout):
        op.execute_complete(context(task_id, 1, store), event, **deferred.value.kwargs)
    wait_for_state(backend, job_name(task_id), {"STOPPED"})


def test_trigger_on_kill_and_deadline_stop_the_job_and_stopping_twice_is_harmless(cluster, backend, tmp_path):
    spec = TrainingJobSpec.parse({"command": SLEEP, "output_uri": str(tmp_path)})
    backend.submit(spec, "tk-ray-trigger-kill-a1")
    backend.submit(spec, "tk-ray-deadline-a1")
    wait_for_state(backend, "tk-ray-trigger-kill-a1", {"RUNNING"})
    trigger = TrainingJobTrigger("ray", "tk-ray-trigger-kill-a1", CONN_ID, stop_on_kill=True, identity={})

    async def kill() -> None:
        await trigger.on_kill()
        await trigger.decision  # on_kill decides in a task of its own

    started = time.monotonic()
    asyncio.run(kill())
    assert wait_for_state(backend, "tk-ray-trigger-kill-a1", {"STOPPED"}).state == "STOPPED"
    print(f"stop latency (on_kill to STOPPED): {time.monotonic() - started:.1f} s")
    backend.stop("tk-ray-trigger-kill-a1")  # a stopped job: nothing happens
    backend.stop("tk-ray-no-such-job")  # no such job: nothing happens either
    event = first_trigger_event(
        TrainingJobTrigger("ray", "tk-ray-deadline-a1", CONN_ID, deadline=time.time() - 1)
    )
    assert event["status"] == "timeout"
    assert wait_for_state(backend, "tk-ray-deadline-a1", {"STOPPED"}).phase.value == "stopped"


def test_pending_past_max_wait_is_stopped_with_rays_pending_message(cluster, backend, tmp_path):
    # More CPUs than the cluster has: Ray keeps the job PENDING.
    spec = TrainingJobSpec.parse(
        {
            "command": SLEEP,
            "output_uri": str(tmp_path),
            "options": {"num_cpus": 64},
            "max_runtime": 2,
            "max_wait": 3,
        }
    )
    backend.submit(spec, "tk-ray-pending-a1")
    assert backend.describe("tk-ray-pending-a1").state == "PENDING"
    event = first_trigger_event(
        TrainingJobTrigger("ray", "tk-ray-pending-a1", CONN_ID, deadline=time.time() + 3, poll_interval=0.5)
    )
    assert event["status"] == "timeout"
    assert "asked it to stop" in event["message"] and "while PENDING" in event["message"]
    assert "waiting for resources" in event["message"]


def test_the_api_unreachable_for_a_while_does_not_fail_the_wait(cluster, backend, tmp_path, monkeypatch):
    relay = Relay(int(cluster.address.rsplit(":", 1)[1]))
    try:
        monkeypatch.setenv("AIRFLOW_CONN_TRAINKIT_RAY_RELAY", connection_json(relay.address, timeout=5))
        spec = TrainingJobSpec.parse(
            {"command": ["python", "-c", "import time; time.sleep(4)"], "output_uri": str(tmp_path)}
        )
        backend.submit(spec, "tk-ray-unreachable-a1")
        relay.down.set()
        trigger = TrainingJobTrigger("ray", "tk-ray-unreachable-a1", "trainkit_ray_relay", poll_interval=0.2)

        async def run() -> dict:
            async def heal() -> None:
                await asyncio.sleep(3)
                relay.down.clear()

            healing = asyncio.create_task(heal())
            async for event in trigger.run():
                await healing
                return event.payload
            raise AssertionError("no event")

        event = asyncio.run(run())
        assert relay.refused >= 2, relay.refused
        assert event["status"] == "done" and event["job"]["state"] == "SUCCEEDED"
    finally:
        relay.close()


def test_distributed_training_on_two_workers_matches_the_single_process_model(
    cluster, backend, churn_table, tmp_path
):
    single = TrainingJobSpec.parse(trainer_spec(churn_table, str(tmp_path / "single")))
    distributed = TrainingJobSpec.parse(trainer_spec(churn_table, str(tmp_path / "two"), instance_count=2))
    backend.check(distributed)
    body = backend.request_body(distributed, "x", "pkg.zip")
    assert "entrypoint_num_cpus" not in body and "airflow_trainkit.trainers.xgboost_ray" in body["entrypoint"]
    backend.submit(single, "tk-ray-single-a1")
    backend.submit(distributed, "tk-ray-two-workers-a1")
    one = wait_for_state(backend, "tk-ray-single-a1", {"SUCCEEDED", "FAILED"}, limit=300)
    two = wait_for_state(backend, "tk-ray-two-workers-a1", {"SUCCEEDED", "FAILED"}, limit=300)
    assert one.state == two.state == "SUCCEEDED", backend.log_tail("tk-ray-two-workers-a1")
    m1, m2 = backend.metrics(one), backend.metrics(two)
    print(f"AUC single {m1['auc_roc']:.4f}, two workers {m2['auc_roc']:.4f}")
    assert m2["world_size"] == 2 and m2["worker_rows"] == [1200, 1200] and "world_size" not in m1
    assert m2["rounds_trained"] >= m2["num_boosted_rounds"]
    assert abs(m1["auc_roc"] - m2["auc_roc"]) <= 0.01
    assert (tmp_path / "two" / "model.json").is_file() and (tmp_path / "two" / "model_meta.json").is_file()
    assert two.instance_count == 2


def test_a_triggerer_restarted_while_the_job_runs_picks_it_up_and_leaves_it_running(
    cluster, backend, tmp_path
):
    spec = TrainingJobSpec.parse(
        {"command": ["python", "-c", "import time; time.sleep(6)"], "output_uri": str(tmp_path)}
    )
    backend.submit(spec, "tk-ray-triggerer-restart-a1")
    trigger = TrainingJobTrigger("ray", "tk-ray-triggerer-restart-a1", CONN_ID, poll_interval=0.5)

    async def run_until_the_triggerer_stops() -> None:
        async def first() -> None:
            async for _ in trigger.run():
                raise AssertionError("the job ended before the triggerer stopped")

        with pytest.raises(asyncio.TimeoutError):
            await asyncio.wait_for(first(), timeout=2)  # the triggerer goes away: run() is cancelled

    asyncio.run(run_until_the_triggerer_stops())
    assert backend.describe("tk-ray-triggerer-restart-a1").phase.active  # a cancelled trigger stops nothing
    _, kwargs = trigger.serialize()
    event = first_trigger_event(TrainingJobTrigger(**kwargs))  # the new triggerer runs it from the start
    assert event["status"] == "done" and event["job"]["state"] == "SUCCEEDED"


def test_a_job_placed_after_the_tasks_deadline_does_not_run_its_command(cluster, backend, tmp_path):
    from airflow_trainkit.training.backend import JobRef

    marker = tmp_path / "ran"
    spec = TrainingJobSpec.parse(
        {"command": ["python", "-c", f"open({str(marker)!r}, 'w').write('x')"], "output_uri": str(tmp_path)}
    )
    # As a job that waited PENDING past its deadline and was placed only then.
    late = JobRef(backend="ray", job_name="tk-ray-late-a1", deadline=time.time() - 5)
    backend.submit(spec, late)
    status = wait_for_state(backend, "tk-ray-late-a1", {"FAILED", "SUCCEEDED", "STOPPED"})
    assert status.state == "FAILED" and status.details["driver_exit_code"] == 124
    assert "after the task's deadline; not running the command" in "\n".join(
        backend.log_tail("tk-ray-late-a1")
    )
    assert not marker.exists()
