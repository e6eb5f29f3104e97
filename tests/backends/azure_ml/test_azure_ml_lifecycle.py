"""TrainModelOperator and TrainingJobTrigger on Azure ML: re-attach, every end state, stop on every exit path, backoff."""

from __future__ import annotations

import asyncio
import json
import logging
import time

import pytest
from _azure_ml_fake import Plan
from azure_testing import (
    ACCOUNT,
    ARTIFACT_ACCOUNT,
    ARTIFACT_CONTAINER,
    CLIENT_SECRET,
    CONN_ID,
    CONTAINER,
    IMAGE,
    store_uri,
)
from trainkit_testing import TaskStateStore, TrainingTasks, first_trigger_event

from airflow_trainkit._compat import TaskDeferred
from airflow_trainkit.exceptions import TrainingJobFailed
from airflow_trainkit.operators.training import TrainModelOperator
from airflow_trainkit.training.spec import TrainingJobSpec
from airflow_trainkit.triggers.training import TrainingJobTrigger

SPEC = {
    "command": ["python", "-m", "airflow_trainkit.trainers.xgboost"],
    "image": IMAGE,
    "output_uri": store_uri("models"),
    "inputs": {"train": store_uri("data/train/")},
    "accelerator": "T4:1",
    "spot": True,
    "max_runtime": "3h",
    "checkpoint_uri": store_uri("checkpoints"),
}


TASKS = TrainingTasks("azure_ml", CONN_ID, SPEC, dag_id="azure_lifecycle")
context, operator, job_name = TASKS.context, TASKS.operator, TASKS.job_name


def log_blob(fake, job: str, lines: list[str]) -> None:
    fake.put_blob(
        ARTIFACT_ACCOUNT,
        ARTIFACT_CONTAINER,
        f"ExperimentRun/dcid.{job}/user_logs/std_log.txt",
        "\n".join(lines).encode(),
    )


@pytest.mark.parametrize("with_store", [True, False])
def test_retry_reattaches_with_one_get_and_never_a_second_create(fake, with_store, caplog):
    task_id = f"train_reattach_{with_store}"
    name = job_name(task_id)
    fake.plan_next(Plan(states=["NotStarted", "Queued"] + ["Running"] * 4 + ["Completed"], run_seconds=2700))
    store = TaskStateStore() if with_store else None
    with pytest.raises(TaskDeferred) as first:
        operator(task_id, poll_interval=0.001).execute(context(task_id, 1, store))
    gets_before_retry = len(fake.calls("GetJob"))
    # The worker died; the retry runs a fresh operator (and a fresh backend) and finds the same job.
    retry = operator(task_id, poll_interval=0.001)
    with pytest.raises(TaskDeferred) as second:
        retry.execute(context(task_id, 2, store))
    assert first.value.trigger.job_id == second.value.trigger.job_id == name
    assert len(fake.calls("CreateJob")) == 1
    # Re-attach was one GET of the job by its name: no listing, no other call.
    assert len(fake.calls("GetJob")) - gets_before_retry == 1
    fake.put_blob(ACCOUNT, CONTAINER, f"models/{name}/model/metrics.json", b'{"auc": 0.91}')
    log_blob(fake, name, ["epoch 1", "epoch 2", "done"])
    event = first_trigger_event(second.value.trigger)
    ctx = context(task_id, 2, store)
    with caplog.at_level(logging.DEBUG):
        result = retry.execute_complete(ctx, event, **second.value.kwargs)
    assert result["state"] == "Completed" and result["billable_seconds"] == 2700.0
    assert result["job_id"] == name and result["metrics"] == {"auc": 0.91}
    assert result["output_uri"] == f"abfss://{CONTAINER}@{ACCOUNT}.dfs.core.windows.net/models/{name}/model"
    assert result["details"]["output_datastore_uri"] == store_uri(f"models/{name}/model")
    # 2700 s on one spot Standard_NC4as_T4_v3 in eastus at the catalog's spot price.
    assert result["region"] == "eastus" and result["instance_type"] == "Standard_NC4as_T4_v3"
    assert result["cost"]["amount"] == pytest.approx(0.062699 * 2700 / 3600, rel=1e-3)
    assert ctx["ti"].xcoms["console_url"].startswith(f"https://ml.azure.com/runs/{name}?wsid=")
    # The job's std_log was read from the workspace artifact store for the task's log.
    assert fake.calls("GetBlob", path=f"ExperimentRun/dcid.{name}/user_logs/std_log.txt")
    assert CLIENT_SECRET not in json.dumps(result) + caplog.text
    assert len(fake.calls("CreateJob")) == 1


