"""Registration and promotion on the embedded sqlite registry, the default without a connection."""

from __future__ import annotations

import pytest
from model_output import FEATURES, training_result
from trainkit_testing import make_context

from airflow_trainkit.operators.registry import PromoteModelOperator, RegisterModelOperator

pytestmark = pytest.mark.integration


def test_embedded_register_promote_load(model_folders, monkeypatch, tmp_path):
    import mlflow

    from airflow_trainkit.demo.data import make_churn_frame

    monkeypatch.setenv("TRAINKIT_HOME", str(tmp_path))
    monkeypatch.delenv("AIRFLOW_CONN_TRAINKIT_MLFLOW_DEFAULT", raising=False)
    # MLflow's process-wide default store is ./mlflow.db (and ./mlruns): whatever reaches it instead
    # of our client's store (a models:/ version source did) writes into the current folder.
    workdir = tmp_path / "cwd"
    workdir.mkdir()
    monkeypatch.chdir(workdir)
    folder, metrics = model_folders["good"]
    registered = RegisterModelOperator(
        task_id="register", model_name="churn", training_result=training_result(folder, metrics, "job-e")
    ).execute(make_context(task_id="register"))
    assert registered["tracking_uri"] == f"sqlite:///{tmp_path / 'mlflow' / 'mlflow.db'}"
    assert registered["source"].startswith((tmp_path / "mlflow" / "artifacts").as_uri())
    decision = PromoteModelOperator(
        task_id="promote",
        model_name="churn",
        thresholds={"auc_roc": 0.7, "f1_weighted": 0.7, "log_loss": 0.45},
    ).execute(make_context(task_id="promote"))
    assert decision["passed"]
    assert list(workdir.iterdir()) == []
    previous = mlflow.get_tracking_uri()
    mlflow.set_tracking_uri(registered["tracking_uri"])
    try:
        model = mlflow.pyfunc.load_model("models:/churn@champion")
    finally:
        mlflow.set_tracking_uri(previous)
    assert len(model.predict(make_churn_frame(5, seed=1)[FEATURES])) == 5
