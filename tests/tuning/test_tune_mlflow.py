"""The search's MLflow runs: one parent per search, a child per trial, logged once."""

from __future__ import annotations

import pytest

from airflow_trainkit.tuning.records import SearchRecord, TrialRecord, TrialState
from airflow_trainkit.tuning.report import SEARCH_TAG, log_to_mlflow, trial_rows
from airflow_trainkit.tuning.settings import TuneSettings

pytestmark = pytest.mark.integration


def record() -> SearchRecord:
    trials = [
        TrialRecord(
            0,
            {"lr": 0.1},
            "onprem",
            TrialState.COMPLETE,
            job={"job_name": "j0"},
            value=0.81,
            cost={"amount": 0.02, "currency": "USD"},
            intermediate={"5": 0.6, "10": 0.5},
        ),
        TrialRecord(
            1,
            {"lr": 0.001},
            "onprem",
            TrialState.PRUNED,
            job={"job_name": "j1"},
            cost={"amount": 0.01, "currency": "USD"},
            message="pruned at round 10",
        ),
        TrialRecord(
            2, {"lr": 0.5}, "onprem", TrialState.FAILED, job={"job_name": "j2"}, message="exit code 1"
        ),
    ]
    return SearchRecord(generation=1, backend="onprem", trial_quote=0.05, currency="USD", trials=trials)


RESULT = {
    "job_id": "j0",
    "params": {"lr": 0.1},
    "objective": {"name": "auc_roc", "direction": "maximize", "value": 0.81},
    "money": {"spent": 0.03, "budget": 1.0, "trial_quote": 0.05, "currency": "USD"},
    "trials": {"complete": 1, "pruned": 1, "failed": 1, "total": 3},
    "search": {"generation": 1, "backend": "onprem", "sampler": "tpe"},
}


def test_a_parent_run_with_a_child_per_trial_logged_once_per_search(tmp_path, monkeypatch):
    from airflow_trainkit.hooks.mlflow import MlflowHook

    monkeypatch.setenv("TRAINKIT_HOME", str(tmp_path / "trainkit"))
    hook = MlflowHook()
    client, experiment = hook.get_client(), hook.experiment_id("tuning-test")
    settings = TuneSettings.parse(objective="auc_roc", n_trials=3, pruning={"metric": "validation-logloss"})
    files = {"result.json": b"{}\n"}

    def log() -> str:
        return log_to_mlflow(
            client,
            experiment,
            search_id="d/r/tune/-1/s1",
            run_name="tune-s1",
            record=record(),
            settings=settings,
            result=RESULT,
            files=files,
        )

    # A crash while logging left an unfinished parent: it is marked FAILED and the search logged anew.
    crashed = client.create_run(
        experiment, run_name="tune-s1", tags={SEARCH_TAG: "d/r/tune/-1/s1"}
    ).info.run_id
    parent = log()
    assert client.get_run(crashed).info.status == "FAILED"
    assert log() == parent  # a retry after the search was logged reuses it
    runs = client.search_runs([experiment], filter_string=f"tags.`{SEARCH_TAG}` = 'd/r/tune/-1/s1'")
    children = {
        r.data.tags["trainkit.trial"]: r for r in runs if r.data.tags.get("mlflow.parentRunId") == parent
    }
    assert sorted(children) == ["0", "1", "2"]
    assert [children[n].info.status for n in "012"] == ["FINISHED", "KILLED", "FAILED"]
    assert children["0"].data.metrics == {"auc_roc": 0.81, "cost": 0.02, "validation-logloss": 0.5}
    assert children["1"].data.tags["trainkit.message"] == "pruned at round 10"
    history = client.get_metric_history(children["0"].info.run_id, "validation-logloss")
    assert [(m.step, m.value) for m in history] == [(5, 0.6), (10, 0.5)]
    best = client.get_run(parent)
    assert best.data.metrics["best_auc_roc"] == 0.81 and best.data.metrics["trials_pruned"] == 1
    assert best.data.params["best.lr"] == "0.1" and best.info.status == "FINISHED"
    assert [a.path for a in client.list_artifacts(parent)] == ["result.json"]


def test_trial_rows_say_what_each_trial_did():
    rows = trial_rows(record())
    assert [(r["number"], r["state"], r["job_id"], r["cost"]) for r in rows] == [
        (0, "complete", "j0", 0.02),
        (1, "pruned", "j1", 0.01),
        (2, "failed", "j2", None),
    ]
