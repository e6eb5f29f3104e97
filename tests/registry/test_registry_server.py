"""Registration, the gate, rollback and the version sensor against a real MLflow tracking server."""

from __future__ import annotations

import asyncio
import logging
import uuid
from functools import partial
from typing import Any

import pytest
from model_output import FEATURES, training_result
from trainkit_testing import make_context

from airflow_trainkit._compat import AirflowFailException, AirflowSkipException
from airflow_trainkit.hooks.mlflow import MlflowHook
from airflow_trainkit.operators.registry import (
    DECISION_XCOM_KEY,
    PromoteModelOperator,
    RegisterModelOperator,
)
from airflow_trainkit.registry.promotion import rollback_champion
from airflow_trainkit.vocabulary import TrainkitDeprecationWarning

pytestmark = pytest.mark.integration
_context = partial(make_context, dag_id="dag_x", run_id="manual__1")

# The demo-sized model does not meet the guide's strict defaults; these are what it meets.
DEMO_THRESHOLDS = {"auc_roc": 0.70, "f1_weighted": 0.70, "log_loss": 0.45}


def register(conn_id: str, name: str, folder: Any, metrics: Any, job: str | None = None, **kw: Any) -> Any:
    op = RegisterModelOperator(
        task_id="register",
        model_name=name,
        mlflow_conn_id=conn_id,
        training_result=training_result(folder, metrics, job or uuid.uuid4().hex),
        **kw,
    )
    return op.execute(_context(task_id="register"))


def promote(conn_id: str, name: str, **kw: Any) -> Any:
    kw.setdefault("thresholds", DEMO_THRESHOLDS)
    context = _context(task_id="promote")
    op = PromoteModelOperator(task_id="promote", model_name=name, mlflow_conn_id=conn_id, **kw)
    return op.execute(context), context


def load_and_predict(tracking_uri: str, uri: str) -> Any:
    import mlflow

    from airflow_trainkit.demo.data import make_churn_frame

    previous = mlflow.get_tracking_uri()
    mlflow.set_tracking_uri(tracking_uri)
    try:
        model = mlflow.pyfunc.load_model(uri)
    finally:
        mlflow.set_tracking_uri(previous)
    return model.predict(make_churn_frame(20, seed=3)[FEATURES])


def test_register_lineage_and_idempotent_retry(server_conn, model_folders, mlflow_server):
    folder, metrics = model_folders["good"]
    fingerprint = {"row_count": 2000, "schema_hash": "abc", "content_hash": "def"}
    first = register(server_conn, "churn-reg", folder, metrics, job="job-42", data_fingerprint=fingerprint)
    again = register(server_conn, "churn-reg", folder, metrics, job="job-42", data_fingerprint=fingerprint)
    assert again["version"] == first["version"] and again["reused"] and not first["reused"]

    client = MlflowHook(server_conn).get_client()
    versions = client.search_model_versions("name = 'churn-reg'")
    assert [v.version for v in versions] == [first["version"]]
    version = client.get_model_version("churn-reg", first["version"])
    assert version.aliases == ["challenger"]
    tags = version.tags
    assert tags["trainkit.job_id"] == "job-42"
    assert tags["trainkit.backend"] == "onprem"
    assert tags["trainkit.data.content_hash"] == "def"
    assert tags["trainkit.dag_id"] == "dag_x" and tags["trainkit.task_id"] == "register"
    assert tags["trainkit.billable_seconds"] == "60" and tags["trainkit.cost_amount"] == "0.01"
    run = client.get_run(version.run_id)
    assert run.info.status == "FINISHED"
    assert run.data.metrics["auc_roc"] == pytest.approx(metrics["auc_roc"])
    assert run.data.params["backend"] == "onprem" and run.data.params["task"] == "classification"
    predictions = load_and_predict(mlflow_server, "models:/churn-reg@challenger")
    assert len(predictions) == 20 and ((predictions > 0) & (predictions < 1)).all()


