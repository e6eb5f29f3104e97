"""The promotion gate: absolute thresholds, comparison with the champion, alias moves, rollback.

Each single check is MLflow's own ``mlflow.validate_evaluation_results`` with a ``MetricThreshold``,
fed with ``EvaluationResult`` objects built from the metrics stored on the versions' runs.
"""

from __future__ import annotations

import json
import logging
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from mlflow import MlflowClient

log = logging.getLogger(__name__)

CHAMPION = "champion"
CHALLENGER = "challenger"
PREVIOUS_CHAMPION = "previous-champion"
ROLLED_BACK = "rolled-back"
GATE_TAG = "trainkit.gate"

# From the team guide's checklist. Overridable per metric; MAPE is a fraction (0.05 = 5 %).
DEFAULT_THRESHOLDS: dict[str, dict[str, float]] = {
    "classification": {"auc_roc": 0.80, "f1_weighted": 0.70, "log_loss": 0.25},
    "regression": {"mape": 0.05},
}
GREATER_IS_BETTER: dict[str, bool] = {
    "auc_roc": True,
    "auc_pr": True,
    "accuracy": True,
    "precision": True,
    "recall": True,
    "f1": True,
    "f1_weighted": True,
    "r2": True,
    "log_loss": False,
    "mape": False,
    "rmse": False,
    "mae": False,
    "mse": False,
}
DEFAULT_TOLERANCE = 0.01


def resolve_thresholds(task: str | None, thresholds: dict[str, Any] | None) -> dict[str, tuple[float, bool]]:
    """``{metric: (threshold, greater_is_better)}``: the defaults for ``task`` updated by ``thresholds``.

    A value is a number (direction from the known metrics) or ``{"threshold": x,
    "greater_is_better": bool}``; ``None`` drops a default.
    """
    if thresholds is not None and not isinstance(thresholds, dict):
        raise ValueError(f"thresholds must be a dict of metric -> threshold, got {thresholds!r}")
    merged: dict[str, Any] = dict(DEFAULT_THRESHOLDS.get(task or "", {}))
    merged.update(thresholds or {})
    out: dict[str, tuple[float, bool]] = {}
    for metric, spec in merged.items():
        if spec is None:
            continue
        greater = GREATER_IS_BETTER.get(metric)
        value = spec
        if isinstance(spec, dict):
            value = spec.get("threshold")
            greater = spec.get("greater_is_better", greater)
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise ValueError(f"thresholds[{metric!r}] must be a number, got {value!r}")
        if greater is None:
            raise ValueError(
                f"thresholds[{metric!r}]: unknown metric direction; give "
                '{"threshold": x, "greater_is_better": true|false}'
            )
        out[str(metric)] = (float(value), bool(greater))
    if not out:
        raise ValueError(
            f"no thresholds for task {task!r}: pass thresholds={{metric: value}} "
            f"(defaults exist for {', '.join(DEFAULT_THRESHOLDS)})"
        )
    return out


def _check(metric: str, value: float, threshold: float, greater: bool, run_id: str | None) -> str | None:
    """One MLflow threshold check; the failure message, or ``None`` when it passes."""
    import mlflow  # heavy: only when the gate runs
    from mlflow.models import MetricThreshold
    from mlflow.models.evaluation import EvaluationResult
    from mlflow.models.evaluation.validation import ModelValidationFailedException

    candidate = EvaluationResult(metrics={metric: value}, artifacts={}, run_id=run_id or "")
    try:
        mlflow.validate_evaluation_results(
            {metric: MetricThreshold(threshold=threshold, greater_is_better=greater)}, candidate
        )
    except ModelValidationFailedException as err:
        return str(err.message).strip()
    return None


def version_metrics(client: MlflowClient, version: Any) -> dict[str, float]:
    if not version.run_id:
        return {}
    return dict(client.get_run(version.run_id).data.metrics)


def get_alias(client: MlflowClient, model_name: str, alias: str) -> Any | None:
    from mlflow.exceptions import MlflowException  # heavy: only when the gate runs

    try:
        return client.get_model_version_by_alias(model_name, alias)
    except MlflowException as err:
        if err.error_code in ("RESOURCE_DOES_NOT_EXIST", "INVALID_PARAMETER_VALUE", "NOT_FOUND"):
            return None
        raise


