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
from typing import TYPE_CHECKING, Any

from airflow_trainkit.drift import methods
from airflow_trainkit.drift.config import DEFAULT_METHOD, DriftConfig
from airflow_trainkit.drift.performance import performance
from airflow_trainkit.drift.profile import ColumnProfile, PreparedColumn, Window
from airflow_trainkit.drift.results import ColumnResult, DriftResult
from airflow_trainkit.drift.tables import Table, as_table

if TYPE_CHECKING:
    import pandas as pd

__all__ = ["ColumnResult", "DriftConfig", "DriftResult", "evaluate", "method_for", "select_columns"]

log = logging.getLogger(__name__)


def select_columns(ref_cols: list[str], current_columns: list[str], config: DriftConfig) -> list[str]:
    """The feature columns to test; a named column missing from a window, or differing column
    sets when none are named, are refused by name."""
    windows = (("reference", ref_cols), ("current", current_columns))
    for role, name in (("target", config.target), ("prediction", config.prediction)):
        if name:
            _require(name, windows, what=f"{role} column")
    special = set(config.aligned_columns)
    if config.columns is not None:
        for name in config.columns:
            _require(name, windows, what="column")
        return [c for c in config.columns if c not in special]
    _require_same_columns(ref_cols, current_columns)
    return [c for c in ref_cols if c not in special]


def _require(name: str, windows: tuple[tuple[str, list[str]], ...], *, what: str) -> None:
    for window, cols in windows:
        if name not in cols:
            raise ValueError(f"{what} {name!r} is missing from the {window} window")


def _require_same_columns(ref_cols: list[str], current_columns: list[str]) -> None:
    missing = [c for c in ref_cols if c not in current_columns]
    extra = [c for c in current_columns if c not in ref_cols]
    parts = []
    if missing:
        parts.append(f"missing from the current window: {missing}")
    if extra:
        parts.append(f"not in the reference window: {extra}")
    if parts:
        raise ValueError(
            "reference and current have different columns (" + "; ".join(parts) + "); name the columns "
            "to compare with columns=[...]"
        )


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
    verdict = performance(ref_cols, cur_cols, config) if config.performance_metric else None
    return DriftResult(
        results,
        performance=verdict,
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
