"""TrainingJobSensor waits on a job started elsewhere and never stops it."""

from __future__ import annotations

import pytest
from trainkit_testing import first_trigger_event, make_context, settled

from airflow_trainkit._compat import TaskDeferred
from airflow_trainkit.backends.onprem import OnPremBackend
from airflow_trainkit.exceptions import TrainingJobFailed
from airflow_trainkit.sensors.training import TrainingJobSensor
from airflow_trainkit.training.spec import TrainingJobSpec
from airflow_trainkit.vocabulary import TrainkitDeprecationWarning


def start(script: str, job_id: str) -> OnPremBackend:
    backend = OnPremBackend()
    backend.find(job_id)
    backend.submit(TrainingJobSpec.parse({"command": ["sh", "-c", script]}), job_id)
    return backend


def test_poke_waits_then_returns_the_result(onprem_root):
    backend = start("sleep 1.5", "watched-ok")
    sensor = TrainingJobSensor(task_id="wait", backend="onprem", job_id="watched-ok", deferrable=False)
    assert sensor.poke(make_context()) is False
    settled(backend, "watched-ok")
    done = sensor.poke(make_context())
    assert (
        done.is_done and done.xcom_value["state"] == "SUCCEEDED" and done.xcom_value["job_id"] == "watched-ok"
    )


def test_a_failed_job_fails_the_sensor_with_its_reason(onprem_root):
    backend = start("echo nope; exit 4", "watched-bad")
    settled(backend, "watched-bad")
    sensor = TrainingJobSensor(task_id="wait", backend="onprem", job_id="watched-bad", deferrable=False)
    with pytest.raises(TrainingJobFailed, match="ended FAILED: exit code 4"):
        sensor.poke(make_context())


def test_deferrable_waits_in_the_trigger_without_owning_the_job(onprem_root):
    start("sleep 1", "watched-deferred")
    sensor = TrainingJobSensor(
        task_id="wait", backend="onprem", job_id="watched-deferred", poke_interval=0.1, timeout=60
    )
    with pytest.raises(TaskDeferred) as deferred:
        sensor.execute(make_context())
    trigger = deferred.value.trigger
    assert trigger.stop_on_kill is False and trigger.deadline is not None
    result = sensor.execute_complete(make_context(), first_trigger_event(trigger))
    assert result["state"] == "SUCCEEDED"


DEFERRABLE_ENV = "AIRFLOW__OPERATORS__DEFAULT_DEFERRABLE"


def test_backend_conn_id_and_its_old_name(onprem_root):
    sensor = TrainingJobSensor(
        task_id="wait", backend="onprem", job_id="j", backend_conn_id="trainkit_onprem_x"
    )
    assert sensor.training_backend.conn_id == "trainkit_onprem_x"
    assert sensor.training_backend is sensor.training_backend
    with pytest.warns(TrainkitDeprecationWarning, match=r"TrainingJobSensor\(conn_id=\.\.\.\) is deprecated"):
        old = TrainingJobSensor(task_id="wait", backend="onprem", job_id="j", conn_id="trainkit_onprem_x")
    assert old.backend_conn_id == "trainkit_onprem_x"


def test_deferrable_by_default_unless_the_deployment_says_otherwise(monkeypatch):
    for tail in ("", "_CMD", "_SECRET"):
        monkeypatch.delenv(DEFERRABLE_ENV + tail, raising=False)
    assert TrainingJobSensor(task_id="wait", backend="onprem", job_id="j").deferrable is True
    monkeypatch.setenv(DEFERRABLE_ENV, "false")
    assert TrainingJobSensor(task_id="wait", backend="onprem", job_id="j").deferrable is False


@pytest.mark.parametrize(
    ("event", "message"),
    [
        ({"job_id": "j"}, "trigger event: event.status must be one of 'done', 'timeout', 'error', got None"),
        ({"status": "done", "job_id": "j"}, "trigger event: event.job: required, missing"),
        (
            {"status": "done", "job": {"job_id": "j", "state": "X", "phase": "finished"}},
            "trigger event: event.job.phase: Input should be 'pending', 'running', 'stopping', 'succeeded', 'failed' or 'stopped', got 'finished'",
        ),
        ({"status": "error"}, "trigger event: event.message: required, missing"),
        ("done", "trigger event: event.status must be one of 'done', 'timeout', 'error', got 'done'"),
    ],
)
def test_a_malformed_event_names_what_is_wrong(onprem_root, event, message):
    sensor = TrainingJobSensor(task_id="wait", backend="onprem", job_id="j")
    with pytest.raises(ValueError) as err:
        sensor.execute_complete(make_context(), event)
    assert str(err.value) == message