def require_model(client: MlflowClient, model_name: str) -> None:
    from mlflow.exceptions import MlflowException  # heavy: only when the gate runs

    try:
        client.get_registered_model(model_name)
    except MlflowException as err:
        if err.error_code == "RESOURCE_DOES_NOT_EXIST":
            raise ValueError(
                f"model_name {model_name!r}: no registered model of that name at {client.tracking_uri}"
            ) from None
        raise


def evaluate_gate(
    client: MlflowClient,
    model_name: str,
    *,
    version: str | None = None,
    thresholds: dict[str, Any] | None = None,
    compare_to: str | None = CHAMPION,
    tolerance: float | dict[str, float] = DEFAULT_TOLERANCE,
) -> dict[str, Any]:
    """Judge a version (``@challenger`` by default) without moving any alias.

    :returns: ``{"model_name", "version", "passed", "reasons", "checks", "compared_to", ...}``.
    :raises ValueError: unknown model, no challenger, a threshold on a metric the model lacks.
    """
    require_model(client, model_name)
    candidate: Any
    if version:
        candidate = client.get_model_version(model_name, str(version))
    else:
        candidate = get_alias(client, model_name, CHALLENGER)
        if candidate is None:
            raise ValueError(
                f"model {model_name!r} has no version with alias @{CHALLENGER}; register one first"
            )
    metrics = version_metrics(client, candidate)
    task = (candidate.tags or {}).get("trainkit.task") or _guess_task(metrics)
    limits = resolve_thresholds(task, thresholds)
    missing = sorted(set(limits) - set(metrics))
    if missing:
        raise ValueError(
            f"thresholds name metrics that {model_name} version {candidate.version} did not report: "
            f"{', '.join(missing)}; it reported: {', '.join(sorted(metrics)) or 'nothing'}"
        )
    checks: list[dict[str, Any]] = []
    reasons: list[str] = []
    for metric, (threshold, greater) in limits.items():
        failure = _check(metric, metrics[metric], threshold, greater, candidate.run_id)
        checks.append(
            {
                "metric": metric,
                "kind": "threshold",
                "value": metrics[metric],
                "limit": threshold,
                "greater_is_better": greater,
                "passed": failure is None,
            }
        )
        if failure:
            reasons.append(
                f"{metric}={metrics[metric]:.4g} fails threshold {'>=' if greater else '<='} "
                f"{threshold:g} ({failure})"
            )

    baseline = get_alias(client, model_name, compare_to) if compare_to else None
    if baseline is not None and str(baseline.version) != str(candidate.version):
        base_metrics = version_metrics(client, baseline)
        for metric, (_threshold, greater) in limits.items():
            if metric not in base_metrics:
                continue
            tol = tolerance.get(metric, DEFAULT_TOLERANCE) if isinstance(tolerance, dict) else tolerance
            if isinstance(tol, bool) or not isinstance(tol, (int, float)) or tol < 0:
                raise ValueError(f"tolerance for {metric!r} must be a number >= 0, got {tol!r}")
            # "Not worse than the champion by more than tol" is a plain threshold derived from the
            # champion; MetricThreshold's min_*_change demand an improvement, which is not the rule.
            limit = base_metrics[metric] - tol if greater else base_metrics[metric] + tol
            failure = _check(metric, metrics[metric], limit, greater, candidate.run_id)
            checks.append(
                {
                    "metric": metric,
                    "kind": f"vs {compare_to}",
                    "value": metrics[metric],
                    "limit": limit,
                    "baseline": base_metrics[metric],
                    "baseline_version": str(baseline.version),
                    "greater_is_better": greater,
                    "passed": failure is None,
                }
            )
            if failure:
                reasons.append(
                    f"{metric}={metrics[metric]:.4g} is worse than @{compare_to} (version "
                    f"{baseline.version}: {base_metrics[metric]:.4g}) by more than {tol:g}"
                )
    return {
        "model_name": model_name,
        "version": str(candidate.version),
        "task": task,
        "passed": not reasons,
        "reasons": reasons,
        "checks": checks,
        "compared_to": str(baseline.version) if baseline is not None else None,
        "compare_alias": compare_to,
    }


