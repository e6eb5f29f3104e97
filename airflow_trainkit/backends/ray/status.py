"""What the Ray Jobs API says about a job (``GET /api/jobs/{id}``), read into the shared :class:`JobStatus`.

The answer echoes the job's ``runtime_env``, environment variables included: nothing here copies it.
"""

from __future__ import annotations

from datetime import UTC, datetime
from enum import StrEnum
from typing import TYPE_CHECKING, Any

from airflow_trainkit.training.backend import JobPhase, JobStatus

if TYPE_CHECKING:
    from collections.abc import Mapping

# Metadata keys the backend writes at submit and reads back here.
META_INSTANCE_TYPE = "trainkit_instance_type"
META_INSTANCE_COUNT = "trainkit_instance_count"
META_OUTPUT_URI = "trainkit_output_uri"
META_JOB_NAME = "trainkit_job_name"


class RayJobState(StrEnum):
    """``JobStatus`` of the Ray Jobs API."""

    PENDING = "PENDING"
    RUNNING = "RUNNING"
    STOPPED = "STOPPED"
    SUCCEEDED = "SUCCEEDED"
    FAILED = "FAILED"


PHASES = {
    RayJobState.PENDING: JobPhase.PENDING,
    RayJobState.RUNNING: JobPhase.RUNNING,
    RayJobState.STOPPED: JobPhase.STOPPED,
    RayJobState.SUCCEEDED: JobPhase.SUCCEEDED,
    RayJobState.FAILED: JobPhase.FAILED,
}


def status_from_job(info: Mapping[str, Any], job_id: str, console_url: str | None) -> JobStatus:
    """A :class:`JobStatus` from a job's GET answer; only JSON values, never its ``runtime_env``."""
    state = str(info.get("status") or "FAILED")
    try:
        phase = PHASES[RayJobState(state)]
    except ValueError:
        phase = JobPhase.FAILED
    metadata = info.get("metadata") or {}
    started = _iso(info.get("start_time"))
    ended = _iso(info.get("end_time")) if phase.terminal else None
    billable = None
    if info.get("start_time") and info.get("end_time") and phase.terminal:
        billable = max(0.0, (float(info["end_time"]) - float(info["start_time"])) / 1000.0)
    details: dict[str, Any] = {
        "submission_id": info.get("submission_id"),
        "ray_job_id": info.get("job_id"),
        "driver_exit_code": info.get("driver_exit_code"),
        "error_type": info.get("error_type"),
        "driver_node_id": info.get("driver_node_id"),
    }
    message = info.get("message")
    code = info.get("driver_exit_code")
    if phase == JobPhase.FAILED and code is not None and message and f"{code}" not in str(message):
        message = f"{message} (driver exit code {code})"
    try:
        count = int(metadata.get(META_INSTANCE_COUNT) or 1)
    except ValueError:
        count = 1
    return JobStatus(
        job_id=job_id,
        state=state,
        phase=phase,
        message=str(message)[:2000] if message else None,
        started_at=started,
        ended_at=ended,
        billable_seconds=billable,
        instance_type=metadata.get(META_INSTANCE_TYPE) or None,
        instance_count=max(count, 1),
        output_uri=metadata.get(META_OUTPUT_URI) or None,
        console_url=f"{console_url}/#/jobs/{info.get('job_id') or job_id}" if console_url else None,
        details={k: v for k, v in details.items() if v is not None},
    )


def _iso(millis: Any) -> str | None:
    if not millis:
        return None
    return datetime.fromtimestamp(float(millis) / 1000.0, tz=UTC).isoformat(timespec="milliseconds")
