"""TrainModelOperator and TrainingJobTrigger on Vertex AI: re-attach, stop on every exit path, backoff."""

from __future__ import annotations

import asyncio
import json
import time

import pytest
from _vertex_fake import Plan
from trainkit_testing import TaskStateStore, TrainingTasks, first_trigger_event
from vertex_testing import BUCKET, CONN_ID, IMAGE, secret_fragments

from airflow_trainkit._compat import TaskDeferred
from airflow_trainkit.exceptions import TrainingJobFailed
from airflow_trainkit.training.spec import TrainingJobSpec
from airflow_trainkit.triggers.training import TrainingJobTrigger

SPEC = {
    "command": ["python", "-m", "trainer.task"],
    "image": IMAGE,
    "output_uri": f"gs://{BUCKET}/models",
    "inputs": {"train": f"gs://{BUCKET}/data/train/"},
    "accelerator": "T4:1",
    "spot": True,
    "max_runtime": "3h",
    "checkpoint_uri": f"gs://{BUCKET}/checkpoints",
}


TASKS = TrainingTasks("vertex_ai", CONN_ID, SPEC, dag_id="vertex_lifecycle")
context, operator, job_name = TASKS.context, TASKS.operator, TASKS.job_name


@pytest.mark.parametrize("with_store", [True, False])
def test_retry_reattaches_without_a_second_create(fake, with_store):
    task_id = f"train_reattach_{with_store}"
    fake.plan_next(Plan(states=["PENDING"] + ["RUNNING"] * 5 + ["SUCCEEDED"], run_seconds=2700))
    store = TaskStateStore() if with_store else None
    with pytest.raises(TaskDeferred) as first:
        operator(task_id, poll_interval=0.001).execute(context(task_id, 1, store))
    # The worker died; the retry runs a fresh operator (and a fresh backend) and finds the same job.
    retry = operator(task_id, poll_interval=0.001)
    with pytest.raises(TaskDeferred) as second:
        retry.execute(context(task_id, 2, store))
    assert first.value.trigger.job_id == second.value.trigger.job_id == job_name(task_id)
    assert len(fake.calls("CreateCustomJob")) == 1
    (body,) = fake.calls("CreateCustomJob")
    assert body["labels"]["trainkit-job-id"] == job_name(task_id) == body["display_name"]
    event = first_trigger_event(second.value.trigger)
    ctx = context(task_id, 2, store)
    result = retry.execute_complete(ctx, event, **second.value.kwargs)
    assert result["state"] == "JOB_STATE_SUCCEEDED" and result["billable_seconds"] == 2700.0
    assert result["job_id"] == job_name(task_id)
    # The job ran in the connection's region, where the shipped price catalog has no Vertex AI price:
    # no cost, rather than the price of another region.
    assert result["region"] == "europe-west4" and result["cost"] is None
    assert "console.cloud.google.com/vertex-ai/locations/" in ctx["ti"].xcoms["console_url"]
    assert not any(s in json.dumps(result) for s in secret_fragments())
    assert len(fake.calls("CreateCustomJob")) == 1
    # Every lookup was of this one name, never a listing of the project.
    assert {c["filter"] for c in fake.calls("ListCustomJobs")} == {
        f'display_name="{job_name(task_id)}" AND labels.trainkit-job-id="{job_name(task_id)}"'
    }


def test_after_a_submit_the_trigger_and_a_restarted_trigger_never_list(fake):
    """The record carries the resource name: the triggerer reads it with GetCustomJob alone."""
    task_id = "train_no_list"
    fake.plan_next(Plan(states=["PENDING"] + ["RUNNING"] * 3 + ["SUCCEEDED"], run_seconds=600))
    store = TaskStateStore()
    with pytest.raises(TaskDeferred) as deferred:
        operator(task_id, poll_interval=0.001).execute(context(task_id, 1, store))
    lookups_before_submit = len(fake.calls("ListCustomJobs"))
    trigger = deferred.value.trigger
    assert trigger.ref.handle and trigger.ref.handle.startswith("projects/")
    assert store.get("trainkit_training_job")["handle"] == trigger.ref.handle
    # A restarted triggerer rebuilds the trigger from its serialized kwargs.
    _, kwargs = trigger.serialize()
    assert kwargs["job"]["handle"] == trigger.ref.handle
    assert first_trigger_event(TrainingJobTrigger(**kwargs))["status"] == "done"
    # So does a retry: it describes the recorded handle and returns the succeeded job's result.
    result = operator(task_id, poll_interval=0.001).execute(context(task_id, 2, store))
    assert result["job_id"] == job_name(task_id) and result["state"] == "JOB_STATE_SUCCEEDED"
    assert len(fake.calls("ListCustomJobs")) == lookups_before_submit
    assert len(fake.calls("CreateCustomJob")) == 1