def _guess_task(metrics: dict[str, float]) -> str | None:
    if {"auc_roc", "f1_weighted", "log_loss"} & set(metrics):
        return "classification"
    if {"mape", "rmse", "mae", "r2"} & set(metrics):
        return "regression"
    return None


def record_decision(client: MlflowClient, decision: dict[str, Any]) -> None:
    """Store the decision and its reasons as tags on the judged version."""
    name, version = decision["model_name"], decision["version"]
    tags = {
        f"{GATE_TAG}.decision": decision["decision"],
        f"{GATE_TAG}.reasons": json.dumps(decision["reasons"])[:5000],
        f"{GATE_TAG}.at": decision["decided_at"],
        f"{GATE_TAG}.compared_to": decision["compared_to"] or "",
    }
    for key, value in tags.items():
        client.set_model_version_tag(name, version, key, value)


def promote(
    client: MlflowClient,
    model_name: str,
    *,
    version: str | None = None,
    thresholds: dict[str, Any] | None = None,
    compare_to: str | None = CHAMPION,
    tolerance: float | dict[str, float] = DEFAULT_TOLERANCE,
) -> dict[str, Any]:
    """Run the gate; on pass move ``@champion`` (the old one keeps ``@previous-champion``).

    Aliases move only after the gate passed and the decision is recorded.
    """
    decision = evaluate_gate(
        client, model_name, version=version, thresholds=thresholds, compare_to=compare_to, tolerance=tolerance
    )
    decision["decided_at"] = datetime.now(UTC).isoformat()
    current = get_alias(client, model_name, CHAMPION)
    decision["previous_champion"] = str(current.version) if current is not None else None
    if current is not None and str(current.version) == decision["version"]:
        decision.update(decision="already-champion", passed=True, reasons=[])
        return decision
    decision["decision"] = "promoted" if decision["passed"] else "rejected"
    record_decision(client, decision)
    if decision["passed"]:
        if current is not None:
            client.set_registered_model_alias(model_name, PREVIOUS_CHAMPION, current.version)
        client.set_registered_model_alias(model_name, CHAMPION, decision["version"])
        log.info(
            "%s version %s is now @%s (was %s)",
            model_name,
            decision["version"],
            CHAMPION,
            decision["previous_champion"],
        )
    else:
        log.warning(
            "%s version %s rejected: %s", model_name, decision["version"], "; ".join(decision["reasons"])
        )
    return decision


def rollback_champion(client: MlflowClient, model_name: str) -> dict[str, Any]:
    """Point ``@champion`` back at ``@previous-champion``; one call.

    The demoted version gets the alias ``rolled-back``; ``previous-champion`` is removed, so a
    second rollback in a row fails instead of flipping back.

    :raises ValueError: unknown model, or no ``@previous-champion`` to roll back to.
    """
    require_model(client, model_name)
    previous = get_alias(client, model_name, PREVIOUS_CHAMPION)
    if previous is None:
        raise ValueError(f"model {model_name!r} has no @{PREVIOUS_CHAMPION} to roll back to")
    current = get_alias(client, model_name, CHAMPION)
    client.set_registered_model_alias(model_name, CHAMPION, previous.version)
    now = datetime.now(UTC).isoformat()
    if current is not None:
        client.set_registered_model_alias(model_name, ROLLED_BACK, current.version)
        client.set_model_version_tag(model_name, current.version, f"{GATE_TAG}.rolled_back_at", now)
    client.delete_registered_model_alias(model_name, PREVIOUS_CHAMPION)
    log.info(
        "%s: @%s rolled back from version %s to %s",
        model_name,
        CHAMPION,
        current.version if current is not None else None,
        previous.version,
    )
    return {
        "model_name": model_name,
        "champion": str(previous.version),
        "rolled_back": str(current.version) if current is not None else None,
        "at": now,
    }
