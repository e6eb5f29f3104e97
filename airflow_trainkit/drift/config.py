"""The settings of a drift check: what it compares and how it decides (``DriftConfig``).

Light on purpose: a DAG file builds these settings at parse time, so this module imports pydantic
and nothing heavy (no numpy, pandas, scipy or Evidently; tests/drift/test_drift_config.py holds it).
The statistics live in ``methods``, ``engine`` and ``performance``, which import this, never the reverse.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal, get_args

from pydantic import Discriminator, Field, Tag, field_validator, model_validator

from airflow_trainkit.config_model import StrictModel

MethodName = Literal["ks", "chisquare", "psi", "wasserstein", "jensenshannon"]
Correction = Literal["bh", "bonferroni", "none"]
PerformanceMetric = Literal["accuracy", "f1", "roc_auc", "rmse", "mae"]

METHOD_NAMES: tuple[str, ...] = get_args(MethodName)
CORRECTIONS: tuple[str, ...] = get_args(Correction)
PERFORMANCE_METRICS: tuple[str, ...] = get_args(PerformanceMetric)
DEFAULT_METHOD: dict[str, MethodName] = {"numeric": "ks", "categorical": "chisquare"}
# KS D and the chi-square total variation distance: at least 2 % of the distribution moved.
DEFAULT_MIN_EFFECT = 0.02
DEFAULT_MAX_ROWS = 5_000_000


def _one_or_per_column(one: str) -> Any:
    # Tags named after the types: config_model.error_lines leaves them out of the field's name, and
    # only the branch the value's type picks is tried, so an error says one thing.
    return Discriminator(lambda value: "dict" if isinstance(value, dict) else one)


ColumnName = Annotated[str, Field(min_length=1)]
Positive = Annotated[float, Field(gt=0)]
MethodChoice = Annotated[
    Annotated[MethodName, Tag("str")] | Annotated[dict[str, MethodName], Tag("dict")],
    _one_or_per_column("str"),
]
ThresholdChoice = Annotated[
    Annotated[Positive, Tag("float")] | Annotated[dict[str, Positive], Tag("dict")],
    _one_or_per_column("float"),
]


class DriftConfig(StrictModel):
    """What a drift check compares and how it decides; see docs/drift.md.

    Every field has its default here and only here. Build it in Python (``DriftConfig(target="churned")``)
    or give ``DriftCheckOperator`` the same as a dict; unknown keys and values of the wrong type are
    refused with the field and the value named.

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
    :param max_rows: windows longer than this are sampled to this many rows with ``seed``; None
        evaluates every row.
    :param seed: the seed of that sample (the same rows for every column and every run).
    """

    columns: Annotated[list[ColumnName], Field(min_length=1)] | None = None
    method: MethodChoice | None = None
    threshold: ThresholdChoice | None = None
    drift_share: float = Field(default=0.5, gt=0, le=1)
    correction: Correction = "bh"
    min_effect: float = Field(default=DEFAULT_MIN_EFFECT, ge=0, lt=1)
    target: ColumnName | None = None
    prediction: ColumnName | None = None
    performance_metric: PerformanceMetric | None = None
    max_performance_drop: float = Field(default=0.05, gt=0, lt=1)
    max_rows: Annotated[int, Field(ge=1000)] | None = DEFAULT_MAX_ROWS
    seed: int = Field(default=0, ge=0)

    @field_validator("columns", mode="before")
    @classmethod
    def _tuple_as_list(cls, value: Any) -> Any:
        """A tuple of names is a list of names (a DAG may hold its columns in a tuple)."""
        return list(value) if isinstance(value, tuple) else value

    @model_validator(mode="after")
    def _performance_needs_both_columns(self) -> DriftConfig:
        if self.performance_metric and not (self.target and self.prediction):
            raise ValueError(
                f"performance_metric={self.performance_metric!r} needs both target and prediction to be named"
            )
        return self

    @property
    def aligned_columns(self) -> tuple[str, ...]:
        """The label and prediction columns that are named: tested on their own, never as features."""
        return tuple(c for c in (self.target, self.prediction) if c)
