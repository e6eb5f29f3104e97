"""The promotion gate's verdict: absolute thresholds and the comparison with the champion.

It judges and moves nothing (the alias moves are in :mod:`airflow_trainkit.registry.promotion`).
Each single check is MLflow's own ``mlflow.validate_evaluation_results`` with a ``MetricThreshold``,
fed with ``EvaluationResult`` objects built from the metrics stored on the versions' runs.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from mlflow import MlflowClient

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


def number(value: Any, field: str) -> float:
    """``value`` as a float: a number, or a numeric string (what a template renders to).

    :raises ValueError: naming ``field`` and the value, for a bool or anything not numeric.
    """
    if isinstance(value, str) and not isinstance(value, bool):
        try:
            return float(value)
        except ValueError:
            pass
    elif isinstance(value, (int, float)) and not isinstance(value, bool):
        return float(value)
    raise ValueError(f"{field} must be a number, got {value!r}")


def resolve_thresholds(task: str | None, thresholds: dict[str, Any] | None) -> dict[str, tuple[float, bool]]:
    """``{metric: (threshold, greater_is_better)}``: the defaults for ``task`` updated by ``thresholds``.

    A value is a number (direction from the known metrics) or ``{"threshold": x,
    "greater_is_better": bool}``; ``None`` drops a default.
    """
    if thresholds is not None and not isinstance(thresholds, dict):
        raise ValueError(f"thresholds must be a dict of metric -> threshold, got {thresholds!r}")
    merged: dict[str, Any] = dict(DEFAULT_THRESHOLDS.get(task or "", {}))
    merged.update(thresholds or {})
    out = {str(metric): _threshold(str(metric), spec) for metric, spec in merged.items() if spec is not None}
    if not out:
        raise ValueError(
            f"no thresholds for task {task!r}: pass thresholds={{metric: value}} "
            f"(defaults exist for {', '.join(DEFAULT_THRESHOLDS)})"
        )
    return out


def _threshold(metric: str, spec: Any) -> tuple[float, bool]:
    greater = GREATER_IS_BETTER.get(metric)
    value = spec
    if isinstance(spec, dict):
        value = spec.get("threshold")
        greater = spec.get("greater_is_better", greater)
    if greater is None:
        raise ValueError(
            f"thresholds[{metric!r}]: unknown metric direction; give "
            '{"threshold": x, "greater_is_better": true|false}'
        )
    return number(value, f"thresholds[{metric!r}]"), bool(greater)


def check_tolerance(tolerance: Any) -> float | dict[str, float]:
    """The allowed regression against the baseline: a number >= 0, or ``{metric: number}``.

    Numeric strings count (a templated value renders to one).

    :raises ValueError: naming the field and the value.
    """
    if isinstance(tolerance, dict):
        return {
            str(metric): _tolerance(value, f"tolerance[{metric!r}]") for metric, value in tolerance.items()
        }
    return _tolerance(tolerance, "tolerance")


def _tolerance(value: Any, field: str) -> float:
    out = number(value, field)
    if out < 0:
        raise ValueError(f"{field} must be a number >= 0, got {value!r}")
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
    """The metrics of the run that made ``version``; empty for a version without a run."""
    if not version.run_id:
        return {}
    return dict(client.get_run(version.run_id).data.metrics)


def get_alias(client: MlflowClient, model_name: str, alias: str) -> Any | None:
    """The version holding ``alias``, or ``None`` when no version holds it."""
    from mlflow.exceptions import MlflowException  # heavy: only when the gate runs

    try:
        return client.get_model_version_by_alias(model_name, alias)
    except MlflowException as err:
        if err.error_code in ("RESOURCE_DOES_NOT_EXIST", "INVALID_PARAMETER_VALUE", "NOT_FOUND"):
            return None
        raise


def require_model(client: MlflowClient, model_name: str) -> None:
    """Fail with a ``ValueError`` naming the model and the server when it is not registered there."""
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
    tolerance: Any = DEFAULT_TOLERANCE,
) -> dict[str, Any]:
    """Judge a version (``@challenger`` by default) without moving any alias.

    :returns: ``{"model_name", "version", "passed", "reasons", "checks", "compared_to", ...}``.
    :raises ValueError: unknown model, no challenger, a threshold on a metric the model lacks, a
        tolerance that is not a number >= 0.
    """
    tolerance = check_tolerance(tolerance)
    require_model(client, model_name)
    candidate = _candidate(client, model_name, version)
    metrics = version_metrics(client, candidate)
    task = (candidate.tags or {}).get("trainkit.task") or _guess_task(metrics)
    limits = resolve_thresholds(task, thresholds)
    missing = sorted(set(limits) - set(metrics))
    if missing:
        raise ValueError(
            f"thresholds name metrics that {model_name} version {candidate.version} did not report: "
            f"{', '.join(missing)}; it reported: {', '.join(sorted(metrics)) or 'nothing'}"
        )
    checks = [
        _threshold_check(metric, metrics[metric], limit, candidate.run_id) for metric, limit in limits.items()
    ]
    baseline = get_alias(client, model_name, compare_to) if compare_to else None
    # Judging the baseline itself (it already holds the alias): nothing to compare with.
    if baseline is not None and compare_to and str(baseline.version) != str(candidate.version):
        checks += _baseline_checks(client, baseline, compare_to, limits, metrics, tolerance, candidate.run_id)
    reasons = [check["reason"] for check in checks if not check["passed"]]
    checks = [{key: value for key, value in check.items() if key != "reason"} for check in checks]
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


def _candidate(client: MlflowClient, model_name: str, version: str | None) -> Any:
    """The version to judge: ``version``, or the one holding ``@challenger``."""
    if version:
        return client.get_model_version(model_name, str(version))
    candidate = get_alias(client, model_name, CHALLENGER)
    if candidate is None:
        raise ValueError(f"model {model_name!r} has no version with alias @{CHALLENGER}; register one first")
    return candidate


def _threshold_check(
    metric: str, value: float, limit: tuple[float, bool], run_id: str | None
) -> dict[str, Any]:
    threshold, greater = limit
    failure = _check(metric, value, threshold, greater, run_id)
    return {
        "metric": metric,
        "kind": "threshold",
        "value": value,
        "limit": threshold,
        "greater_is_better": greater,
        "passed": failure is None,
        "reason": f"{metric}={value:.4g} fails threshold {'>=' if greater else '<='} {threshold:g} ({failure})",
    }


def _baseline_checks(
    client: MlflowClient,
    baseline: Any,
    alias: str,
    limits: dict[str, tuple[float, bool]],
    metrics: dict[str, float],
    tolerance: float | dict[str, float],
    run_id: str | None,
) -> list[dict[str, Any]]:
    """ "Not worse than ``@alias`` by more than the tolerance", for each metric both versions report.

    A plain threshold derived from the baseline: ``MetricThreshold``'s ``min_*_change`` demand an
    improvement, which is not the rule.
    """
    base_metrics = version_metrics(client, baseline)
    checks = []
    for metric, (_threshold_value, greater) in limits.items():
        if metric not in base_metrics:
            continue
        tol = tolerance.get(metric, DEFAULT_TOLERANCE) if isinstance(tolerance, dict) else tolerance
        base = base_metrics[metric]
        limit = base - tol if greater else base + tol
        failure = _check(metric, metrics[metric], limit, greater, run_id)
        checks.append(
            {
                "metric": metric,
                "kind": f"vs {alias}",
                "value": metrics[metric],
                "limit": limit,
                "baseline": base,
                "baseline_version": str(baseline.version),
                "greater_is_better": greater,
                "passed": failure is None,
                "reason": f"{metric}={metrics[metric]:.4g} is worse than @{alias} (version "
                f"{baseline.version}: {base:.4g}) by more than {tol:g}",
            }
        )
    return checks


def _guess_task(metrics: dict[str, float]) -> str | None:
    if {"auc_roc", "f1_weighted", "log_loss"} & set(metrics):
        return "classification"
    if {"mape", "rmse", "mae", "r2"} & set(metrics):
        return "regression"
    return None
