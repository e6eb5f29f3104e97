"""The tune-and-register example under dag.test(): a search of real trainer runs, its report and
MLflow runs, and the best trial registered and promoted."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

EXAMPLES = Path(__file__).resolve().parents[2] / "example_dags"


@pytest.mark.integration
def test_the_best_trial_is_registered_with_the_search_in_mlflow(airflow_db, tmp_path, monkeypatch):
    from airflow.dag_processing.dagbag import DagBag

    from airflow_trainkit.hooks.mlflow import MlflowHook
    from airflow_trainkit.tuning.report import SEARCH_TAG

    monkeypatch.setenv("TRAINKIT_HOME", str(tmp_path / "trainkit"))
    monkeypatch.delenv("TRAINKIT_ONPREM_ROOT", raising=False)
    run = DagBag(dag_folder=str(EXAMPLES)).dags["example_tune_and_register"].test()
    states = {ti.task_id: str(ti.state) for ti in run.get_task_instances()}
    assert str(run.state).endswith("success"), states
    tuned = next(ti for ti in run.get_task_instances() if ti.task_id == "tune").xcom_pull(task_ids="tune")

    trials = tuned["trials"]
    assert trials["total"] == 8 and trials["complete"] >= 4 and trials["failed"] == 0
    assert tuned["money"]["budget"] == 0.5 and 0 < tuned["money"]["spent"] <= 0.5
    assert tuned["objective"]["value"] == tuned["metrics"]["auc_roc"] > 0.8
    report = Path(tuned["report_uri"])
    rows = json.loads((report / "trials.json").read_text())
    assert [r["number"] for r in rows] == list(range(8))
    assert max(r["value"] for r in rows if r["state"] == "complete") == tuned["objective"]["value"]
    assert {"optimization_history.png", "param_importances.png"} <= {p.name for p in report.iterdir()}

    # One parent run for the search, one child per trial; the registered version is the best trial's.
    client = MlflowHook().get_client()
    experiment = client.get_experiment_by_name(MlflowHook().settings().experiment)
    runs = client.search_runs([experiment.experiment_id], filter_string=f"tags.`{SEARCH_TAG}` LIKE '%tune%'")
    parent = next(r for r in runs if r.info.run_id == tuned["mlflow_run_id"])
    children = [r for r in runs if r.data.tags.get("mlflow.parentRunId") == parent.info.run_id]
    assert len(children) == 8 and parent.info.status == "FINISHED"
    assert parent.data.metrics["best_auc_roc"] == pytest.approx(tuned["objective"]["value"])
    best = next(c for c in children if c.data.tags["trainkit.trial"] == str(tuned["best_trial"]))
    assert best.data.tags["trainkit.job_id"] == tuned["job_id"] and best.data.metrics["cost"] > 0
    artifacts = {a.path for a in client.list_artifacts(parent.info.run_id)}
    assert {"result.json", "trials.json", "optimization_history.png"} <= artifacts
    version = client.get_model_version("churn-tuned", "1")
    assert version.tags["trainkit.job_id"] == tuned["job_id"]