@pytest.mark.parametrize("final", ["CANCELLED", "PAUSED", "EXPIRED", "FAILED"])
def test_a_job_that_does_not_succeed_fails_the_task_and_a_retry_is_a_new_attempt(fake, final):
    task_id = f"train_{final.lower()}"
    fake.plan_next(Plan(states=["RUNNING", final]))
    with pytest.raises(TaskDeferred) as deferred:
        operator(task_id, poll_interval=0.001).execute(context(task_id))
    event = first_trigger_event(deferred.value.trigger)
    assert event["job"]["state"] == f"JOB_STATE_{final}"
    number = fake.job_named(job_name(task_id)).message.name.rsplit("/", 1)[-1]
    fake.logs[number] = ["loading data", f"the job ends {final}"]
    with pytest.raises(TrainingJobFailed) as failed:
        operator(task_id).execute_complete(context(task_id), event, **deferred.value.kwargs)
    assert failed.value.state == f"JOB_STATE_{final}"
    assert failed.value.log_tail == ["loading data", f"the job ends {final}"]
    with pytest.raises(TaskDeferred) as retried:
        operator(task_id).execute(context(task_id, 2))
    assert retried.value.trigger.job_id == job_name(task_id, 2)
    assert [c["display_name"] for c in fake.calls("CreateCustomJob")] == [
        job_name(task_id, 1),
        job_name(task_id, 2),
    ]


def test_kill_of_a_non_deferred_task_cancels_the_job(fake):
    task_id = "train_killed"
    fake.plan_next(Plan(states=["RUNNING"]))
    op = operator(task_id, deferrable=False, poll_interval=0.001)
    op.on_kill()  # SIGTERM before the wait loop's first check
    with pytest.raises(Exception, match="killed"):
        op.execute(context(task_id))
    assert len(fake.calls("CancelCustomJob")) == 1


def test_deferral_timeout_cancels_the_job(fake):
    task_id = "train_deferral_timeout"
    fake.plan_next(Plan(states=["RUNNING"]))
    store = TaskStateStore()
    with pytest.raises(TaskDeferred):
        operator(task_id).execute(context(task_id, 1, store))
    with pytest.raises(Exception):  # noqa: B017 - TaskDeferralTimeout from the base class
        operator(task_id).resume_execution(
            "__fail__", {"error": "Trigger timeout"}, context(task_id, 1, store)
        )
    (cancel,) = fake.calls("CancelCustomJob")
    assert cancel["name"] == fake.job_named(job_name(task_id)).message.name


def test_trigger_on_kill_cancels_the_job(fake, backend):
    fake.plan_next(Plan(states=["RUNNING"]))
    backend.submit(TrainingJobSpec.parse(SPEC), "tk-trigger-kill-a1")
    trigger = TrainingJobTrigger("vertex_ai", "tk-trigger-kill-a1", CONN_ID, stop_on_kill=True, identity={})

    async def kill() -> None:
        await trigger.on_kill()
        await trigger.decision  # on_kill decides in a task of its own

    asyncio.run(kill())
    assert len(fake.calls("CancelCustomJob")) == 1
    assert backend.describe("tk-trigger-kill-a1").state == "JOB_STATE_CANCELLING"


def test_trigger_deadline_cancels_and_times_out(fake, backend):
    fake.plan_next(Plan(states=["RUNNING"]))
    backend.submit(TrainingJobSpec.parse(SPEC), "tk-deadline-a1")
    event = first_trigger_event(
        TrainingJobTrigger("vertex_ai", "tk-deadline-a1", CONN_ID, deadline=time.time() - 1)
    )
    assert event["status"] == "timeout"
    assert len(fake.calls("CancelCustomJob")) == 1


def test_throttling_and_5xx_for_several_polls_do_not_fail(fake, backend):
    fake.plan_next(Plan(states=["RUNNING"] * 3 + ["SUCCEEDED"]))
    backend.submit(TrainingJobSpec.parse(SPEC), "tk-throttled-a1")
    fake.throttle_next = 7
    event = first_trigger_event(
        TrainingJobTrigger("vertex_ai", "tk-throttled-a1", CONN_ID, poll_interval=0.0005)
    )
    assert event["status"] == "done" and event["job"]["state"] == "JOB_STATE_SUCCEEDED"
    fake.plan_next(Plan(states=["RUNNING", "SUCCEEDED"]))
    backend.submit(TrainingJobSpec.parse(SPEC), "tk-5xx-a1")
    fake.fail_5xx_next = 7
    event = first_trigger_event(TrainingJobTrigger("vertex_ai", "tk-5xx-a1", CONN_ID, poll_interval=0.0005))
    assert event["status"] == "done" and event["job"]["state"] == "JOB_STATE_SUCCEEDED"
    assert len(fake.calls("Throttled")) == 7 and len(fake.calls("Unavailable")) == 7


def test_bad_spec_is_refused_through_the_operator_before_any_call(fake):
    with pytest.raises(ValueError, match=r"spec\.checkpoint_uri"):
        operator("train_no_ckpt", spec={**SPEC, "checkpoint_uri": None}).execute(context("train_no_ckpt"))
    with pytest.raises(ValueError, match=r"spec\.output_uri"):
        operator("train_s3", spec={**SPEC, "output_uri": "s3://b/m"}).execute(context("train_s3"))
    assert fake.requests == []
