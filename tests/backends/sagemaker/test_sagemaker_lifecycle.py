"""TrainModelOperator and TrainingJobTrigger on SageMaker: re-attach, stop on every exit path, no poll count."""

from __future__ import annotations

import asyncio
import json
import time

import pytest
from _sagemaker_fake import Plan
from sagemaker_testing import BUCKET, CONN_ID, FAKE_SECRET, IMAGE
from trainkit_testing import TaskStateStore, TrainingTasks, first_trigger_event

from airflow_trainkit._compat import TaskDeferred
from airflow_trainkit.exceptions import TrainingJobFailed
from airflow_trainkit.operators.training import TrainModelOperator
from airflow_trainkit.triggers.training import TrainingJobTrigger

SPEC = {
    "command": ["python", "train.py"],
    "image": IMAGE,
    "output_uri": f"s3://{BUCKET}/models",
    "inputs": {"train": f"s3://{BUCKET}/data/train/"},
    "spot": True,
    "max_runtime": "3h",
    "max_wait": "4h",
    "checkpoint_uri": f"s3://{BUCKET}/checkpoints",
}


TASKS = TrainingTasks("sagemaker", CONN_ID, SPEC, dag_id="sm_lifecycle")
context, operator, job_name = TASKS.context, TASKS.operator, TASKS.job_name


@pytest.mark.parametrize("with_store", [True, False])
def test_retry_reattaches_without_a_second_create(fake, with_store):
    task_id = f"train_reattach_{with_store}"
    fake.plan_next(
        Plan(states=["InProgress"] * 6 + ["Completed"], billable_seconds=900, training_seconds=3000)
    )
    store = TaskStateStore() if with_store else None
    op = operator(task_id, poll_interval=0.001)
    with pytest.raises(TaskDeferred) as first:
        op.execute(context(task_id, 1, store))
    # The worker died; the retry runs a fresh operator and must find the same job.
    retry = operator(task_id, poll_interval=0.001)
    with pytest.raises(TaskDeferred) as second:
        retry.execute(context(task_id, 2, store))
    assert first.value.trigger.job_id == second.value.trigger.job_id == job_name(task_id)
    assert len(fake.calls("CreateTrainingJob")) == 1
    event = first_trigger_event(second.value.trigger)
    ctx = context(task_id, 2, store)
    result = retry.execute_complete(ctx, event, **second.value.kwargs)
    assert result["state"] == "Completed" and result["billable_seconds"] == 900
    assert result["details"]["spot_savings"] == 0.7
    assert ctx["ti"].xcoms["console_url"].endswith(f"#/jobs/{job_name(task_id)}")
    assert FAKE_SECRET not in json.dumps(result)
    assert len(fake.calls("CreateTrainingJob")) == 1


def test_completed_job_is_returned_not_retrained(fake):
    task_id = "train_done"
    fake.plan_next(Plan(states=["InProgress", "Completed"]))
    with pytest.raises(TaskDeferred):
        operator(task_id).execute(context(task_id))
    result = operator(task_id).execute(context(task_id, 2))  # the job is Completed by now
    assert result["job_id"] == job_name(task_id) and result["phase"] == "succeeded"
    assert len(fake.calls("CreateTrainingJob")) == 1


def test_failed_job_gives_a_new_attempt_on_retry(fake):
    task_id = "train_failed_then_new"
    fake.plan_next(Plan(states=["InProgress", "Failed"]))
    with pytest.raises(TaskDeferred) as deferred:
        operator(task_id, poll_interval=0.001).execute(context(task_id))
    event = first_trigger_event(deferred.value.trigger)
    with pytest.raises(TrainingJobFailed, match="AlgorithmError") as failed:
        operator(task_id).execute_complete(context(task_id), event, **deferred.value.kwargs)
    assert failed.value.state == "Failed" and failed.value.reason.startswith("AlgorithmError")
    with pytest.raises(TaskDeferred) as retried:
        operator(task_id).execute(context(task_id, 2))
    assert retried.value.trigger.job_id == job_name(task_id, 2)
    assert [c["TrainingJobName"] for c in fake.calls("CreateTrainingJob")] == [
        job_name(task_id, 1),
        job_name(task_id, 2),
    ]


def test_stopped_job_fails_the_task_with_its_reason(fake):
    task_id = "train_stopped"
    fake.plan_next(Plan(states=["InProgress"]))
    with pytest.raises(TaskDeferred) as deferred:
        operator(task_id, poll_interval=0.001).execute(context(task_id))
    fake.jobs[job_name(task_id)].stop_requested = True  # stopped from the console
    event = first_trigger_event(deferred.value.trigger)
    assert event["job"]["state"] == "Stopped"
    with pytest.raises(TrainingJobFailed, match="ended Stopped") as failed:
        operator(task_id).execute_complete(context(task_id), event, **deferred.value.kwargs)
    assert failed.value.state == "Stopped"


