"""Draft a contract from a dataset you trust, so nobody writes the first one by hand.

The draft is a starting point: it states what the data looks like today (types, nulls, observed
ranges widened by a margin, small sets of values, unique keys); the owner then tightens it.
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING, Any

import yaml

from airflow_trainkit.contracts.model import parse_contract

if TYPE_CHECKING:
    import pandas as pd

MAX_ALLOWED_VALUES = 20  # a column with more distinct values gets no allowed_values list
RANGE_MARGIN = 0.1  # observed ranges are widened by this share of their span on each side


def infer_contract_dict(
    frame: pd.DataFrame, *, dataset: str, owner: str | None = None, source: str | None = None
) -> dict[str, Any]:
    """A contract (as plain data, ready for YAML) describing ``frame``."""
    if not dataset:
        raise ValueError("dataset must be a non-empty name, got ''")
    rows = len(frame)
    contract: dict[str, Any] = {"dataset": dataset}
    if owner:
        contract["owner"] = owner
    if source:
        contract["source"] = source
    contract["severity"] = "error"
    contract["columns"] = [_column_spec(str(name), frame[name], rows) for name in frame.columns]
    contract["table"] = {"row_count": {"min": max(1, rows // 2)}, "no_extra_columns": True}
    return contract


def _column_spec(name: str, series: pd.Series, rows: int) -> dict[str, Any]:
    """What one column looks like today: type, nulls, then its values (see ``_value_rules``)."""
    spec: dict[str, Any] = {"name": name}
    kind = _kind(series)
    if kind:
        spec["type"] = kind
    nulls = int(series.isna().sum())
    if nulls == 0 and rows:
        spec["nullable"] = False
    elif rows:
        spec["max_null_share"] = min(1.0, math.ceil((nulls / rows * 1.5 + 0.01) * 100) / 100)
    spec.update(_value_rules(series.dropna(), kind, rows))
    return spec


def _value_rules(values: pd.Series, kind: str | None, rows: int) -> dict[str, Any]:
    """Uniqueness or a small set of allowed values; the observed range (numbers) or span (datetimes)."""
    import pandas as pd  # heavy: only with data

    rules: dict[str, Any] = {}
    distinct = int(values.nunique()) if len(values) else 0
    if kind in ("integer", "string") and len(values) > 1 and distinct == len(values) and rows >= 20:
        rules["unique"] = True
    elif (
        kind in ("integer", "string", "boolean")
        and 0 < distinct <= MAX_ALLOWED_VALUES
        and distinct < max(2, rows / 5)
    ):
        rules["allowed_values"] = sorted(_plain(v) for v in values.unique())
    if kind in ("integer", "float", "number") and len(values):
        rules["range"] = _range(float(values.min()), float(values.max()), integer=kind == "integer")
    if kind == "datetime" and len(values):
        low, high = pd.Timestamp(values.min()).isoformat(), pd.Timestamp(values.max()).isoformat()
        rules["description"] = f"observed from {low} to {high}"
    return rules


def infer_contract_yaml(
    frame: pd.DataFrame, *, dataset: str, owner: str | None = None, source: str | None = None
) -> str:
    """The draft contract as YAML text, checked to parse back."""
    data = infer_contract_dict(frame, dataset=dataset, owner=owner, source=source)
    header = (
        f"# Data contract for {dataset}, inferred by `trainkit contract infer` from {source or 'a trusted dataset'}.\n"
        "# A starting point: review the ranges, allowed values and null shares, then tighten them.\n"
    )
    text = header + yaml.safe_dump(data, sort_keys=False, allow_unicode=True, width=110)
    parse_contract(text, source="<inferred>")  # the draft must be a valid contract
    return text


def _kind(series: pd.Series) -> str | None:
    import pandas as pd  # heavy: only with data

    dtype = series.dtype
    if pd.api.types.is_bool_dtype(dtype):
        return "boolean"
    if pd.api.types.is_integer_dtype(dtype):
        return "integer"
    if pd.api.types.is_float_dtype(dtype):
        return "number"
    if pd.api.types.is_datetime64_any_dtype(dtype):
        return "datetime"
    if pd.api.types.is_string_dtype(dtype) or pd.api.types.is_object_dtype(dtype):
        values = series.dropna()
        if len(values) and all(isinstance(v, str) for v in values.head(10_000)):
            return "string"
    return None


def _range(low: float, high: float, *, integer: bool) -> dict[str, Any]:
    margin = (high - low) * RANGE_MARGIN
    lo, hi = low - margin, high + margin
    if low >= 0 > lo:
        lo = 0.0
    if integer:
        return {"min": int(math.floor(lo)), "max": int(math.ceil(hi))}
    return {"min": _round_down(lo), "max": _round_up(hi)}


def _round_down(value: float) -> float | int:
    out = math.floor(value * 100) / 100
    return int(out) if out.is_integer() else out


def _round_up(value: float) -> float | int:
    out = math.ceil(value * 100) / 100
    return int(out) if out.is_integer() else out


def _plain(value: Any) -> Any:
    return value.item() if hasattr(value, "item") else value
