"""What a drift check compares and how it decides: ``DriftConfig`` and its validation."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from airflow_trainkit.drift import methods
from airflow_trainkit.drift.performance import METRICS

CORRECTIONS = ("bh", "bonferroni", "none")
DEFAULT_METHOD = {"numeric": "ks", "categorical": "chisquare"}
# KS D and the chi-square total variation distance: at least 2 % of the distribution moved.
DEFAULT_MIN_EFFECT = 0.02
DEFAULT_MAX_ROWS = 5_000_000


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