def test_kill_of_a_non_deferred_task_stops_the_job(fake):
    task_id = "train_killed"
    fake.plan_next(Plan(states=["InProgress"]))
    op = operator(task_id, deferrable=False, poll_interval=0.001)
    op.on_kill()  # SIGTERM before the wait loop's first check
    with pytest.raises(Exception, match="killed"):
        op.execute(context(task_id))
    assert [c["TrainingJobName"] for c in fake.calls("StopTrainingJob")] == [job_name(task_id)]


def test_deferral_timeout_stops_the_job(fake):
    task_id = "train_deferral_timeout"
    fake.plan_next(Plan(states=["InProgress"]))
    store = TaskStateStore()
    with pytest.raises(TaskDeferred):
        operator(task_id).execute(context(task_id, 1, store))
    with pytest.raises(Exception):  # noqa: B017 - TaskDeferralTimeout from the base class
        operator(task_id).resume_execution(
            "__fail__", {"error": "Trigger timeout"}, context(task_id, 1, store)
        )
    assert [c["TrainingJobName"] for c in fake.calls("StopTrainingJob")] == [job_name(task_id)]


def test_trigger_on_kill_stops_the_job(fake, backend):
    fake.plan_next(Plan(states=["InProgress"]))
    backend.submit(backend_spec(), "tk-trigger-kill-a1")
    trigger = TrainingJobTrigger("sagemaker", "tk-trigger-kill-a1", CONN_ID, stop_on_kill=True, identity={})

    async def kill() -> None:
        await trigger.on_kill()
        await trigger.decision  # on_kill decides in a task of its own

    asyncio.run(kill())
    assert fake.calls("StopTrainingJob", "tk-trigger-kill-a1")
    assert backend.describe("tk-trigger-kill-a1").state == "Stopping"


def test_trigger_deadline_stops_and_times_out(fake, backend):
    fake.plan_next(Plan(states=["InProgress"]))
    backend.submit(backend_spec(), "tk-deadline-a1")
    event = first_trigger_event(
        TrainingJobTrigger("sagemaker", "tk-deadline-a1", CONN_ID, deadline=time.time() - 1)
    )
    assert event["status"] == "timeout"
    assert fake.calls("StopTrainingJob", "tk-deadline-a1")


def test_throttling_and_5xx_for_several_polls_do_not_fail(fake, backend):
    fake.plan_next(Plan(states=["InProgress"] * 3 + ["Completed"]))
    backend.submit(backend_spec(), "tk-throttled-a1")
    fake.throttle_next = 7
    trigger = TrainingJobTrigger("sagemaker", "tk-throttled-a1", CONN_ID, poll_interval=0.0005)
    event = first_trigger_event(trigger)
    assert event["status"] == "done" and event["job"]["state"] == "Completed"
    fake.plan_next(Plan(states=["InProgress", "Completed"]))
    backend.submit(backend_spec(), "tk-5xx-a1")
    fake.fail_5xx_next = 7
    event = first_trigger_event(TrainingJobTrigger("sagemaker", "tk-5xx-a1", CONN_ID, poll_interval=0.0005))
    assert event["status"] == "done" and event["job"]["state"] == "Completed"


@pytest.mark.integration
def test_a_long_job_is_not_cut_off_by_a_poll_count(fake, backend):
    """A 3-hour job polled every 30 s is 360 polls; the trigger counts time, not polls."""
    fake.plan_next(
        Plan(states=["InProgress"] * 520 + ["Completed"], billable_seconds=10800, training_seconds=10800)
    )
    backend.submit(backend_spec(), "tk-long-a1")
    deadline = time.time() + 4 * 3600
    event = first_trigger_event(
        TrainingJobTrigger("sagemaker", "tk-long-a1", CONN_ID, deadline=deadline, poll_interval=0.0001)
    )
    assert event["status"] == "done" and event["job"]["state"] == "Completed"
    assert len(fake.calls("DescribeTrainingJob", "tk-long-a1")) >= 521


def test_spot_without_checkpoint_is_refused_through_the_operator(fake):
    spec = {**SPEC, "checkpoint_uri": None}
    with pytest.raises(ValueError, match=r"spec\.checkpoint_uri"):
        operator("train_no_ckpt", spec=spec).execute(context("train_no_ckpt"))
    spec = {**SPEC, "max_wait": "1h"}
    with pytest.raises(ValueError, match=r"spec\.max_wait"):
        operator("train_short_wait", spec=spec).execute(context("train_short_wait"))
    with pytest.raises(ValueError, match=r"spec\.options\['role_arn'\]"):
        TrainModelOperator(
            task_id="train_no_role", backend="sagemaker", spec=SPEC, backend_conn_id="aws_trainkit_norole"
        ).execute(context("train_no_role"))
    assert fake.requests == []


def backend_spec():
    from airflow_trainkit.training.spec import TrainingJobSpec

    return TrainingJobSpec.parse(SPEC)
