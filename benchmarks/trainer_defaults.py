"""The built-in XGBoost trainer with its defaults on small tabular problems, beside simple baselines.

Every problem is local: generated, or bundled with scikit-learn (no download). Each is split
``--splits`` times (80 % train, 20 % validation, stratified for classification, split seeds
0, 1, ...); the trainer trains on the train rows and early-stops and reports on the validation rows,
through its Python entry point (``airflow_trainkit.trainers.xgboost.train``), exactly as a job runs
it. The baselines fit the same train rows: a standardised logistic regression, a linear
regression, and predicting the training mean (regression). ``demo`` is the demo DAG's own run:
its table (5,000 rows, seed 7) and the trainer's own split.

Columns: mean over the splits; ``gate`` counts the splits whose model passes the default promotion
gate (``registry.gate.DEFAULT_THRESHOLDS``); ``vs linear`` is the trainer's RMSE over the linear
model's (1.05 = 5 % worse). Runs against whichever ``airflow_trainkit`` is importable, so
``PYTHONPATH=<an older checkout> python benchmarks/trainer_defaults.py`` measures that one.

Usage: ``python benchmarks/trainer_defaults.py [--splits N] [--problems a,b]``.
"""

from __future__ import annotations

import argparse
import logging
import math
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from sklearn import datasets
from sklearn import metrics as skm
from sklearn.linear_model import LinearRegression, LogisticRegression
from sklearn.model_selection import train_test_split
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

from airflow_trainkit.demo.data import make_churn_frame
from airflow_trainkit.registry.gate import DEFAULT_THRESHOLDS
from airflow_trainkit.trainers.xgboost import XGBoostConfig, train

TARGET = "target"


def _frame(x: Any, y: Any) -> pd.DataFrame:
    return pd.DataFrame(np.asarray(x), columns=[f"f{i}" for i in range(np.asarray(x).shape[1])]).assign(
        **{TARGET: y}
    )


def problems() -> Iterator[tuple[str, pd.DataFrame, str, dict[str, Any]]]:
    """``(name, frame, task, extra hyperparameters)``."""
    x, y = datasets.make_classification(
        n_samples=500, n_features=8, n_informative=4, class_sep=2.0, random_state=2
    )
    yield "near_separable", _frame(x, y), "classification", {}
    x, y = datasets.load_breast_cancer(return_X_y=True)
    yield "breast_cancer", _frame(x, y), "classification", {}
    x, y = datasets.make_classification(
        n_samples=3000, n_features=12, n_informative=6, weights=[0.95], flip_y=0.01, random_state=1
    )
    yield "imbalanced_5pct", _frame(x, y), "classification", {}
    yield "imbalanced_5pct_spw", _frame(x, y), "classification", {"scale_pos_weight": "auto"}
    x, y = datasets.load_diabetes(return_X_y=True)
    yield "diabetes_regression", _frame(x, y), "regression", {}


def _baselines(train_rows: pd.DataFrame, valid_rows: pd.DataFrame, task: str) -> dict[str, float]:
    features = [c for c in train_rows.columns if c != TARGET]
    if task == "regression":
        linear = make_pipeline(StandardScaler(), LinearRegression()).fit(
            train_rows[features], train_rows[TARGET]
        )
        truth = valid_rows[TARGET]
        mean = np.full(len(valid_rows), train_rows[TARGET].mean())
        return {
            "linear_rmse": math.sqrt(skm.mean_squared_error(truth, linear.predict(valid_rows[features]))),
            "mean_rmse": math.sqrt(skm.mean_squared_error(truth, mean)),
        }
    logistic = make_pipeline(StandardScaler(), LogisticRegression(max_iter=5000)).fit(
        train_rows[features], train_rows[TARGET]
    )
    scores = logistic.predict_proba(valid_rows[features])[:, 1]
    return {
        "linear_auc": skm.roc_auc_score(valid_rows[TARGET], scores),
        "linear_log_loss": skm.log_loss(valid_rows[TARGET], scores),
    }


def _passes_gate(metrics: dict[str, Any]) -> bool:
    limits = DEFAULT_THRESHOLDS["classification"]
    return (
        metrics["auc_roc"] >= limits["auc_roc"]
        and metrics["f1_weighted"] >= limits["f1_weighted"]
        and metrics["log_loss"] <= limits["log_loss"]
    )


