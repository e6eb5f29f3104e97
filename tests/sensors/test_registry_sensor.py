"""``ModelVersionSensor`` without a registry: its deferrable default, its hook, and the shape of the
trigger's event it resumes with."""

from __future__ import annotations

from types import SimpleNamespace
from unittest.mock import Mock

import pytest
from trainkit_testing import make_context

from airflow_trainkit._compat import AirflowException, TaskDeferred
from airflow_trainkit.hooks.mlflow import MlflowHook
from airflow_trainkit.sensors.registry import ModelVersionSensor
from airflow_trainkit.triggers.registry import ModelVersionTrigger
from airflow_trainkit.vocabulary import TrainkitDeprecationWarning

ENV = "AIRFLOW__OPERATORS__DEFAULT_DEFERRABLE"
FOUND = {
    "model_name": "churn",
    "version": "4",
    "alias": "champion",
    "tag": None,
    "run_id": "r-1",
    "source": "s3://models/4",
    "model_uri": "models:/churn/4",
}


def sensor(**kwargs) -> ModelVersionSensor:
    kwargs.setdefault("alias", "champion")
    return ModelVersionSensor(task_id="wait", model_name="churn", **kwargs)


@pytest.mark.parametrize(
    ("env", "given", "expected"),
    [
        (None, None, True),  # our default: waiting costs no worker slot
        ("false", None, False),  # the deployment said so explicitly
        ("true", None, True),
        ("false", True, True),  # the task's own word wins
        (None, False, False),
    ],
)
def test_deferrable_follows_the_deployment_only_when_it_says_so(monkeypatch, env, given, expected):
    if env is None:
        monkeypatch.delenv(ENV, raising=False)
    else:
        monkeypatch.setenv(ENV, env)
    assert sensor(deferrable=given).deferrable is expected


def test_deferrable_defers_to_the_trigger_with_the_connection(monkeypatch):
    monkeypatch.delenv(ENV, raising=False)
    with pytest.raises(TaskDeferred) as deferred:
        sensor(mlflow_conn_id="mlflow_prod", newer_than="3").execute(make_context(task_id="wait"))
    trigger = deferred.value.trigger
    assert isinstance(trigger, ModelVersionTrigger)
    assert trigger.serialize()[1] == {
        "model_name": "churn",
        "alias": "champion",
        "tag": None,
        "newer_than": 3,
        "mlflow_conn_id": "mlflow_prod",
        "poll_interval": 60.0,
        "deadline": trigger.deadline,
    }


def test_pokes_ask_through_the_sensors_one_hook():
    waiting = sensor(newer_than=3, poke_interval=1)
    hook = Mock(spec=MlflowHook)
    hook.get_client.return_value.get_model_version_by_alias.side_effect = [
        SimpleNamespace(version="3", run_id="r-0", source="s3://models/3"),  # not newer yet
        SimpleNamespace(version="4", run_id="r-1", source="s3://models/4"),
    ]
    waiting.hook = hook
    context = make_context(task_id="wait")
    assert waiting.poke(context) is False
    assert waiting.poke(context).xcom_value == FOUND
    assert waiting.hook is hook


def test_with_the_deployment_not_deferrable_it_pokes_from_the_worker(monkeypatch):
    monkeypatch.setenv(ENV, "false")
    waiting = sensor(poke_interval=1)
    waiting.hook = Mock(spec=MlflowHook)
    waiting.hook.get_client.return_value.get_model_version_by_alias.return_value = SimpleNamespace(
        version="4", run_id="r-1", source="s3://models/4"
    )
    assert waiting.execute(make_context(task_id="wait")) == FOUND


def test_the_hook_is_built_once_from_the_rendered_connection():
    waiting = sensor(mlflow_conn_id="mlflow_prod")
    assert waiting.hook is waiting.hook and waiting.hook.conn_id == "mlflow_prod"


def test_found_event_returns_the_version():
    assert sensor().execute_complete(make_context(), {"status": "found", "version": FOUND}) == FOUND


def test_error_event_fails_with_its_message():
    with pytest.raises(AirflowException, match="polling churn failed: boom"):
        sensor().execute_complete(
            make_context(), {"status": "error", "message": "polling churn failed: boom"}
        )


@pytest.mark.parametrize(
    ("event", "message"),
    [
        ({"version": FOUND}, "event.status: required, missing"),
        (
            {"status": "done", "version": FOUND},
            r"event.status: Input should be 'found', 'timeout' or 'error'",
        ),
        ({"status": "found"}, "a 'found' event must carry the version"),
        ({"status": "error"}, "an? 'error' event must carry a message"),
        ({"status": "found", "version": {**FOUND, "version": 4}}, "event.version.version: .*got 4"),
        ({"status": "found", "version": {"version": "4"}}, "event.version.model_name: required, missing"),
        ({"status": "found", "version": FOUND, "extra": 1}, "event.extra: unknown key"),
        ("found", "event: .*got 'found'"),
    ],
)
def test_a_malformed_event_names_what_is_wrong(event, message):
    with pytest.raises(ValueError, match=f"malformed event from ModelVersionTrigger: .*{message}"):
        sensor().execute_complete(make_context(), event)


def test_conn_id_still_works_with_a_warning():
    with pytest.warns(
        TrainkitDeprecationWarning,
        match=r"ModelVersionSensor\(conn_id=...\) is deprecated; use mlflow_conn_id",
    ):
        old = sensor(conn_id="mlflow_prod")
    assert old.mlflow_conn_id == "mlflow_prod"
