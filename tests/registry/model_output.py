"""Builds a real built-in-trainer output folder (model.json, model_meta.json, metrics.json) for tests."""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from pathlib import Path

FEATURES = ["tenure_months", "monthly_charges", "support_calls", "data_usage_gb", "age"]


def train_output(
    folder: Path, *, seed: int = 7, rounds: int = 30, rows: int = 2000, features: list[str] | None = None
) -> dict[str, Any]:
    """Train a small XGBoost classifier on the churn frame's numeric columns; return its metrics."""
    import numpy as np
    import xgboost
    from sklearn.metrics import f1_score, log_loss, roc_auc_score

    from airflow_trainkit.demo.data import make_churn_frame

    features = features or FEATURES
    frame = make_churn_frame(rows, seed=seed)
    train, test = frame.iloc[: rows * 3 // 4], frame.iloc[rows * 3 // 4 :]
    dtrain = xgboost.DMatrix(train[features], label=train["churned"])
    dtest = xgboost.DMatrix(test[features], label=test["churned"])
    booster = xgboost.train(
        {"objective": "binary:logistic", "max_depth": 3, "eta": 0.1, "seed": seed}, dtrain, rounds
    )
    proba = booster.predict(dtest)
    metrics = {
        "auc_roc": float(roc_auc_score(test["churned"], proba)),
        "f1_weighted": float(f1_score(test["churned"], (proba > 0.5).astype(int), average="weighted")),
        "log_loss": float(log_loss(test["churned"], np.clip(proba, 1e-7, 1 - 1e-7))),
        "n_train": len(train),
    }
    folder.mkdir(parents=True, exist_ok=True)
    booster.save_model(str(folder / "model.json"))
    meta = {
        "task": "classification",
        "target": "churned",
        "features": features,
        "feature_types": ["float"] * len(features),
    }
    (folder / "model_meta.json").write_text(json.dumps(meta))
    (folder / "metrics.json").write_text(json.dumps(metrics))
    return metrics


def training_result(folder: Path, metrics: dict[str, Any] | None, job_id: str) -> dict[str, Any]:
    """The dict TrainModelOperator returns, for a finished on-prem job."""
    return {
        "backend": "onprem",
        "job_id": job_id,
        "attempt": 1,
        "state": "SUCCEEDED",
        "phase": "succeeded",
        "started_at": "2026-01-01T00:00:00+00:00",
        "ended_at": "2026-01-01T00:01:00+00:00",
        "billable_seconds": 60,
        "instance_type": "local",
        "instance_count": 1,
        "spot": False,
        "accelerator": None,
        "output_uri": str(folder),
        "metrics": metrics,
        "console_url": f"file://{folder}",
        "details": {},
        "cost": {"amount": 0.01, "currency": "USD"},
    }
