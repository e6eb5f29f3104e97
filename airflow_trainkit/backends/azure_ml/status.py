"""What Azure ML reports about a command job, read into the shared :class:`JobStatus`.

Works on plain facts the backend reads off the SDK's job object (:func:`job_facts`), so the mapping
itself imports no Azure SDK.
"""

from __future__ import annotations

from datetime import datetime
from enum import Enum, StrEnum
from typing import TYPE_CHECKING, Any
from urllib.parse import quote

from airflow_trainkit.backends.azure_ml.request import INSTANCE_TYPE_TAG, MODEL_OUTPUT, SPOT_TAG
from airflow_trainkit.training.backend import JobPhase, JobStatus

if TYPE_CHECKING:
    from collections.abc import Mapping


class AzureMLState(StrEnum):
    """``azure.ai.ml.entities.JobStatus`` as the service reports it (compare by value, never ``str()``)."""

    NOT_STARTED = "NotStarted"
    QUEUED = "Queued"
    PREPARING = "Preparing"
    PROVISIONING = "Provisioning"
    STARTING = "Starting"
    RUNNING = "Running"
    FINALIZING = "Finalizing"
    CANCEL_REQUESTED = "CancelRequested"
    CANCELED = "Canceled"
    COMPLETED = "Completed"
    FAILED = "Failed"
    NOT_RESPONDING = "NotResponding"
    PAUSED = "Paused"
    UNKNOWN = "Unknown"


# Only Completed is success. Canceled is a stop (unless the job's own timeout ended it: see
# status_from_facts); Paused does not finish on its own and NotResponding is lost: never success.
# Unknown is the service's own "cannot tell right now": still alive, bounded by the task's deadline.
PHASES = {
    AzureMLState.NOT_STARTED: JobPhase.PENDING,
    AzureMLState.QUEUED: JobPhase.PENDING,
    AzureMLState.PREPARING: JobPhase.PENDING,
    AzureMLState.PROVISIONING: JobPhase.PENDING,
    AzureMLState.STARTING: JobPhase.PENDING,
    AzureMLState.UNKNOWN: JobPhase.PENDING,
    AzureMLState.RUNNING: JobPhase.RUNNING,
    AzureMLState.FINALIZING: JobPhase.RUNNING,
    AzureMLState.CANCEL_REQUESTED: JobPhase.STOPPING,
    AzureMLState.CANCELED: JobPhase.STOPPED,
    AzureMLState.COMPLETED: JobPhase.SUCCEEDED,
    AzureMLState.FAILED: JobPhase.FAILED,
    AzureMLState.NOT_RESPONDING: JobPhase.FAILED,
    AzureMLState.PAUSED: JobPhase.FAILED,
}


def state_text(status: Any) -> str:
    """The status as the service's string: an SDK enum by its value, anything else as given."""
    if isinstance(status, Enum):
        return str(status.value)
    return "" if status is None else str(status)


def status_from_facts(facts: Mapping[str, Any], job_id: str, region: str | None) -> JobStatus:
    """A :class:`JobStatus` from :func:`job_facts`; only JSON values in it.

    ``billable_seconds`` is ``EndTimeUtc - StartTimeUtc`` from the job's properties (the span the
    compute ran it, for each instance); a terminal job that never started bills 0. A job Canceled at or
    after its ``limits.timeout`` was ended by that timeout: it is a failure saying so, not a stop.
    """
    state = str(facts.get("status") or AzureMLState.NOT_STARTED.value)
    try:
        phase = PHASES[AzureMLState(state)]
        known = True
    except ValueError:
        phase, known = JobPhase.FAILED, False
    started = _parse(facts.get("start_time"))
    ended = _parse(facts.get("end_time"))
    billable: float | None = None
    if started and ended:
        billable = max(0.0, (ended - started).total_seconds())
    elif phase.terminal and started is None:
        billable = 0.0
    raw_timeout = facts.get("timeout")
    timeout = float(raw_timeout) if isinstance(raw_timeout, (int, float)) and raw_timeout > 0 else None
    timed_out = (
        state == AzureMLState.CANCELED.value
        and billable is not None
        and timeout is not None
        and billable >= timeout
    )
    message: str | None = None
    if not known:
        message = f"Azure ML reports a status this backend does not know: {state!r}"
    elif timed_out and timeout is not None:
        phase = JobPhase.FAILED
        message = f"timed out: Azure ML canceled the job at its limits.timeout of {int(timeout)} s"
    elif not message and phase.terminal and phase != JobPhase.SUCCEEDED:
        message = f"Azure ML reports {state}"
    tags = facts.get("tags") or {}
    details: dict[str, Any] = {
        "compute": facts.get("compute") or "serverless",
        "spot": tags.get(SPOT_TAG) == "true",
        "job_tier": facts.get("job_tier"),
        "experiment_name": facts.get("experiment_name"),
        "timed_out": timed_out,
        "timeout_seconds": int(timeout) if timeout is not None else None,
    }
    output = facts.get("outputs", {}).get(MODEL_OUTPUT)
    return JobStatus(
        job_id=job_id,
        state=state,
        phase=phase,
        message=message,
        started_at=started.isoformat() if started else None,
        ended_at=ended.isoformat() if ended and phase.terminal else None,
        billable_seconds=billable,
        instance_type=facts.get("instance_type") or tags.get(INSTANCE_TYPE_TAG),
        instance_count=int(facts.get("instance_count") or 1),
        output_uri=output,
        console_url=facts.get("studio_url") or None,
        details={k: v for k, v in details.items() if v is not None},
        handle=None,
        region=region,
    )


def job_facts(job: Any) -> dict[str, Any]:
    """The facts :func:`status_from_facts` reads, taken off the SDK's ``Job`` entity (no call made)."""
    properties = dict(getattr(job, "properties", None) or {})
    resources = getattr(job, "resources", None)
    limits = getattr(job, "limits", None)
    queue = getattr(job, "queue_settings", None)
    outputs: dict[str, str] = {}
    for name, output in (getattr(job, "outputs", None) or {}).items():
        path = getattr(output, "path", None)
        if isinstance(path, str) and path:
            outputs[name] = path
    return {
        "status": state_text(getattr(job, "status", None)),
        "start_time": properties.get("StartTimeUtc"),
        "end_time": properties.get("EndTimeUtc"),
        "timeout": getattr(limits, "timeout", None),
        "instance_type": getattr(resources, "instance_type", None),
        "instance_count": getattr(resources, "instance_count", None),
        "compute": getattr(job, "compute", None),
        "job_tier": getattr(queue, "job_tier", None),
        "experiment_name": getattr(job, "experiment_name", None),
        "tags": dict(getattr(job, "tags", None) or {}),
        "outputs": outputs,
        "studio_url": getattr(job, "studio_url", None),
    }


def studio_url(subscription: str, resource_group: str, workspace: str, job_id: str) -> str:
    """The job's page in Azure ML Studio."""
    wsid = f"/subscriptions/{subscription}/resourcegroups/{resource_group}/workspaces/{workspace}"
    return f"https://ml.azure.com/runs/{quote(job_id)}?wsid={quote(wsid, safe='/')}"


def _parse(value: Any) -> datetime | None:
    """An ISO timestamp as Azure writes it (``...Z``, up to 7 fractional digits)."""
    if not value:
        return None
    text = str(value).replace("Z", "+00:00")
    head, dot, rest = text.partition(".")
    if dot:  # Python reads at most microseconds
        digits = "".join(c for c in rest if c.isdigit())
        rest = digits[:6] + rest[len(digits) :]
        text = f"{head}.{rest}"
    return datetime.fromisoformat(text)
