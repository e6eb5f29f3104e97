"""A drift check's verdicts: one ``ColumnResult`` per column and the ``DriftResult`` whose
``summary()`` goes to XCom.

Both are JSON as they are: a number that is not finite (a chi-square statistic of a category the
reference never had, a relative drop from a reference metric of 0) is ``None`` (JSON ``null``),
never the string ``"inf"``. The summary's keys are listed in docs/drift.md.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field
from typing import TYPE_CHECKING, Any

from airflow_trainkit.drift import methods

if TYPE_CHECKING:
    import pandas as pd

MAX_SUMMARY_COLUMNS = 100


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
        """The column's entry in ``drifted_columns``: its role, method, value and threshold."""
        out: dict[str, Any] = {
            "column": self.column,
            "role": self.role,
            "method": self.method,
            "statistic": rounded(self.statistic),
        }
        kind = methods.METHODS[self.method].kind
        out["p_value" if kind == "p_value" else "distance"] = rounded(self.value)
        if self.adjusted_p_value is not None:
            out["adjusted_p_value"] = rounded(self.adjusted_p_value)
        out["threshold"] = self.threshold
        if self.min_effect:
            out["effect"] = rounded(self.effect)
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
        """The feature columns tested (the label and prediction columns are not features)."""
        return [c for c in self.columns if c.role == "feature"]

    @property
    def drifted_features(self) -> list[ColumnResult]:
        """The feature columns that drifted: what ``dataset_drift`` counts."""
        return [c for c in self.features if c.drifted]

    @property
    def drifted(self) -> list[ColumnResult]:
        """Every column that drifted: features first, then the label and the prediction."""
        return [c for c in self.columns if c.drifted]

    @property
    def share_drifted(self) -> float:
        """The share of feature columns that drifted."""
        return len(self.drifted_features) / len(self.features) if self.features else 0.0

    @property
    def dataset_drift(self) -> bool:
        """Evidently's rule: the share of drifted feature columns is at least ``drift_share``."""
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
        """The small JSON dict that goes to XCom and into the asset event (keys: docs/drift.md).

        Each count counts its list: ``columns_checked`` and ``drifted_count`` count every tested
        column (features, label, prediction) and ``drifted_columns`` lists the drifted ones;
        ``features_checked`` and ``drifted_feature_count`` count the features only, as
        ``share_drifted`` and ``dataset_drift`` do.
        """
        drifted = self.drifted
        out: dict[str, Any] = {
            "drift": self.drift,
            "dataset_drift": self.dataset_drift,
            "share_drifted": round(self.share_drifted, 4),
            "drift_share": self.drift_share,
            "features_checked": len(self.features),
            "drifted_feature_count": len(self.drifted_features),
            "columns_checked": len(self.columns),
            "drifted_count": len(drifted),
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
        columns = [{k: finite(v) for k, v in asdict(c).items()} for c in self.columns]
        return {**self.summary(), "columns": columns, "notes": self.notes}


def rounded(value: float) -> float | None:
    """Round for the summary without losing tiny p-values; None (JSON null) when not finite."""
    value = float(value)
    if not math.isfinite(value):
        return None
    return float(f"{value:.6g}")


def finite(value: Any) -> Any:
    """A float that is not finite as None (JSON null); any other value as it is."""
    return None if isinstance(value, float) and not math.isfinite(value) else value
