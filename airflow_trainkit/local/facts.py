"""The one fact worth a line for a finished task, read from its return value (XCom).

trainkit's operators are recognised by the shape of what they return; anything else is shown as
short JSON. Standard library only: the progress listener runs this inside the task process.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

MAX_FACT = 120
# The metrics worth a glance, in this order; the trainer's counters (n_train, ...) are not.
HEADLINE_METRICS = ("auc_roc", "log_loss", "f1_weighted", "rmse", "mape", "accuracy", "r2")


def fact(value: Any) -> str:
    """One short line about a task's return value; ``""`` when it returned nothing."""
    if value is None:
        return ""
    if isinstance(value, Mapping):
        for matches, describe in _SHAPES:
            if matches(value):
                try:
                    return _short(describe(value))
                except (AttributeError, KeyError, TypeError, ValueError):
                    break  # a look-alike: show it as data
    if isinstance(value, str):
        return _short(value)
    text = json.dumps(value, default=str, sort_keys=True)
    if len(text) > MAX_FACT and isinstance(value, Mapping):
        return _short(f"{len(value)} keys: {', '.join(map(str, value))}")
    return _short(text)


def _short(text: str) -> str:
    text = " ".join(str(text).split())
    return text if len(text) <= MAX_FACT else text[: MAX_FACT - 3] + "..."


def _number(value: Any) -> str:
    return f"{value:.4g}" if isinstance(value, float) else str(value)


def _training(result: Mapping[str, Any]) -> str:
    metrics = result.get("metrics")
    if not isinstance(metrics, Mapping):
        metrics = {}
    shown = [
        f"{k} {_number(metrics[k])}" for k in HEADLINE_METRICS if isinstance(metrics.get(k), int | float)
    ]
    text = f"{result['backend']} job {result['job_id']}"
    if shown:
        text += ": " + ", ".join(shown[:3])
    if result.get("billable_seconds") is not None:
        text += f" ({_number(float(result['billable_seconds']))} s)"
    return text


def _validation(summary: Mapping[str, Any]) -> str:
    verdict = "passed" if summary["success"] else "FAILED"
    text = f"contract {summary.get('dataset') or ''} {verdict}: {summary.get('passed')}/{summary['evaluated']} checks"
    failed = [f.get("check") for f in summary.get("failed_checks") or []]
    return text + (f"; failed: {', '.join(map(str, failed))}" if failed else "")


def _quotes(table: Mapping[str, Any]) -> str:
    cheapest = table.get("cheapest")
    count = len(table["quotes"])
    if not cheapest:
        return f"{count} quote(s), none pickable"
    backend = cheapest.get("backend") or cheapest.get("provider")
    return f"{count} quotes; cheapest {backend}: {_number(cheapest.get('total'))} {cheapest.get('currency') or ''}"


def _registered(version: Mapping[str, Any]) -> str:
    reused = " (already registered)" if version.get("reused") else ""
    return f"{version['model_name']} version {version['version']} @{version['alias']}{reused}"


def _gate(decision: Mapping[str, Any]) -> str:
    version = f"{decision['model_name']} version {decision['version']}"
    if decision["decision"] == "promoted":
        return f"{version} promoted to @champion"
    if decision["decision"] == "already-champion":
        return f"{version} is already @champion"
    return f"{version} {decision['decision']}: " + "; ".join(map(str, decision.get("reasons") or []))


def _drift(summary: Mapping[str, Any]) -> str:
    if summary.get("empty_current"):
        return "current window is empty: nothing judged"
    columns = [c["column"] for c in summary["drifted_columns"]]
    if not summary.get("drift"):
        return f"no drift in {summary.get('columns_checked')} columns"
    return f"drift in {len(columns)} of {summary.get('columns_checked')} columns: {', '.join(columns)}"


_SHAPES = (
    (lambda v: {"backend", "job_id", "output_uri"} <= v.keys(), _training),
    (lambda v: {"success", "evaluated", "fingerprint"} <= v.keys(), _validation),
    (lambda v: {"quotes", "cheapest"} <= v.keys(), _quotes),
    (lambda v: {"decision", "model_name", "version"} <= v.keys(), _gate),
    (lambda v: {"model_name", "version", "alias"} <= v.keys(), _registered),
    (lambda v: {"drifted_columns", "drift"} <= v.keys() or "empty_current" in v, _drift),
)