def test_gate_pass_reject_and_rollback(server_conn, model_folders, mlflow_server, caplog, capsys):
    name = "churn-gate"
    good, good_metrics = model_folders["good"]
    weak, weak_metrics = model_folders["weak"]
    assert weak_metrics["auc_roc"] < good_metrics["auc_roc"] - 0.05
    client = MlflowHook(server_conn).get_client()

    v1 = register(server_conn, name, good, good_metrics)
    decision, _ = promote(server_conn, name)
    assert decision["passed"] and decision["decision"] == "promoted" and decision["version"] == v1["version"]
    assert client.get_model_version_by_alias(name, "champion").version == v1["version"]
    predictions = load_and_predict(mlflow_server, f"models:/{name}@champion")
    assert len(predictions) == 20

    # The guide's defaults (log_loss <= 0.25) reject the same kind of model: fail, no alias move.
    v2 = register(server_conn, name, good, good_metrics)
    with pytest.raises(AirflowFailException, match="log_loss"):
        promote(server_conn, name, thresholds=None)
    tags = client.get_model_version(name, v2["version"]).tags
    assert tags["trainkit.gate.decision"] == "rejected" and "log_loss" in tags["trainkit.gate.reasons"]
    assert client.get_model_version_by_alias(name, "champion").version == v1["version"]

    # A weaker challenger meets lenient thresholds but not the champion: skipped, reason recorded.
    v3 = register(server_conn, name, weak, weak_metrics)
    context = _context(task_id="promote")
    with pytest.raises(AirflowSkipException, match="worse than @champion"):
        PromoteModelOperator(
            task_id="promote",
            model_name=name,
            mlflow_conn_id=server_conn,
            on_failure="skip",
            thresholds={"auc_roc": 0.4, "f1_weighted": 0.5, "log_loss": 0.9},
        ).execute(context)
    pushed = context["ti"].xcoms[DECISION_XCOM_KEY]
    assert pushed["version"] == v3["version"] and not pushed["passed"]
    assert any("auc_roc" in reason for reason in pushed["reasons"])
    assert client.get_model_version_by_alias(name, "champion").version == v1["version"]

    # on_failure="warn": the same verdict, the task succeeds with the decision and logs it; nothing moves.
    caplog.set_level(logging.WARNING)
    warned, context = promote(
        server_conn,
        name,
        on_failure="warn",
        thresholds={"auc_roc": 0.4, "f1_weighted": 0.5, "log_loss": 0.9},
    )
    assert warned["decision"] == "rejected" and not warned["passed"] and warned["version"] == v3["version"]
    assert context["ti"].xcoms[DECISION_XCOM_KEY] == warned
    logged = caplog.text + capsys.readouterr().out  # Airflow's task logger writes through structlog
    assert "not promoted (on_failure='warn')" in logged and "worse than @champion" in logged
    assert client.get_model_version_by_alias(name, "champion").version == v1["version"]

    # v2 passes demo thresholds: it becomes champion and v1 keeps @previous-champion.
    decision, _ = promote(server_conn, name, version=v2["version"])
    assert decision["previous_champion"] == v1["version"]
    assert client.get_model_version_by_alias(name, "previous-champion").version == v1["version"]
    again, _ = promote(server_conn, name, version=v2["version"])
    assert again["decision"] == "already-champion"

    rolled = rollback_champion(name, mlflow_conn_id=server_conn)
    assert rolled == {**rolled, "champion": v1["version"], "rolled_back": v2["version"]}
    assert client.get_model_version_by_alias(name, "champion").version == v1["version"]
    assert client.get_model_version_by_alias(name, "rolled-back").version == v2["version"]
    with pytest.raises(ValueError, match="previous-champion"):
        rollback_champion(name, mlflow_conn_id=server_conn)
    # The old place and name still work for one release, with a warning naming the new ones.
    from airflow_trainkit.operators.registry import rollback_champion as old_rollback

    with (
        pytest.warns(TrainkitDeprecationWarning, match=r"registry\.promotion\.rollback_champion"),
        pytest.raises(ValueError, match="previous-champion"),
    ):
        old_rollback(name, conn_id=server_conn)


def test_bad_input_errors(server_conn, model_folders):
    folder, metrics = model_folders["good"]
    with pytest.raises(ValueError, match="no registered model"):
        promote(server_conn, "no-such-model")
    with pytest.raises(ValueError, match="has no metrics"):
        register(server_conn, "churn-bad", folder, None)
    register(server_conn, "churn-bad", folder, metrics)
    with pytest.raises(ValueError, match="did not report: precision"):
        promote(server_conn, "churn-bad", thresholds={"precision": 0.5})
    client = MlflowHook(server_conn).get_client()
    assert client.get_registered_model("churn-bad").aliases == {"challenger": "1"}


