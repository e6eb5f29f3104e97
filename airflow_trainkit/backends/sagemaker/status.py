"""What SageMaker reports about a training job, read into the shared :class:`JobStatus`.

``DescribeTrainingJob`` responses map to phases, billable time and the console link here, with no AWS call.
"""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum
from typing import TYPE_CHECKING, Any

from airflow_trainkit.training.backend import JobPhase, JobStatus

if TYPE_CHECKING:
    from collections.abc import Mapping


class SageMakerState(StrEnum):
    """``TrainingJobStatus`` as SageMaker reports it."""

    IN_PROGRESS = "InProgress"
    COMPLETED = "Completed"
    FAILED = "Failed"
    STOPPING = "Stopping"
    STOPPED = "Stopped"


PHASES = {
    SageMakerState.IN_PROGRESS: JobPhase.RUNNING,
    SageMakerState.COMPLETED: JobPhase.SUCCEEDED,
    SageMakerState.FAILED: JobPhase.FAILED,
    SageMakerState.STOPPING: JobPhase.STOPPING,
    SageMakerState.STOPPED: JobPhase.STOPPED,
}


def status_from_description(desc: Mapping[str, Any], region: str) -> JobStatus:
    """A :class:`JobStatus` from a ``DescribeTrainingJob`` response; only JSON values in it."""
    name = desc["TrainingJobName"]
    state = desc["TrainingJobStatus"]
    try:
        phase = PHASES[SageMakerState(state)]
    except ValueError:
        phase = JobPhase.FAILED
    billable = desc.get("BillableTimeInSeconds")
    training = desc.get("TrainingTimeInSeconds")
    details: dict[str, Any] = {
        "secondary_status": desc.get("SecondaryStatus"),
        "training_seconds": training,
        "spot": bool(desc.get("EnableManagedSpotTraining")),
        "job_arn": desc.get("TrainingJobArn"),
    }
    if billable is not None and training:
        details["spot_savings"] = round(1 - billable / training, 4)
    transitions = desc.get("SecondaryStatusTransitions") or []
    if transitions:
        details["transitions"] = [
            [
                t.get("Status"),
                _iso(t.get("StartTime")),
                _iso(t.get("EndTime")),
                (t.get("StatusMessage") or "")[:200],
            ]
            for t in transitions[-20:]
        ]
    final_metrics = desc.get("FinalMetricDataList") or []
    if final_metrics:
        details["final_metrics"] = {
            m["MetricName"]: m.get("Value") for m in final_metrics if "MetricName" in m
        }
    if desc.get("CheckpointConfig"):
        details["checkpoint_uri"] = desc["CheckpointConfig"].get("S3Uri")
    resources = desc.get("ResourceConfig") or {}
    message = desc.get("FailureReason")
    if not message and transitions and phase.terminal and phase != JobPhase.SUCCEEDED:
        message = transitions[-1].get("StatusMessage")
    return JobStatus(
        job_id=name,
        state=state,
        phase=phase,
        message=message,
        started_at=_iso(desc.get("TrainingStartTime") or desc.get("CreationTime")),
        ended_at=_iso(desc.get("TrainingEndTime")) if phase.terminal else None,
        billable_seconds=float(billable) if billable is not None else None,
        instance_type=resources.get("InstanceType"),
        instance_count=int(resources.get("InstanceCount") or 1),
        output_uri=(desc.get("ModelArtifacts") or {}).get("S3ModelArtifacts") or None,
        console_url=console_url(region, name),
        details={k: v for k, v in details.items() if v is not None},
        region=region,
    )


def console_url(region: str, job_id: str) -> str:
    """The AWS console page of a training job."""
    return f"https://{region}.console.aws.amazon.com/sagemaker/home?region={region}#/jobs/{job_id}"


def _iso(value: Any) -> str | None:
    if value is None:
        return None
    if isinstance(value, datetime):
        return value.isoformat()
    return str(value)
