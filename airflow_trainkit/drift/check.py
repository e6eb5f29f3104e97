"""One drift check end to end: reference profile (cached), current window, decisions, report."""

from __future__ import annotations

import logging
import time
from typing import TYPE_CHECKING

from airflow_trainkit.drift.engine import evaluate
from airflow_trainkit.drift.profile import DEFAULT_REPORT_ROWS, ProfileCache, Window
from airflow_trainkit.drift.report import build_report, preload_evidently, write_report
from airflow_trainkit.drift.tables import Table, as_table
from airflow_trainkit.home import trainkit_home

if TYPE_CHECKING:
    from pathlib import Path

    import pandas as pd

    from airflow_trainkit.drift.config import DriftConfig
    from airflow_trainkit.drift.results import DriftResult

log = logging.getLogger(__name__)


def profile_cache_dir() -> Path:
    """Where reference profiles are cached: ``trainkit_home()/cache/drift``."""
    return trainkit_home() / "cache" / "drift"


def run_check(
    *,
    reference: Table | pd.DataFrame,
    current: Table | pd.DataFrame,
    config: DriftConfig,
    reference_uri: str | None = None,
    report_uri: str | None = None,
    cache: bool = True,
) -> DriftResult:
    """Evaluate the current window against the reference; write the report if ``report_uri`` is given.

    :param reference_uri: the reference's file URI: its prepared columns are cached under
        :func:`profile_cache_dir` (unless ``cache`` is False) and read from there next time.

    The report is written before this returns, so a caller that then fails on drift leaves it behind.
    """
    if report_uri:
        preload_evidently()
    started = time.perf_counter()
    profiles = None
    if cache and reference_uri is not None:
        profiles = ProfileCache.for_uri(
            reference_uri,
            profile_cache_dir(),
            max_rows=config.max_rows,
            seed=config.seed,
            report_rows=DEFAULT_REPORT_ROWS,
        )
    windows = [
        Window(as_table(data), name, max_rows=config.max_rows, seed=config.seed, cache=profile_cache)
        for data, name, profile_cache in ((reference, "reference", profiles), (current, "current", None))
    ]
    result = evaluate(windows[0], windows[1], config)
    evaluated_at = time.perf_counter()
    if report_uri:
        result.report_uri = report_uri
        write_report(report_uri, build_report(result))
        log.info("Drift report written to %s", report_uri)
    log.info(
        "Drift check timings: columns read and tested %.1f s, report %.1f s",
        evaluated_at - started,
        time.perf_counter() - evaluated_at,
    )
    return result