def test_failed_registration_leaves_nothing(server_conn, model_folders, tmp_path):
    folder, metrics = model_folders["good"]
    client = MlflowHook(server_conn).get_client()
    # The registry refuses the alias after the version was created: that version is deleted.
    with pytest.raises(Exception, match="latest"):
        register(server_conn, "churn-half", folder, metrics, job="job-h", alias="latest")
    assert client.search_model_versions("name = 'churn-half'") == []
    # A model file that does not load: the run is FAILED and nothing is registered.
    broken = tmp_path / "broken"
    broken.mkdir()
    for name in ("model_meta.json", "metrics.json"):
        (broken / name).write_bytes((folder / name).read_bytes())
    (broken / "model.json").write_text("{not a model")
    with pytest.raises(Exception):  # noqa: B017 - xgboost's own error type
        register(server_conn, "churn-half", broken, metrics, job="job-b")
    assert client.search_model_versions("name = 'churn-half'") == []
    runs = client.search_runs([MlflowHook(server_conn).experiment_id()], "tags.`trainkit.job_id` = 'job-b'")
    assert [r.info.status for r in runs] == ["FAILED"]


def test_version_trigger_waits_for_tag_and_alias(server_conn, model_folders):
    from airflow_trainkit.triggers.registry import ModelVersionTrigger

    folder, metrics = model_folders["good"]
    first = register(server_conn, "churn-watch", folder, metrics)
    client = MlflowHook(server_conn).get_client()

    async def scenario() -> Any:
        trigger = ModelVersionTrigger(
            "churn-watch",
            tag={"stage": "approved"},
            newer_than=0,
            mlflow_conn_id=server_conn,
            poll_interval=0.2,
        )
        task = asyncio.ensure_future(trigger.run().__anext__())
        await asyncio.sleep(1.0)
        assert not task.done()
        await asyncio.to_thread(
            client.set_model_version_tag, "churn-watch", first["version"], "stage", "approved"
        )
        return await task

    event = asyncio.run(scenario())
    assert event.payload["status"] == "found" and event.payload["version"]["version"] == first["version"]

    # Alias newer than the current one: not yet; then a new version gets the alias.
    trigger = ModelVersionTrigger(
        "churn-watch",
        alias="challenger",
        newer_than=int(first["version"]),
        mlflow_conn_id=server_conn,
        poll_interval=0.2,
    )

    async def second() -> Any:
        task = asyncio.ensure_future(trigger.run().__anext__())
        await asyncio.sleep(1.0)
        assert not task.done()
        await asyncio.to_thread(register, server_conn, "churn-watch", folder, metrics)
        return await task

    event = asyncio.run(second())
    assert int(event.payload["version"]["version"]) == int(first["version"]) + 1


def test_sensor_defers_and_completes(server_conn, model_folders):
    from airflow_trainkit._compat import TaskDeferred
    from airflow_trainkit.sensors.registry import ModelVersionSensor
    from airflow_trainkit.triggers.registry import ModelVersionTrigger

    name = f"sensed-{uuid.uuid4().hex[:8]}"  # its own model: the test passes alone and in any order
    folder, metrics = model_folders["good"]
    version = register(server_conn, name, folder, metrics)["version"]
    MlflowHook(server_conn).get_client().set_model_version_tag(name, version, "stage", "approved")
    sensor = ModelVersionSensor(
        task_id="wait", model_name=name, alias="champion", mlflow_conn_id=server_conn, poke_interval=1
    )
    with pytest.raises(TaskDeferred) as deferred:
        sensor.execute(_context(task_id="wait"))
    trigger = deferred.value.trigger
    assert isinstance(trigger, ModelVersionTrigger)
    classpath, kwargs = trigger.serialize()
    assert (
        classpath == "airflow_trainkit.triggers.registry.ModelVersionTrigger"
        and kwargs["alias"] == "champion"
    )
    found = {"model_name": name, "version": "3", "model_uri": f"models:/{name}/3"}
    returned = sensor.execute_complete(_context(task_id="wait"), {"status": "found", "version": found})
    assert returned == {**found, "alias": None, "tag": None, "run_id": None, "source": None}
    poking = ModelVersionSensor(
        task_id="poke",
        model_name=name,
        tag={"stage": "approved"},
        mlflow_conn_id=server_conn,
        deferrable=False,
    )
    assert poking.poke(_context(task_id="poke")).xcom_value["version"] == version
    with pytest.raises(ValueError, match="exactly one of alias or tag"):
        ModelVersionSensor(task_id="x", model_name="m", mlflow_conn_id=server_conn).execute(
            _context(task_id="x")
        )