@pytest.mark.parametrize("final", ["Canceled", "Paused", "NotResponding", "Failed"])
def test_a_job_that_does_not_succeed_fails_the_task_and_a_retry_is_a_new_attempt(fake, final):
    task_id = f"train_{final.lower()}"
    fake.plan_next(Plan(states=["Running", final], run_seconds=60))
    with pytest.raises(TaskDeferred) as deferred:
        operator(task_id, poll_interval=0.001).execute(context(task_id))
    event = first_trigger_event(deferred.value.trigger)
    assert event["job"]["state"] == final
    log_blob(fake, job_name(task_id), ["loading data", f"the job ends {final}"])
    with pytest.raises(TrainingJobFailed) as failed:
        operator(task_id).execute_complete(context(task_id), event, **deferred.value.kwargs)
    assert failed.value.state == final
    assert failed.value.log_tail == ["loading data", f"the job ends {final}"]
    with pytest.raises(TaskDeferred) as retried:
        operator(task_id).execute(context(task_id, 2))
    assert retried.value.trigger.job_id == job_name(task_id, 2)
    assert [c["name"] for c in fake.calls("CreateJob")] == [job_name(task_id, 1), job_name(task_id, 2)]
    # The retry mounts the same checkpoint folder, so it resumes where the first attempt stopped.
    assert {c["properties"]["outputs"]["checkpoints"]["uri"] for c in fake.calls("CreateJob")} == {
        store_uri("checkpoints/")
    }


def test_a_job_canceled_by_its_own_timeout_is_reported_as_timed_out(fake):
    task_id = "train_own_timeout"
    fake.plan_next(Plan(states=["Running", "Canceled"], run_seconds=3 * 3600))
    with pytest.raises(TaskDeferred) as deferred:
        operator(task_id, poll_interval=0.001).execute(context(task_id))
    event = first_trigger_event(deferred.value.trigger)
    assert event["job"]["phase"] == "failed" and event["job"]["details"]["timed_out"] is True
    with pytest.raises(
        TrainingJobFailed, match="timed out: Azure ML canceled the job at its limits.timeout of 10800 s"
    ):
        operator(task_id).execute_complete(context(task_id), event, **deferred.value.kwargs)


def test_an_unknown_status_string_is_a_failure_naming_it(fake):
    task_id = "train_unknown_status"
    fake.plan_next(Plan(states=["Running", "Evaporated"]))
    with pytest.raises(TaskDeferred) as deferred:
        operator(task_id, poll_interval=0.001).execute(context(task_id))
    event = first_trigger_event(deferred.value.trigger)
    with pytest.raises(TrainingJobFailed, match="'Evaporated'"):
        operator(task_id).execute_complete(context(task_id), event, **deferred.value.kwargs)


def test_a_preempted_low_priority_job_goes_back_to_the_queue_and_the_task_keeps_waiting(fake, backend):
    fake.plan_next(Plan(states=["Queued", "Running", "Queued", "Preparing", "Running", "Completed"]))
    backend.submit(TrainingJobSpec.parse(SPEC), "tk-preempted-a1")
    event = first_trigger_event(
        TrainingJobTrigger("azure_ml", "tk-preempted-a1", CONN_ID, poll_interval=0.0005)
    )
    assert event["status"] == "done" and event["job"]["state"] == "Completed"
    assert len(fake.calls("GetJob", name="tk-preempted-a1")) == 6


