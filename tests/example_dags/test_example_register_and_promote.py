"""The register-and-promote example: the champion it leaves behind loads and predicts."""

from __future__ import annotations

from pathlib import Path

import pytest

EXAMPLES = Path(__file__).resolve().parents[2] / "example_dags"


@pytest.mark.integration
def test_the_champion_it_promotes_loads_and_predicts(airflow_db, tmp_path, monkeypatch):
    import mlflow
    from airflow.dag_processing.dagbag import DagBag
    from sklearn.metrics import roc_auc_score

    from airflow_trainkit.demo.data import make_churn_frame
    from airflow_trainkit.hooks.mlflow import MlflowHook

    monkeypatch.setenv("TRAINKIT_HOME", str(tmp_path / "trainkit"))
    monkeypatch.delenv("TRAINKIT_ONPREM_ROOT", raising=False)
    run = DagBag(dag_folder=str(EXAMPLES)).dags["example_register_and_promote"].test()
    states = {ti.task_id: str(ti.state) for ti in run.get_task_instances()}
    assert str(run.state).endswith("success"), states

    hook = MlflowHook()
    assert str(hook.get_client().get_model_version_by_alias("churn-example", "champion").version) == "1"
    mlflow.set_tracking_uri(hook.settings().tracking_uri)
    model = mlflow.pyfunc.load_model("models:/churn-example@champion")
    fresh = make_churn_frame(500, seed=99)  # rows the model never saw, categorical columns as strings
    scores = model.predict(fresh.drop(columns=["customer_id", "churned"]))
    assert roc_auc_score(fresh["churned"], scores) > 0.8
