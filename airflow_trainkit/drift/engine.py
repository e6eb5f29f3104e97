"""Per-column drift evaluation of a current window against a reference window, and the decisions.

Each column is read, prepared and tested on its own and then dropped (two worker threads: reading
Parquet and numpy's sort and search release the GIL), so memory holds a few columns, never the
table. p-values are corrected for testing many columns at once, and an effect-size floor keeps
large tables from flagging differences too small to matter.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np

from airflow_trainkit.drift import methods
from airflow_trainkit.drift.profile import ColumnProfile, PreparedColumn, Window
from airflow_trainkit.drift.tables import Table, as_table

if TYPE_CHECKING:
    import pandas as pd

log = logging.getLogger(__name__)

CORRECTIONS = ("bh", "bonferroni", "none")
DEFAULT_METHOD = {"numeric": "ks", "categorical": "chisquare"}
# KS D and the chi-square total variation distance: at least 2 % of the distribution moved.
DEFAULT_MIN_EFFECT = 0.02
DEFAULT_MAX_ROWS = 5_000_000
METRICS = {"accuracy": True, "f1": True, "roc_auc": True, "rmse": False, "mae": False}
MAX_SUMMARY_COLUMNS = 100


@dataclass
class DriftConfig:
    """What to compare and how to decide; see docs/drift.md.

    :param columns: feature columns to test; all columns common to both windows by default
        (except ``target`` and ``prediction``).
    :param method: one method for every column it can test, or ``{column: method}``; defaults are
        ``ks`` for numeric and ``chisquare`` for categorical columns.
    :param threshold: one threshold for every column, or ``{column: threshold}``; defaults are the
        method's (0.05 for p-values, 0.1 for distances), as in Evidently.
    :param drift_share: the dataset drifts when at least this share of feature columns drift.
    :param correction: multiple-testing correction of p-values across the columns: ``bh``
        (Benjamini-Hochberg, the default), ``bonferroni`` or ``none`` (Evidently's own behaviour).
    :param min_effect: a p-value method flags a column only if its effect size (KS D, or the total
        variation distance of category shares) reaches this; 0 disables.
    :param target: the label column, tested for label drift.
    :param prediction: the prediction column, tested for prediction drift.
    :param performance_metric: with target and prediction: ``accuracy``, ``f1``, ``roc_auc``,
        ``rmse`` or ``mae``.
    :param max_performance_drop: relative drop of the metric against the reference that counts as
        performance (concept) drift.
    :param max_rows: windows longer than this are sampled to this many rows with ``seed``.
    """

    columns: list[str] | None = None
    method: str | Mapping[str, str] | None = None
    threshold: float | Mapping[str, float] | None = None
    drift_share: float = 0.5
    correction: str = "bh"
    min_effect: float = DEFAULT_MIN_EFFECT
    target: str | None = None
    prediction: str | None = None
    performance_metric: str | None = None
    max_performance_drop: float = 0.05
    max_rows: int | None = DEFAULT_MAX_ROWS
    seed: int = 0

    def validate(self) -> None:
        """Raise ``ValueError`` naming the first bad field."""
        if not 0 < self.drift_share <= 1:
            raise ValueError(f"drift_share must be in (0, 1], got {self.drift_share!r}")
        if self.correction not in CORRECTIONS:
            raise ValueError(f"correction must be one of {list(CORRECTIONS)}, got {self.correction!r}")
        if not 0 <= self.min_effect < 1:
            raise ValueError(f"min_effect must be in [0, 1), got {self.min_effect!r}")
        if self.max_rows is not None and (not isinstance(self.max_rows, int) or self.max_rows < 1000):
            raise ValueError(f"max_rows must be an integer of at least 1000 or None, got {self.max_rows!r}")
        if self.columns is not None and (isinstance(self.columns, str) or not self.columns):
            raise ValueError(f"columns must be a non-empty list of column names, got {self.columns!r}")
        methods_given = self.method.values() if isinstance(self.method, Mapping) else [self.method]
        for name in methods_given:
            if name is not None and name not in methods.METHODS:
                raise ValueError(f"method must be one of {sorted(methods.METHODS)}, got {name!r}")
        thresholds = self.threshold.values() if isinstance(self.threshold, Mapping) else [self.threshold]
        for value in thresholds:
            if value is not None and (
                isinstance(value, bool) or not isinstance(value, int | float) or value <= 0
            ):
                raise ValueError(f"threshold must be a positive number, got {value!r}")
        if self.performance_metric is not None and self.performance_metric not in METRICS:
            raise ValueError(
                f"performance_metric must be one of {sorted(METRICS)}, got {self.performance_metric!r}"
            )
        if self.performance_metric and not (self.target and self.prediction):
            raise ValueError("performance_metric needs both target and prediction to be named")
        if not 0 < self.max_performance_drop < 1:
            raise ValueError(f"max_performance_drop must be in (0, 1), got {self.max_performance_drop!r}")

    @property
    def aligned_columns(self) -> tuple[str, ...]:
        return tuple(c for c in (self.target, self.prediction) if c)


@dataclass
class ColumnResult:
    """The verdict on one column; ``value`` is the p-value or the distance the threshold applies to."""

    column: str
    role: str
    kind: str
    method: str
    statistic: float
    value: float
    threshold: float
    effect: float
    drifted: bool
    adjusted_p_value: float | None = None
    min_effect: float | None = None
    reference_rows: int = 0
    current_rows: int = 0

    def summary(self) -> dict[str, Any]:
        out: dict[str, Any] = {"column": self.column, "method": self.method, "statistic": _r(self.statistic)}
        kind = methods.METHODS[self.method].kind
        out["p_value" if kind == "p_value" else "distance"] = _r(self.value)
        if self.adjusted_p_value is not None:
            out["adjusted_p_value"] = _r(self.adjusted_p_value)
        out["threshold"] = self.threshold
        if self.min_effect:
            out["effect"] = _r(self.effect)
            out["min_effect"] = self.min_effect
        return out


@dataclass
class DriftResult:
    """The whole check; ``summary()`` is the small dict that goes to XCom."""

    columns: list[ColumnResult]
    reference_rows: int
    current_rows: int
    drift_share: float
    correction: str
    empty_current: bool = False
    reference_sampled_from: int | None = None
    current_sampled_from: int | None = None
    performance: dict[str, Any] | None = None
    report_uri: str | None = None
    notes: list[str] = field(default_factory=list)
    # The report's rows of every tested column, per window; not part of the summary.
    reference_sample: pd.DataFrame | None = field(default=None, repr=False)
    current_sample: pd.DataFrame | None = field(default=None, repr=False)

    @property
    def features(self) -> list[ColumnResult]:
        return [c for c in self.columns if c.role == "feature"]

    @property
    def drifted_features(self) -> list[ColumnResult]:
        return [c for c in self.features if c.drifted]

    @property
    def share_drifted(self) -> float:
        return len(self.drifted_features) / len(self.features) if self.features else 0.0

    @property
    def dataset_drift(self) -> bool:
        # Evidently's rule: share of drifted columns >= drift_share.
        return bool(self.features) and self.share_drifted >= self.drift_share

    def _role_drift(self, role: str) -> bool | None:
        found = [c for c in self.columns if c.role == role]
        return found[0].drifted if found else None

    @property
    def drift(self) -> bool:
        """Whether anything drifted: the dataset, the prediction, the label or the performance."""
        if self.empty_current:
            return False
        perf = bool(self.performance and self.performance["drifted"])
        return (
            self.dataset_drift
            or bool(self._role_drift("prediction"))
            or bool(self._role_drift("target"))
            or perf
        )

    def summary(self) -> dict[str, Any]:
        drifted = [c for c in self.columns if c.drifted]
        out: dict[str, Any] = {
            "drift": self.drift,
            "dataset_drift": self.dataset_drift,
            "share_drifted": round(self.share_drifted, 4),
            "drift_share": self.drift_share,
            "columns_checked": len(self.features),
            "drifted_count": len(self.drifted_features),
            "drifted_columns": [c.summary() for c in drifted[:MAX_SUMMARY_COLUMNS]],
            "prediction_drift": self._role_drift("prediction"),
            "label_drift": self._role_drift("target"),
            "performance": self.performance,
            "correction": self.correction,
            "rows": {
                "reference": self.reference_sampled_from or self.reference_rows,
                "current": self.current_sampled_from or self.current_rows,
                "reference_evaluated": self.reference_rows,
                "current_evaluated": self.current_rows,
            },
            "empty_current": self.empty_current,
            "report_uri": self.report_uri,
        }
        if len(drifted) > MAX_SUMMARY_COLUMNS:
            out["drifted_columns_truncated"] = len(drifted) - MAX_SUMMARY_COLUMNS
        return out

    def details(self) -> dict[str, Any]:
        """Every column's result, for the stored report (not for XCom)."""
        return {**self.summary(), "columns": [asdict(c) for c in self.columns], "notes": self.notes}


def select_columns(ref_cols: list[str], current_columns: list[str], config: DriftConfig) -> list[str]:
    """The feature columns to test; differing column sets are refused by name."""
    special = set(config.aligned_columns)
    for role, name in (("target", config.target), ("prediction", config.prediction)):
        if name:
            for window, cols in (("reference", ref_cols), ("current", current_columns)):
                if name not in cols:
                    raise ValueError(f"{role} column {name!r} is missing from the {window} window")
    if config.columns is not None:
        for name in config.columns:
            if name not in ref_cols:
                raise ValueError(f"column {name!r} is missing from the reference window")
            if name not in current_columns:
                raise ValueError(f"column {name!r} is missing from the current window")
        return [c for c in config.columns if c not in special]
    missing = [c for c in ref_cols if c not in current_columns]
    extra = [c for c in current_columns if c not in ref_cols]
    if missing or extra:
        parts = []
        if missing:
            parts.append(f"missing from the current window: {missing}")
        if extra:
            parts.append(f"not in the reference window: {extra}")
        raise ValueError(
            "reference and current have different columns (" + "; ".join(parts) + "); name the columns "
            "to compare with columns=[...]"
        )
    return [c for c in ref_cols if c not in special]


def method_for(column: str, kind: str, config: DriftConfig) -> tuple[str, float]:
    """The method and threshold for one column, refusing a method that cannot test its kind."""
    if isinstance(config.method, Mapping):
        chosen = config.method.get(column)
        explicit = chosen is not None
    else:
        chosen, explicit = config.method, config.method is not None
    name = chosen or DEFAULT_METHOD[kind]
    spec = methods.METHODS[name]
    if not (spec.numeric if kind == "numeric" else spec.categorical):
        if explicit and isinstance(config.method, Mapping):
            raise ValueError(f"method {name!r} cannot test {kind} column {column!r}")
        name = DEFAULT_METHOD[kind]  # a single method applies to the columns it can test
        spec = methods.METHODS[name]
    if isinstance(config.threshold, Mapping):
        threshold = config.threshold.get(column, spec.default_threshold)
    else:
        threshold = config.threshold if config.threshold is not None else spec.default_threshold
    return name, float(threshold)


def evaluate(
    reference: Window | Table | pd.DataFrame,
    current: Window | Table | pd.DataFrame,
    config: DriftConfig,
    *,
    workers: int | None = None,
) -> DriftResult:
    """Test every selected column of ``current`` against ``reference`` and decide.

    Tables and frames are evaluated with ``config.max_rows`` and ``config.seed``; pass a
    :class:`Window` to cache the reference or keep a different number of report rows.

    :raises ValueError: columns differ, a column is all null in one window, a numeric column holds
        strings; the message names the column.
    """
    config.validate()
    reference = _window(reference, "reference", config)
    current = _window(current, "current", config)
    features = select_columns(reference.columns, current.columns, config)
    base: dict[str, Any] = {
        "reference_rows": reference.rows,
        "current_rows": current.rows,
        "drift_share": config.drift_share,
        "correction": config.correction,
        "reference_sampled_from": reference.sampled_from,
        "current_sampled_from": current.sampled_from,
    }
    if reference.rows == 0:
        raise ValueError("the reference window is empty: there is nothing to compare with")
    if current.rows == 0:
        log.warning("The current window is empty: reported, not judged as drift")
        return DriftResult([], empty_current=True, notes=["current window is empty"], **base)

    roles = [(c, "feature") for c in features]
    roles += [(c, r) for r, c in (("target", config.target), ("prediction", config.prediction)) if c]
    aligned = set(config.aligned_columns) if config.performance_metric else set()

    def run(item: tuple[str, str]) -> tuple[ColumnResult, PreparedColumn, PreparedColumn]:
        column, role = item
        ref = reference.prepare(column, aligned=column in aligned)
        cur = current.prepare(column, kind=ref.profile.kind, aligned=column in aligned)
        result = _test_column(ref.profile, cur.profile, role, config)
        # The sorted values are done with: only the report's rows and the aligned rows stay.
        return result, _without_values(ref), _without_values(cur)

    with ThreadPoolExecutor(max_workers=workers or min(2, os.cpu_count() or 1)) as pool:
        futures = [pool.submit(run, item) for item in roles]
        try:
            done = [f.result() for f in futures]
        except BaseException:
            for future in futures:  # the first bad column ends the check; the rest are not read
                future.cancel()
            raise

    import pandas as pd  # heavy: only when data is evaluated

    results = [r for r, _, _ in done]
    _decide(results, config)
    ref_cols = {r.column: ref for r, ref, _ in done}
    cur_cols = {r.column: cur for r, _, cur in done}
    performance = _performance(ref_cols, cur_cols, config) if config.performance_metric else None
    return DriftResult(
        results,
        performance=performance,
        reference_sample=pd.DataFrame({c: p.sample for c, p in ref_cols.items()}),
        current_sample=pd.DataFrame({c: p.sample for c, p in cur_cols.items()}),
        **base,
    )


def _window(data: Window | Table | pd.DataFrame, name: str, config: DriftConfig) -> Window:
    if isinstance(data, Window):
        return data
    return Window(as_table(data), name, max_rows=config.max_rows, seed=config.seed)


def _without_values(prepared: PreparedColumn) -> PreparedColumn:
    profile = prepared.profile
    light = ColumnProfile(profile.name, profile.kind, profile.rows, profile.nulls, counts=profile.counts)
    return PreparedColumn(light, prepared.sample, prepared.aligned)


def _test_column(ref: ColumnProfile, cur: ColumnProfile, role: str, config: DriftConfig) -> ColumnResult:
    for window, col in (("reference", ref), ("current", cur)):
        if col.evaluated == 0:
            raise ValueError(f"column {ref.name!r} is all null in the {window} window ({col.rows} rows)")
    name, threshold = method_for(ref.name, ref.kind, config)
    if ref.kind == "numeric":
        stat = methods.compute(name, ref.values, cur.values)
    else:
        stat = methods.compute(name, ref.counts, cur.counts)
    return ColumnResult(
        column=ref.name,
        role=role,
        kind=ref.kind,
        method=name,
        statistic=stat.statistic,
        value=stat.value,
        threshold=threshold,
        effect=stat.effect,
        drifted=False,
        reference_rows=ref.evaluated,
        current_rows=cur.evaluated,
    )


def _decide(results: list[ColumnResult], config: DriftConfig) -> None:
    """Evidently's per-column rule, on corrected p-values and with the effect-size floor."""
    p_cols = [r for r in results if methods.METHODS[r.method].kind == "p_value"]
    adjusted = methods.adjust_p_values([r.value for r in p_cols], config.correction)
    for r, q in zip(p_cols, adjusted, strict=True):
        r.adjusted_p_value = q if config.correction != "none" else None
        r.min_effect = config.min_effect or None
        r.drifted = methods.METHODS[r.method].drifted(q, r.threshold) and r.effect >= config.min_effect
    for r in results:
        if methods.METHODS[r.method].kind == "distance":
            r.drifted = methods.METHODS[r.method].drifted(r.value, r.threshold)


def _performance(
    reference: dict[str, PreparedColumn], current: dict[str, PreparedColumn], config: DriftConfig
) -> dict[str, Any]:
    metric = config.performance_metric or "accuracy"
    target, prediction = config.target or "", config.prediction or ""
    pairs = []
    for window in (reference, current):
        y_true, y_pred = window[target].aligned, window[prediction].aligned
        assert y_true is not None and y_pred is not None  # prepared with aligned=True
        pairs.append((y_true, y_pred))
    ref_value = metric_value(metric, *pairs[0])
    cur_value = metric_value(metric, *pairs[1])
    higher_better = METRICS[metric]
    change = (ref_value - cur_value) if higher_better else (cur_value - ref_value)
    drop = change / abs(ref_value) if ref_value else (float("inf") if change > 0 else 0.0)
    return {
        "metric": metric,
        "reference": _r(ref_value),
        "current": _r(cur_value),
        "relative_drop": _r(drop),
        "max_drop": config.max_performance_drop,
        "drifted": bool(drop > config.max_performance_drop),
    }


def metric_value(metric: str, y_true: np.ndarray, y_pred: np.ndarray) -> float:
    """A performance metric on the rows where both label and prediction are present."""
    import pandas as pd  # heavy: only when data is evaluated

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


def _r(value: float) -> float | str:
    """Round for the summary without losing tiny p-values; infinities as text, so JSON stays strict."""
    value = float(value)
    if not np.isfinite(value):
        return str(value)
    return float(f"{value:.6g}")