def test_kill_of_a_non_deferred_task_cancels_the_job(fake):
    task_id = "train_killed"
    fake.plan_next(Plan(states=["Running"]))
    op = operator(task_id, deferrable=False, poll_interval=0.001)
    op.on_kill()  # SIGTERM before the wait loop's first check
    with pytest.raises(Exception, match="killed"):
        op.execute(context(task_id))
    assert fake.calls("CancelJob") == [{"name": job_name(task_id)}]


def test_deferral_timeout_cancels_the_job(fake):
    task_id = "train_deferral_timeout"
    fake.plan_next(Plan(states=["Running"]))
    store = TaskStateStore()
    with pytest.raises(TaskDeferred):
        operator(task_id).execute(context(task_id, 1, store))
    with pytest.raises(Exception):  # noqa: B017 - TaskDeferralTimeout from the base class
        operator(task_id).resume_execution(
            "__fail__", {"error": "Trigger timeout"}, context(task_id, 1, store)
        )
    assert fake.calls("CancelJob") == [{"name": job_name(task_id)}]


def test_execution_timeout_while_deferred_cancels_the_job_and_fails_the_try(fake):
    from datetime import timedelta

    from airflow_trainkit._compat import AirflowTaskTimeout

    task_id = "train_exec_timeout"
    fake.plan_next(Plan(states=["Running"]))
    store = TaskStateStore()
    op = operator(task_id, poll_interval=0.05, execution_timeout=timedelta(seconds=0.3))
    with pytest.raises(TaskDeferred) as deferred:
        op.execute(context(task_id, 1, store))
    assert deferred.value.trigger.deadline_reason == "execution_timeout"
    event = first_trigger_event(deferred.value.trigger)
    assert event["status"] == "timeout" and event["reason"] == "execution_timeout"
    with pytest.raises(AirflowTaskTimeout, match="execution_timeout"):
        op.execute_complete(context(task_id, 1, store), event, **deferred.value.kwargs)
    assert fake.calls("CancelJob") == [{"name": job_name(task_id)}]


def test_trigger_on_kill_cancels_the_job(fake, backend):
    fake.plan_next(Plan(states=["Running"]))
    backend.submit(TrainingJobSpec.parse(SPEC), "tk-trigger-kill-a1")
    trigger = TrainingJobTrigger("azure_ml", "tk-trigger-kill-a1", CONN_ID, stop_on_kill=True, identity={})

    async def kill() -> None:
        await trigger.on_kill()
        await trigger.decision  # on_kill decides in a task of its own

    asyncio.run(kill())
    assert fake.calls("CancelJob") == [{"name": "tk-trigger-kill-a1"}]
    assert backend.describe("tk-trigger-kill-a1").state == "CancelRequested"
    assert backend.describe("tk-trigger-kill-a1").state == "Canceled"


def test_trigger_deadline_cancels_and_times_out(fake, backend):
    fake.plan_next(Plan(states=["Running"]))
    backend.submit(TrainingJobSpec.parse(SPEC), "tk-deadline-a1")
    event = first_trigger_event(
        TrainingJobTrigger("azure_ml", "tk-deadline-a1", CONN_ID, deadline=time.time() - 1)
    )
    assert event["status"] == "timeout"
    assert fake.calls("CancelJob") == [{"name": "tk-deadline-a1"}]


def test_stop_is_idempotent_and_survives_429_and_502_without_retry_after(fake, backend):
    fake.plan_next(Plan(states=["Running"]))
    backend.submit(TrainingJobSpec.parse(SPEC), "tk-stop-a1")
    fake.cancel_faults = [429, 502]
    backend.stop("tk-stop-a1")
    assert [c["status"] for c in fake.calls("CancelFault")] == [429, 502]
    assert len(fake.calls("CancelJob")) == 3  # azure-core gave both back at once; we retried
    backend.stop("tk-stop-a1")  # CancelRequested: nothing more to ask
    backend.stop("tk-stop-a1")  # Canceled: nothing to ask
    assert len(fake.calls("CancelJob")) == 3
    # A job that ends between the describe and the cancel is left alone too.
    fake.plan_next(Plan(states=["Running"]))
    backend.submit(TrainingJobSpec.parse(SPEC), "tk-stop-race-a1")
    fake.end_before_cancel = True
    backend.stop("tk-stop-race-a1")
    assert backend.describe("tk-stop-race-a1").state == "Completed"


