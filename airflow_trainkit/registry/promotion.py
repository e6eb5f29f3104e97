"""Moving the aliases: promote a version past the gate, roll ``@champion`` back.

The operators, the ``trainkit registry`` command and your own code all call these; none of them
knows about Airflow's scheduling.
"""

from __future__ import annotations

import json
import logging
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from airflow_trainkit.registry.gate import (
    CHAMPION,
    DEFAULT_TOLERANCE,
    GATE_TAG,
    PREVIOUS_CHAMPION,
    ROLLED_BACK,
    evaluate_gate,
    get_alias,
    require_model,
)

if TYPE_CHECKING:
    from mlflow import MlflowClient

log = logging.getLogger(__name__)


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
    tolerance: Any = DEFAULT_TOLERANCE,
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


def rollback(client: MlflowClient, model_name: str) -> dict[str, Any]:
    """Point ``@champion`` back at ``@previous-champion`` with ``client``.

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


def rollback_champion(model_name: str, *, mlflow_conn_id: str | None = None) -> dict[str, Any]:
    """One call to undo the last promotion of ``model_name``, from a shell, a task or a notebook.

    ``@champion`` goes back to ``@previous-champion``; the demoted version gets ``@rolled-back``.

    :param mlflow_conn_id: a ``trainkit_mlflow`` connection; ``None`` for ``trainkit_mlflow_default``
        or the embedded registry.
    """
    from airflow_trainkit.hooks.mlflow import MlflowHook

    return rollback(MlflowHook(conn_id=mlflow_conn_id).get_client(), model_name)
