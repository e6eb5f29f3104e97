"""Evidently's drift report on a bounded row sample, with the check's own full-data verdict on top.

The folder at ``report_uri`` holds ``report.html`` and ``report.json`` (Evidently's), and
``summary.json`` (the check's decisions on every row), written whole or not at all.
"""

from __future__ import annotations

import html
import json
import logging
import threading
from typing import TYPE_CHECKING

from airflow_trainkit import storage
from airflow_trainkit.drift.methods import METHODS

if TYPE_CHECKING:
    from airflow_trainkit.drift.results import ColumnResult, DriftResult

log = logging.getLogger(__name__)

# Evidently builds plotly figures per column (a fraction of a second each, whatever the row count):
# the report shows the drifted columns first, then those nearest their threshold, up to this many.
DEFAULT_REPORT_COLUMNS = 12
_preload: threading.Thread | None = None


def preload_evidently() -> None:
    """Import Evidently in a background thread while the statistics run (its import takes seconds)."""
    global _preload
    if _preload is None:
        _preload = threading.Thread(target=_import_evidently, name="evidently-import", daemon=True)
        _preload.start()


def _import_evidently() -> None:
    try:
        import evidently.presets  # noqa: F401  heavy: the report needs it, the statistics do not
    except Exception as err:  # reported again, with its cause, when the report is built
        log.debug("Evidently preload failed: %s", err)


def build_report(result: DriftResult) -> dict[str, str]:
    """Evidently's DataDriftPreset on the result's row samples, with the methods and thresholds of the check.

    :returns: ``{"report.html": ..., "report.json": ..., "summary.json": ...}``.
    """
    if _preload is not None:
        _preload.join()
    from evidently import DataDefinition, Dataset, Report  # heavy: only when a report is written
    from evidently.presets import DataDriftPreset

    tested = report_columns(result, DEFAULT_REPORT_COLUMNS)
    # allow_nan=False: the results hold no infinity or NaN (results.py); strict JSON or an error.
    files: dict[str, str] = {
        "summary.json": json.dumps(result.details(), indent=2, default=str, allow_nan=False)
    }
    if not tested or result.reference_sample is None or result.current_sample is None:
        files["report.html"] = _banner_page(result)
        files["report.json"] = json.dumps({"note": "current window empty: nothing was compared"})
        return files
    names = [c.column for c in tested]
    numeric = [c.column for c in tested if c.kind == "numeric"]
    categorical = [c.column for c in tested if c.kind != "numeric"]
    definition = DataDefinition(numerical_columns=numeric, categorical_columns=categorical)
    ref = result.reference_sample[names]
    cur = result.current_sample[names]
    for col in categorical:  # the check compares categories as text; so does the report
        ref = ref.assign(**{col: ref[col].astype("string")})
        cur = cur.assign(**{col: cur[col].astype("string")})
    preset = DataDriftPreset(
        columns=[c.column for c in tested if c.role == "feature"] or names,
        drift_share=result.drift_share,
        per_column_method={c.column: c.method for c in tested},
        per_column_threshold={c.column: c.threshold for c in tested},
    )
    snapshot = Report([preset]).run(
        current_data=Dataset.from_pandas(cur.reset_index(drop=True), data_definition=definition),
        reference_data=Dataset.from_pandas(ref.reset_index(drop=True), data_definition=definition),
    )
    page = snapshot.get_html_str(as_iframe=False)
    files["report.html"] = _insert_banner(page, _banner(result, len(ref), len(cur), len(tested)))
    files["report.json"] = snapshot.json()
    return files


def report_columns(result: DriftResult, limit: int) -> list[ColumnResult]:
    """The columns Evidently's report shows: drifted first (largest effect first), then the others
    nearest to drifting, then the label and prediction, ``limit`` in all."""

    def closeness(c: ColumnResult) -> float:
        if c.adjusted_p_value is not None or METHODS[c.method].kind == "p_value":
            p = c.adjusted_p_value if c.adjusted_p_value is not None else c.value
            return c.threshold / max(p, 1e-300)
        return c.value / c.threshold

    special = [c for c in result.columns if c.role != "feature"]
    features = sorted(
        result.features, key=lambda c: (not c.drifted, -c.effect if c.drifted else -closeness(c))
    )
    return features[: max(limit - len(special), 1)] + special


def write_report(report_uri: str, files: dict[str, str]) -> str:
    """Write the report folder whole or not at all; returns its URI."""
    return storage.write_folder_atomic(report_uri, files)


def _banner(result: DriftResult, ref_rows: int, cur_rows: int, shown: int) -> str:
    summary = result.summary()
    rows = summary["rows"]
    drifted = summary["drifted_columns"]
    items = "".join(
        "<li><b>{}</b>: {} {}={} (threshold {}){}</li>".format(
            html.escape(str(c["column"])),
            html.escape(c["method"]),
            "adjusted p" if "adjusted_p_value" in c else ("p" if "p_value" in c else "distance"),
            c.get("adjusted_p_value", c.get("p_value", c.get("distance"))),
            c["threshold"],
            f", effect {c['effect']} >= {c['min_effect']}" if "effect" in c else "",
        )
        for c in drifted
    )
    verdict = (
        "DRIFT" if summary["drift"] else ("EMPTY CURRENT WINDOW" if summary["empty_current"] else "no drift")
    )
    return (
        '<div id="trainkit-drift-summary" style="font-family:sans-serif;border:2px solid #888;'
        'padding:12px;margin:12px;background:#fafafa">'
        f"<h2>trainkit drift check: {verdict}</h2>"
        f"<p>Decisions were made on all rows: reference {rows['reference_evaluated']:,} of "
        f"{rows['reference']:,}, current {rows['current_evaluated']:,} of {rows['current']:,}; "
        f"p-values corrected with <b>{html.escape(result.correction)}</b>; "
        f"{summary['drifted_feature_count']} of {summary['features_checked']} feature columns drifted "
        f"(dataset drift at share &ge; {result.drift_share}).</p>"
        f"<p><b>The Evidently report below was built on a sample</b> of {ref_rows:,} reference and "
        f"{cur_rows:,} current rows (fixed seed), without the correction or the effect-size floor: "
        "its per-column verdicts can differ from the decisions above, which are the check's. "
        f"It shows {shown} of the {len(result.columns)} tested columns (the drifted ones first, then "
        "those nearest their threshold); every column's result is in summary.json.</p>"
        f"<ul>{items}</ul></div>"
    )


def _insert_banner(page: str, banner: str) -> str:
    index = page.find("<body")
    if index == -1:
        return banner + page
    close = page.find(">", index)
    return page[: close + 1] + banner + page[close + 1 :]


def _banner_page(result: DriftResult) -> str:
    return "<!DOCTYPE html><html><head><meta charset='utf-8'><title>trainkit drift</title></head><body>" + (
        _banner(result, 0, 0, 0) + "</body></html>"
    )