def test_throttling_with_and_without_retry_after_and_5xx_do_not_fail(fake, backend):
    fake.plan_next(Plan(states=["Running"] * 3 + ["Completed"]))
    backend.submit(TrainingJobSpec.parse(SPEC), "tk-throttled-a1")
    fake.throttle_next = 7
    event = first_trigger_event(
        TrainingJobTrigger("azure_ml", "tk-throttled-a1", CONN_ID, poll_interval=0.0005)
    )
    assert event["status"] == "done" and event["job"]["state"] == "Completed"
    fake.plan_next(Plan(states=["Running", "Completed"]))
    backend.submit(TrainingJobSpec.parse(SPEC), "tk-retry-after-a1")
    fake.retry_after, fake.throttle_next = "0", 7
    event = first_trigger_event(
        TrainingJobTrigger("azure_ml", "tk-retry-after-a1", CONN_ID, poll_interval=0.0005)
    )
    assert event["status"] == "done" and event["job"]["state"] == "Completed"
    fake.plan_next(Plan(states=["Running", "Completed"]))
    backend.submit(TrainingJobSpec.parse(SPEC), "tk-5xx-a1")
    fake.fail_5xx_next = 7
    event = first_trigger_event(TrainingJobTrigger("azure_ml", "tk-5xx-a1", CONN_ID, poll_interval=0.0005))
    assert event["status"] == "done" and event["job"]["state"] == "Completed"
    assert len(fake.calls("Throttled")) == 14 and len(fake.calls("Unavailable")) == 7


def test_bad_spec_is_refused_through_the_operator_before_any_call(fake):
    with pytest.raises(ValueError, match=r"spec\.checkpoint_uri"):
        operator("train_no_ckpt", spec={**SPEC, "checkpoint_uri": None}).execute(context("train_no_ckpt"))
    with pytest.raises(ValueError, match=r"spec\.output_uri"):
        operator("train_s3", spec={**SPEC, "output_uri": "s3://b/m"}).execute(context("train_s3"))
    assert fake.requests == []


def test_quote_then_train_picks_azure_ml_when_it_is_cheapest_and_records_its_cost(fake, tmp_path):
    from airflow_trainkit.operators.costs import CompareTrainingCostsOperator

    task_id = "train_after_quote"
    quote_context = context("quote")
    quotes = CompareTrainingCostsOperator(
        task_id="quote",
        spec=SPEC,
        hours=2,
        pick="cheapest",
        pick_from_backends=["sagemaker", "vertex_ai", "azure_ml"],
        report_uri=str(tmp_path / "report"),
    ).execute(quote_context)
    assert quotes["cheapest"]["backend"] == "azure_ml" and "azure_ml" not in quotes["left_out"]
    assert quote_context["ti"].xcoms["backend"] == "azure_ml"
    fake.plan_next(Plan(states=["Completed"], run_seconds=7200))
    op = TrainModelOperator(
        task_id=task_id,
        backend=quote_context["ti"].xcoms["backend"],
        spec=SPEC,
        backend_conn_id=CONN_ID,
        deferrable=False,
        poll_interval=0.001,
    )
    result = op.execute(context(task_id))
    assert result["backend"] == "azure_ml" and result["state"] == "Completed"
    # Quoted and billed on the same row: 2 h of a spot Standard_NC4as_T4_v3 in eastus.
    assert result["cost"]["amount"] == pytest.approx(
        quotes["cheapest"]["total"], abs=1e-4
    )  # quotes round to 4 places
    assert result["cost"]["price_row"]["instance_type"] == quotes["cheapest"]["instance_type"]
