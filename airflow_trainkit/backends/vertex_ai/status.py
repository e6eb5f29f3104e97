"""What Vertex AI reports about a CustomJob, read into the shared :class:`JobStatus`.

Works on the job's JSON form (proto field names, enums by name), so this module imports no Google SDK.
"""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum
from typing import TYPE_CHECKING, Any

from airflow_trainkit.training.backend import JobPhase, JobStatus

if TYPE_CHECKING:
    from collections.abc import Mapping


class VertexState(StrEnum):
    """``google.cloud.aiplatform.v1.JobState`` as Vertex AI reports it."""

    UNSPECIFIED = "JOB_STATE_UNSPECIFIED"
    QUEUED = "JOB_STATE_QUEUED"
    PENDING = "JOB_STATE_PENDING"
    RUNNING = "JOB_STATE_RUNNING"
    SUCCEEDED = "JOB_STATE_SUCCEEDED"
    FAILED = "JOB_STATE_FAILED"
    CANCELLING = "JOB_STATE_CANCELLING"
    CANCELLED = "JOB_STATE_CANCELLED"
    PAUSED = "JOB_STATE_PAUSED"
    EXPIRED = "JOB_STATE_EXPIRED"
    UPDATING = "JOB_STATE_UPDATING"
    PARTIALLY_SUCCEEDED = "JOB_STATE_PARTIALLY_SUCCEEDED"


# Only SUCCEEDED is success. CANCELLING is still stopping (the job may bill), so it is not terminal;
# PAUSED will not finish on its own and EXPIRED / PARTIALLY_SUCCEEDED did not finish: never success.
PHASES = {
    VertexState.UNSPECIFIED: JobPhase.PENDING,
    VertexState.QUEUED: JobPhase.PENDING,
    VertexState.PENDING: JobPhase.PENDING,
    VertexState.RUNNING: JobPhase.RUNNING,
    VertexState.UPDATING: JobPhase.RUNNING,
    VertexState.SUCCEEDED: JobPhase.SUCCEEDED,
    VertexState.FAILED: JobPhase.FAILED,
    VertexState.EXPIRED: JobPhase.FAILED,
    VertexState.PARTIALLY_SUCCEEDED: JobPhase.FAILED,
    VertexState.CANCELLING: JobPhase.STOPPING,
    VertexState.CANCELLED: JobPhase.STOPPED,
    VertexState.PAUSED: JobPhase.STOPPED,
}

# The label that carries our deterministic job name; re-attach looks the job up by it.
JOB_ID_LABEL = "trainkit-job-id"


def status_from_job(job: Mapping[str, Any], job_id: str, project: str, region: str) -> JobStatus:
    """A :class:`JobStatus` from a CustomJob's JSON form; only JSON values in it.

    ``billable_seconds`` is ``end_time - start_time``: Vertex sets ``start_time`` when the job
    first enters RUNNING and ``end_time`` when it enters a terminal state, and bills each replica for
    that span. A terminal job that never started bills nothing (0); a job still running has ``None``.
    """
    state = str(job.get("state") or VertexState.UNSPECIFIED.value)
    try:
        phase = PHASES[VertexState(state)]
    except ValueError:
        phase = JobPhase.FAILED
    name = str(job.get("name") or "")
    numeric_id = name.rsplit("/", 1)[-1]
    spec = job.get("job_spec") or {}
    pools = [p for p in spec.get("worker_pool_specs") or [] if p]
    machine = (pools[0].get("machine_spec") or {}) if pools else {}
    started = _parse(job.get("start_time"))
    ended = _parse(job.get("end_time"))
    billable: float | None = None
    if started and ended:
        billable = max(0.0, (ended - started).total_seconds())
    elif phase.terminal and started is None:
        billable = 0.0
    base = ((spec.get("base_output_directory") or {}).get("output_uri_prefix") or "").rstrip("/")
    error = job.get("error") or {}
    message = error.get("message") or None
    if not message and phase.terminal and phase != JobPhase.SUCCEEDED:
        message = f"Vertex AI reports {state}"
    scheduling = spec.get("scheduling") or {}
    details: dict[str, Any] = {
        "resource_name": name or None,
        "spot": scheduling.get("strategy") == "SPOT",
        "machine_type": machine.get("machine_type"),
        "accelerator_type": machine.get("accelerator_type"),
        "accelerator_count": machine.get("accelerator_count"),
        "error_code": error.get("code"),
        "create_time": job.get("create_time"),
        "update_time": job.get("update_time"),
    }
    return JobStatus(
        job_id=job_id,
        state=state,
        phase=phase,
        message=message,
        started_at=started.isoformat() if started else None,
        ended_at=ended.isoformat() if ended and phase.terminal else None,
        billable_seconds=billable,
        instance_type=machine.get("machine_type"),
        instance_count=sum(int(p.get("replica_count") or 0) for p in pools) or 1,
        output_uri=f"{base}/model" if base else None,
        console_url=console_url(project, region, numeric_id) if numeric_id else None,
        details={k: v for k, v in details.items() if v not in (None, "", 0)} | {"spot": details["spot"]},
        handle=name or None,
        region=region,
    )


def console_url(project: str, region: str, numeric_id: str) -> str:
    """The Cloud console page of a CustomJob (the console knows a job by its numeric id only)."""
    return (
        f"https://console.cloud.google.com/vertex-ai/locations/{region}/training/{numeric_id}/cpu"
        f"?project={project}"
    )


def _parse(value: Any) -> datetime | None:
    """An RFC 3339 timestamp as protobuf's JSON writes it (``...Z``, up to nanoseconds)."""
    if not value:
        return None
    text = str(value).replace("Z", "+00:00")
    head, dot, rest = text.partition(".")
    if dot:  # Python reads at most microseconds
        digits = "".join(c for c in rest if c.isdigit())
        rest = digits[:6] + rest[len(digits) :]
        text = f"{head}.{rest}"
    return datetime.fromisoformat(text)
