"""execution_timeout while deferred: Airflow 3.3 does not enforce it, so the operator and the
sensors cap their trigger's deadline with it, stop the job and fail the try with AirflowTaskTimeout."""

from __future__ import annotations

import time
from datetime import timedelta

import pytest
from trainkit_testing import TaskStateStore, first_trigger_event, make_context, settled

from airflow_trainkit._compat import AirflowTaskTimeout, TaskDeferred
from airflow_trainkit.backends.onprem import OnPremBackend
from airflow_trainkit.operators.training import STATE_KEY, TrainModelOperator
from airflow_trainkit.sensors.training import TrainingJobSensor
from airflow_trainkit.training.spec import TrainingJobSpec


def long_job(**kwargs) -> TrainModelOperator:
    return TrainModelOperator(
        task_id="train",
        spec={"command": ["sleep", "60"], "max_runtime": "1h"},
        poll_interval=0.1,
        execution_timeout=timedelta(seconds=2),
        **kwargs,
    )


def test_execution_timeout_caps_the_deferral_stops_the_job_and_fails_the_try(onprem_root):
    store = TaskStateStore()
    context = make_context(store=store)
    started = time.time()
    with pytest.raises(TaskDeferred) as deferred:
        long_job().execute(context)
    trigger = deferred.value.trigger
    assert trigger.deadline_reason == "execution_timeout"
    assert started <= trigger.deadline - 2 <= time.time()
    assert deferred.value.timeout <= timedelta(seconds=2 + 30 + 1)
    # The job's own record keeps the job's limit: a retry gets its own execution_timeout.
    assert store.get(STATE_KEY)["deadline"] > started + 3600
    event = first_trigger_event(trigger)
    assert event["status"] == "timeout" and event["reason"] == "execution_timeout"
    with pytest.raises(
        AirflowTaskTimeout, match=r"execution_timeout \(0:00:02\) passed while the task was deferred"
    ):
        long_job().execute_complete(make_context(store=store), event, **deferred.value.kwargs)
    assert settled(OnPremBackend(), trigger.job_id, timeout=20).state == "STOPPED"
    assert "execution_timeout passed" in OnPremBackend().describe(trigger.job_id).message


def test_a_resumed_try_keeps_its_clock_and_a_retry_gets_its_own(onprem_root):
    store = TaskStateStore()
    with pytest.raises(TaskDeferred) as first:
        long_job().execute(make_context(store=store, try_number=1))
    time.sleep(1)
    with pytest.raises(TaskDeferred) as same_try:  # e.g. the worker died before deferring
        long_job().execute(make_context(store=store, try_number=1))
    assert same_try.value.trigger.deadline == pytest.approx(first.value.trigger.deadline)
    with pytest.raises(TaskDeferred) as retry:
        long_job().execute(make_context(store=store, try_number=2))
    assert retry.value.trigger.deadline >= first.value.trigger.deadline + 0.9
    OnPremBackend().stop(first.value.trigger.job_id)


def test_the_deferral_backstop_after_execution_timeout_stops_the_job(onprem_root):
    store = TaskStateStore()
    with pytest.raises(TaskDeferred) as deferred:
        long_job().execute(make_context(store=store))
    time.sleep(2.1)
    # The triggerer was down: the scheduler resumes the task with "__fail__".
    with pytest.raises(AirflowTaskTimeout, match="execution_timeout"):
        long_job().resume_execution("__fail__", {"error": "timeout"}, make_context(store=store))
    assert settled(OnPremBackend(), deferred.value.trigger.job_id, timeout=20).state == "STOPPED"


def test_a_sensor_fails_on_execution_timeout_without_stopping_the_job(onprem_root):
    backend = OnPremBackend()
    backend.find("watched")
    backend.submit(TrainingJobSpec.parse({"command": ["sleep", "30"]}), "watched")
    sensor = TrainingJobSensor(
        task_id="wait",
        backend="onprem",
        job_id="watched",
        poke_interval=0.1,
        timeout=600,
        execution_timeout=timedelta(seconds=1),
    )
    store = TaskStateStore()
    with pytest.raises(TaskDeferred) as deferred:
        sensor.execute(make_context(store=store))
    assert deferred.value.trigger.deadline_reason == "execution_timeout"
    event = first_trigger_event(deferred.value.trigger)
    with pytest.raises(AirflowTaskTimeout, match="execution_timeout"):
        sensor.execute_complete(make_context(store=store), event)
    assert backend.describe("watched").state == "RUNNING"  # the job belongs to whoever started it
    backend.stop("watched")