def run_split(frame: pd.DataFrame, task: str, hps: dict[str, Any], seed: int, folder: Path) -> dict:
    stratify = frame[TARGET] if task == "classification" else None
    train_rows, valid_rows = train_test_split(frame, test_size=0.2, random_state=seed, stratify=stratify)
    train_rows.to_parquet(folder / "train.parquet")
    valid_rows.to_parquet(folder / "valid.parquet")
    config = XGBoostConfig(
        train_uri=str(folder / "train.parquet"),
        validation_uri=str(folder / "valid.parquet"),
        output_uri=str(folder / "out"),
        target=TARGET,
        task=task,
        seed=seed,
        **hps,
    )
    metrics = dict(train(config)["metrics"])
    metrics.update(_baselines(train_rows, valid_rows, task))
    if task == "regression":
        metrics["vs_linear"] = metrics["rmse"] / metrics["linear_rmse"]
    else:
        metrics["gate"] = _passes_gate(metrics)
    return metrics


def run_demo(folder: Path) -> dict:
    """The demo DAG's training run: its table and hyperparameters, the trainer's own split."""
    frame = make_churn_frame(5000, seed=7)
    frame.to_parquet(folder / "churn.parquet", index=False)
    config = XGBoostConfig(
        train_uri=str(folder / "churn.parquet"),
        output_uri=str(folder / "out"),
        target="churned",
        drop_columns=["customer_id"],
    )
    metrics = dict(train(config)["metrics"])
    metrics["gate"] = _passes_gate(metrics)
    return metrics


COLUMNS = {
    "classification": [
        ("auc_roc", "AUC"),
        ("log_loss", "log-loss"),
        ("f1_weighted", "F1 w."),
        ("linear_auc", "AUC linear"),
        ("linear_log_loss", "log-loss linear"),
        ("num_boosted_rounds", "trees"),
    ],
    "regression": [
        ("rmse", "RMSE"),
        ("linear_rmse", "RMSE linear"),
        ("mean_rmse", "RMSE mean"),
        ("vs_linear", "vs linear"),
        ("num_boosted_rounds", "trees"),
    ],
}


def _row(name: str, task: str, runs: list[dict]) -> str:
    cells = [name, str(len(runs))]
    for key, _ in COLUMNS[task]:
        values = [r[key] for r in runs if r.get(key) is not None]
        cells.append(f"{np.mean(values):.4g}" if values else "-")
    if task == "classification":
        cells.append(f"{sum(r['gate'] for r in runs)}/{len(runs)}")
        cells.append(f"{max(r['log_loss'] for r in runs):.4g}")
    else:
        cells.append(f"{max(r['vs_linear'] for r in runs):.4g}")
    return "| " + " | ".join(cells) + " |"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    parser.add_argument("--splits", type=int, default=10)
    parser.add_argument("--problems", help="comma-separated names (default: all, and demo)")
    args = parser.parse_args()
    chosen = set(args.problems.split(",")) if args.problems else None
    logging.disable(logging.WARNING)  # the trainer's per-round log
    results: dict[str, tuple[str, list[dict]]] = {}
    for name, frame, task, hps in problems():
        if chosen and name not in chosen:
            continue
        runs = []
        for seed in range(args.splits):
            with tempfile.TemporaryDirectory() as folder:
                runs.append(run_split(frame, task, hps, seed, Path(folder)))
        results[name] = (task, runs)
    if not chosen or "demo" in chosen:
        with tempfile.TemporaryDirectory() as folder:
            results["demo"] = ("classification", [run_demo(Path(folder))])
    for task in ("classification", "regression"):
        rows = [_row(name, task, runs) for name, (t, runs) in results.items() if t == task]
        if not rows:
            continue
        extra = ["default gate", "worst log-loss"] if task == "classification" else ["worst vs linear"]
        header = ["problem", "splits", *(title for _, title in COLUMNS[task]), *extra]
        print("| " + " | ".join(header) + " |")
        print("|" + "---|" * len(header))
        print("\n".join(rows))
        print()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
