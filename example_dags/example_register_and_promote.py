"""Register a trained churn model in MLflow 3 and promote it past the quality gate.

Needs the ``mlflow`` and ``xgboost`` extras, nothing else: without a ``trainkit_mlflow_default``
connection it uses the embedded registry (sqlite + artifacts under ``$AIRFLOW_HOME/trainkit/mlflow``).

The built-in trainer (``python -m airflow_trainkit.trainers.xgboost``, run by
``TrainModelOperator(backend="onprem", ...)``) is not on this branch yet, so the first task here
trains a small real XGBoost model itself and returns the same result dict TrainModelOperator
returns. Once the trainer lands, replace ``train`` with the TrainModelOperator shown in
docs/registry.md; the rest of the DAG stays as it is.

The demo model does not meet the team guide's strict default log-loss (<= 0.25; churn at ~16 %
positives gives about 0.35), so this DAG sets thresholds that it meets.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from airflow.sdk import dag, task

from airflow_trainkit.operators.registry import PromoteModelOperator, RegisterModelOperator

MODEL_NAME = "churn-example"
# What the demo-sized model meets; the defaults (the guide's checklist) stay stricter.
DEMO_THRESHOLDS = {"auc_roc": 0.70, "f1_weighted": 0.75, "log_loss": 0.45}


@dag(schedule=None, start_date=datetime(2026, 1, 1), catchup=False, tags=["trainkit", "example"])
def example_register_and_promote() -> None:
    @task
    def train(**context: Any) -> dict[str, Any]:
        """Stand-in for TrainModelOperator until the built-in trainer is on main."""
        import json
        import time

        import numpy as np  # heavy: only when the task runs
        import xgboost
        from sklearn.metrics import f1_score, log_loss, roc_auc_score

        from airflow_trainkit.demo.data import make_churn_frame
        from airflow_trainkit.home import artifacts_dir
        from airflow_trainkit.storage import write_folder_atomic

        started = time.time()
        frame = make_churn_frame(4000, seed=11)
        features = ["tenure_months", "monthly_charges", "support_calls", "data_usage_gb", "age"]
        for contract in ("month-to-month", "one-year", "two-year"):
            name = f"contract_{contract.replace('-', '_')}"
            frame[name] = (frame["contract"] == contract).astype(float)
            features.append(name)
        train_rows, test_rows = frame.iloc[:3000], frame.iloc[3000:]
        booster = xgboost.train(
            {"objective": "binary:logistic", "max_depth": 3, "eta": 0.1, "seed": 11},
            xgboost.DMatrix(train_rows[features], label=train_rows["churned"]),
            num_boost_round=60,
        )
        proba = booster.predict(xgboost.DMatrix(test_rows[features]))
        labels = test_rows["churned"]
        metrics = {
            "auc_roc": float(roc_auc_score(labels, proba)),
            "f1_weighted": float(f1_score(labels, (proba > 0.5).astype(int), average="weighted")),
            "log_loss": float(log_loss(labels, np.clip(proba, 1e-7, 1 - 1e-7))),
            "n_train": len(train_rows),
        }
        run_id = context["run_id"]
        safe_run = "".join(c if c.isalnum() or c in "-_" else "_" for c in run_id)
        output = artifacts_dir() / "example-register" / safe_run
        meta = {
            "task": "classification",
            "target": "churned",
            "features": features,
            "feature_types": ["float"] * len(features),
        }
        write_folder_atomic(
            str(output),
            {
                "model.json": bytes(booster.save_raw("json")),
                "model_meta.json": json.dumps(meta),
                "metrics.json": json.dumps(metrics),
            },
        )
        ended = time.time()
        return {
            "backend": "onprem",
            "job_id": f"example-{safe_run}",
            "attempt": 1,
            "state": "SUCCEEDED",
            "phase": "succeeded",
            "started_at": started,
            "ended_at": ended,
            "billable_seconds": round(ended - started, 1),
            "instance_type": "local",
            "instance_count": 1,
            "spot": False,
            "accelerator": None,
            "output_uri": str(output),
            "metrics": metrics,
            "console_url": None,
            "details": {},
            "cost": None,
        }

    # [START register_and_promote]
    register = RegisterModelOperator(
        task_id="register",
        model_name=MODEL_NAME,
        training_result=train(),  # with TrainModelOperator: training_result=train.output
    )
    promote = PromoteModelOperator(
        task_id="promote",
        model_name=MODEL_NAME,
        thresholds=DEMO_THRESHOLDS,
        compare_to="champion",
        on_reject="skip",
    )
    # [END register_and_promote]

    @task
    def summary(registered: dict[str, Any], decision: dict[str, Any]) -> str:
        uri = registered["tracking_uri"]
        ui = f"mlflow ui --backend-store-uri {uri}" if uri.startswith("sqlite") else uri
        text = (
            f"{MODEL_NAME} version {decision['version']} is @champion ({decision['decision']}; "
            f"previous champion: {decision['previous_champion']}). Load it with "
            f"mlflow.pyfunc.load_model('models:/{MODEL_NAME}@champion'). Open the MLflow UI: {ui}"
        )
        print(text)
        return text

    register >> promote
    summary(register.output, promote.output)


example_dag = example_register_and_promote()

if __name__ == "__main__":
    example_dag.test()
