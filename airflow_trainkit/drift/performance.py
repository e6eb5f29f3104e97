"""Performance (concept) drift: a metric on label and prediction, in each window, and its drop."""

from __future__ import annotations

import math
from typing import TYPE_CHECKING, Any

from airflow_trainkit.drift.results import rounded

if TYPE_CHECKING:
    import numpy as np

    from airflow_trainkit.drift.config import DriftConfig
    from airflow_trainkit.drift.profile import PreparedColumn

# Each metric DriftConfig.performance_metric accepts, and whether higher is better.
METRICS = {"accuracy": True, "f1": True, "roc_auc": True, "rmse": False, "mae": False}


def performance(
    reference: dict[str, PreparedColumn], current: dict[str, PreparedColumn], config: DriftConfig
) -> dict[str, Any]:
    """The metric in each window (label and prediction paired row by row) and whether it dropped
    by more than ``config.max_performance_drop``."""
    metric = config.performance_metric or "accuracy"
    target, prediction = config.target or "", config.prediction or ""
    ref_value, cur_value = (
        metric_value(metric, _aligned(window, target), _aligned(window, prediction))
        for window in (reference, current)
    )
    change = (ref_value - cur_value) if METRICS[metric] else (cur_value - ref_value)
    # From a reference metric of 0 (a perfect rmse or mae) any worsening is an unbounded relative
    # drop: reported as null (JSON has no infinity) and counted as drift.
    drop = change / abs(ref_value) if ref_value else (math.inf if change > 0 else 0.0)
    return {
        "metric": metric,
        "reference": rounded(ref_value),
        "current": rounded(cur_value),
        "relative_drop": rounded(drop),
        "max_drop": config.max_performance_drop,
        "drifted": bool(drop > config.max_performance_drop),
    }


def _aligned(window: dict[str, PreparedColumn], column: str) -> np.ndarray:
    """The column's evaluated rows in table order, which pair label and prediction row by row."""
    rows = window[column].aligned
    if rows is None:
        raise ValueError(f"column {column!r} was prepared without its rows in table order (aligned=True)")
    return rows


def metric_value(metric: str, y_true: np.ndarray, y_pred: np.ndarray) -> float:
    """A performance metric on the rows where both label and prediction are present."""
    import numpy as np  # heavy: only when data is evaluated
    import pandas as pd

    t = pd.to_numeric(pd.Series(y_true), errors="coerce").to_numpy(dtype=float)
    p = pd.to_numeric(pd.Series(y_pred), errors="coerce").to_numpy(dtype=float)
    keep = np.isfinite(t) & np.isfinite(p)
    t, p = t[keep], p[keep]
    if t.size == 0:
        raise ValueError("no row has both a label and a prediction: performance cannot be measured")
    if metric == "accuracy":
        return float(np.mean(t == np.round(p)))
    if metric == "f1":
        hard = np.round(p)
        tp = float(np.sum((hard == 1) & (t == 1)))
        denom = float(np.sum(hard == 1) + np.sum(t == 1))
        return 2 * tp / denom if denom else 0.0
    if metric == "roc_auc":
        from scipy.stats import rankdata  # heavy: only when this metric is asked for

        pos = t == 1
        n_pos, n_neg = int(pos.sum()), int((~pos).sum())
        if not n_pos or not n_neg:
            raise ValueError("roc_auc needs both classes among the labels")
        ranks = rankdata(p)
        return float((ranks[pos].sum() - n_pos * (n_pos + 1) / 2) / (n_pos * n_neg))
    if metric == "rmse":
        return float(np.sqrt(np.mean((t - p) ** 2)))
    if metric == "mae":
        return float(np.mean(np.abs(t - p)))
    raise ValueError(f"performance_metric must be one of {sorted(METRICS)}, got {metric!r}")
