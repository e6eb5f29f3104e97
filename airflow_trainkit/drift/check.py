"""One drift check end to end: reference profile (cached), current window, decisions, report."""

from __future__ import annotations

import logging
import time
from typing import TYPE_CHECKING

from airflow_trainkit import storage
from airflow_trainkit.drift.engine import DriftConfig, DriftResult, evaluate
from airflow_trainkit.drift.profile import Profile, build_profile, cached_reference_profile
from airflow_trainkit.drift.report import DEFAULT_REPORT_ROWS, build_report, preload_evidently, write_report
from airflow_trainkit.home import trainkit_home

if TYPE_CHECKING:
    from collections.abc import Callable
    from pathlib import Path

    import pandas as pd

log = logging.getLogger(__name__)


def profile_cache_dir() -> Path:
    """Where reference profiles are cached: ``trainkit_home()/cache/drift``."""
    return trainkit_home() / "cache" / "drift"


def reference_profile(
    reference_uri: str | None, read: Callable[[], pd.DataFrame], config: DriftConfig, *, cache: bool = True
) -> Profile:
    """The reference profile: from the cache for a file URI, else built from ``read()``."""
    if cache and reference_uri is not None:
        profile, _ = cached_reference_profile(
            reference_uri,
            read,
            cache_dir=profile_cache_dir(),
            max_rows=config.max_rows,
            seed=config.seed,
            report_rows=DEFAULT_REPORT_ROWS,
            aligned_columns=config.aligned_columns,
        )
        return profile
    return build_profile(
        read(),
        max_rows=config.max_rows,
        seed=config.seed,
        report_rows=DEFAULT_REPORT_ROWS,
        aligned_columns=config.aligned_columns,
    )


def run_check(
    *,
    read_reference: Callable[[], pd.DataFrame],
    read_current: Callable[[], pd.DataFrame],
    config: DriftConfig,
    reference_uri: str | None = None,
    report_uri: str | None = None,
    cache: bool = True,
) -> DriftResult:
    """Evaluate the current window against the reference; write the report if ``report_uri`` is given.

    The report is written before this returns, so a caller that then fails on drift leaves it behind.
    """
    config.validate()
    if report_uri:
        preload_evidently()
    started = time.perf_counter()
    current = read_current()
    read_at = time.perf_counter()
    ref_profile = reference_profile(reference_uri, read_reference, config, cache=cache)
    profiled_at = time.perf_counter()
    result = evaluate(ref_profile, current, config)
    evaluated_at = time.perf_counter()
    if report_uri:
        result.report_uri = report_uri
        ref_sample = ref_profile.sample if ref_profile.sample is not None else current.iloc[:0]
        files = build_report(result, ref_sample, current, seed=config.seed)
        write_report(report_uri, files)
        log.info("Drift report written to %s", report_uri)
    log.info(
        "Drift check timings: read current %.1f s, reference profile %.1f s, tests %.1f s, report %.1f s",
        read_at - started,
        profiled_at - read_at,
        evaluated_at - profiled_at,
        time.perf_counter() - evaluated_at,
    )
    return result


def run_demo_drift_check(reference_uri: str, current_uri: str, report_uri: str) -> dict:
    """The demo's drift check of the churn tables: every feature but the id, the label named.

    :returns: the XCom-sized summary (``drifted_columns``, ``report_uri``, ...).
    """
    from airflow_trainkit.demo.data import CATEGORICAL_COLUMNS, NUMERIC_COLUMNS, TARGET

    config = DriftConfig(columns=NUMERIC_COLUMNS + CATEGORICAL_COLUMNS, target=TARGET, drift_share=0.3)
    result = run_check(
        read_reference=lambda: storage.read_table(reference_uri),
        read_current=lambda: storage.read_table(current_uri),
        config=config,
        reference_uri=reference_uri,
        report_uri=report_uri,
    )
    return result.summary()
