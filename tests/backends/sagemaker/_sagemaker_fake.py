"""A local SageMaker stand-in that speaks the JSON 1.1 protocol and moves jobs through scripted states.

moto marks a training job Completed at once, has no StopTrainingJob and overwrites duplicate names,
so it cannot prove state handling. This server can: each created job follows a plan (states reported
by successive describes), stop moves it to Stopping then Stopped, and throttling or 5xx answers can
be injected. Requests are checked server-side against botocore's own SageMaker service model
(required members, lengths, patterns, enums), as the service would, and logged for assertions.
"""

from __future__ import annotations

import functools
import json
import time
from dataclasses import dataclass, field
from typing import Any

import regex
from wire_fake import Answer, ScriptedJob, WireFake
from wire_fake import Plan as BasePlan


@functools.cache
def _model() -> Any:
    """botocore's SageMaker service model (loaded on first use: seconds, at every collection)."""
    import botocore.session

    return botocore.session.get_session().get_service_model("sagemaker")


_TERMINAL = {"Completed", "Failed", "Stopped"}


@dataclass
class Plan(BasePlan):
    """What one job does: the states successive describes report (the last one repeats)."""

    states: list[str] = field(default_factory=lambda: ["InProgress", "InProgress", "Completed"])
    billable_seconds: int = 400
    training_seconds: int = 400
    failure_reason: str | None = None
    final_metrics: dict[str, float] | None = None


@dataclass
class Job(ScriptedJob[Plan]):
    request: dict[str, Any] = field(default_factory=dict)
    created: float = 0.0


class FakeSageMaker(WireFake[Plan]):
    """Run with ``start()``; point boto3 at ``endpoint_url``."""

    plan_type = Plan
    content_type = "application/x-amz-json-1.1"
    # A timed plan's states: SageMaker reports InProgress from the create (SecondaryStatus Starting).
    PENDING = RUNNING = "InProgress"
    SUCCEEDED, FAILED = "Completed", "Failed"

    def calls(self, operation: str, name: str | None = None) -> list[dict[str, Any]]:  # type: ignore[override]
        return super().calls(operation) if name is None else super().calls(operation, TrainingJobName=name)

    def timed_plan(self, seconds: float, *, failed: bool = False, pending: float = 1.0) -> Plan:
        plan = super().timed_plan(seconds, failed=failed, pending=pending)
        plan.billable_seconds = plan.training_seconds = max(1, int(seconds - pending))
        if failed:
            plan.failure_reason = "AlgorithmError: the training script exited with status 3"
        return plan

    def answer(self, method: str, path: str, headers: Any, body: bytes) -> Answer:
        target, request = headers.get("X-Amz-Target", ""), json.loads(body or b"{}")
        status, payload = self.handle(target, request)
        hold = False
        if target == "SageMaker.CreateTrainingJob" and status == 200:
            with self.lock:
                hold = self.take_hold(request["TrainingJobName"])
        return Answer(status, payload, {"x-amzn-RequestId": "fake-request"}, hold=hold)

    def handle(self, target: str, body: dict[str, Any]) -> tuple[int, dict[str, Any]]:
        service, _, operation = target.partition(".")
        with self.lock:
            self.requests.append((operation, body))
            fault = self.injected_fault()
            if fault == "throttle":
                return 400, {"__type": "ThrottlingException", "message": "Rate exceeded"}
            if fault == "5xx":
                return 500, {"__type": "InternalFailure", "message": "We encountered an internal error"}
            if service != "SageMaker" or operation not in _model().operation_names:
                return 400, {"__type": "UnknownOperationException", "message": target}
            problem = _validate(_model().operation_model(operation).input_shape, body, "")
            if problem:
                return 400, {"__type": "ValidationException", "message": problem}
            handler = getattr(self, f"_{operation}", None)
            if handler is None:
                return 400, {"__type": "UnknownOperationException", "message": operation}
            return handler(body)

    def _CreateTrainingJob(self, body: dict[str, Any]) -> tuple[int, dict[str, Any]]:  # noqa: N802
        name = body["TrainingJobName"]
        if name in self.jobs:
            return 400, {
                "__type": "ResourceInUse",
                "message": f"Training job names must be unique within an AWS account and region, "
                f"and a training job with this name already exists ({name})",
            }
        self.jobs[name] = Job(plan=self.next_plan(name), request=body, created=time.time())
        return 200, {"TrainingJobArn": _arn(name)}

    def _DescribeTrainingJob(self, body: dict[str, Any]) -> tuple[int, dict[str, Any]]:  # noqa: N802
        job = self.jobs.get(body["TrainingJobName"])
        if job is None:
            return 400, {"__type": "ValidationException", "message": "Requested resource not found."}
        state = job.read(terminal=_TERMINAL, stopping="Stopping", stopped="Stopped")
        return 200, _description(job, state)

    def _StopTrainingJob(self, body: dict[str, Any]) -> tuple[int, dict[str, Any]]:  # noqa: N802
        job = self.jobs.get(body["TrainingJobName"])
        if job is None:
            return 400, {"__type": "ValidationException", "message": "Requested resource not found."}
        if job.state != "InProgress" or job.stop_requested:
            scripted_stop = not job.timed and job.stop_requested and not job.stop_reported
            current = "Stopping" if scripted_stop else job.state
            return 400, {
                "__type": "ValidationException",
                "message": f"The request was rejected because the training job is in status {current}.",
            }
        job.request_stop(stopping="Stopping", stopped="Stopped")
        return 200, {}


def _arn(name: str) -> str:
    return f"arn:aws:sagemaker:us-east-1:123456789012:training-job/{name}"


def _description(job: Job, state: str) -> dict[str, Any]:
    req = job.request
    now = time.time()
    terminal = state in ("Completed", "Failed", "Stopped")
    transitions = [
        {"Status": "Starting", "StartTime": job.created - 1, "StatusMessage": "Preparing the instances"}
    ]
    if state != "InProgress" or job.step > 0:
        transitions[0]["EndTime"] = job.created
        transitions.append({"Status": "Training", "StartTime": job.created, "StatusMessage": "Training"})
    secondary = {"Completed": "Completed", "Failed": "Failed", "Stopping": "Stopping", "Stopped": "Stopped"}
    desc: dict[str, Any] = {
        "TrainingJobName": req["TrainingJobName"],
        "TrainingJobArn": _arn(req["TrainingJobName"]),
        "ModelArtifacts": {"S3ModelArtifacts": ""},
        "TrainingJobStatus": state,
        "SecondaryStatus": secondary.get(state, transitions[-1]["Status"]),
        "AlgorithmSpecification": req["AlgorithmSpecification"],
        "RoleArn": req["RoleArn"],
        "OutputDataConfig": req["OutputDataConfig"],
        "ResourceConfig": req["ResourceConfig"],
        "StoppingCondition": req["StoppingCondition"],
        "CreationTime": job.created - 1,
        "TrainingStartTime": job.created,
        "LastModifiedTime": now,
        "SecondaryStatusTransitions": transitions,
        "EnableManagedSpotTraining": bool(req.get("EnableManagedSpotTraining")),
    }
    if req.get("CheckpointConfig"):
        desc["CheckpointConfig"] = req["CheckpointConfig"]
    if req.get("HyperParameters"):
        desc["HyperParameters"] = req["HyperParameters"]
    if terminal:
        transitions[-1]["EndTime"] = now
        transitions.append({"Status": secondary[state], "StartTime": now, "StatusMessage": state})
        desc["TrainingEndTime"] = now
        desc["TrainingTimeInSeconds"] = job.plan.training_seconds
        desc["BillableTimeInSeconds"] = job.plan.billable_seconds
    if state == "Completed":
        output = req["OutputDataConfig"]["S3OutputPath"].rstrip("/")
        desc["ModelArtifacts"] = {
            "S3ModelArtifacts": f"{output}/{req['TrainingJobName']}/output/model.tar.gz"
        }
        if job.plan.final_metrics:
            desc["FinalMetricDataList"] = [
                {"MetricName": k, "Value": v, "Timestamp": now} for k, v in job.plan.final_metrics.items()
            ]
    if state == "Failed":
        desc["FailureReason"] = job.plan.failure_reason or "AlgorithmError: see the job's log"
    return desc


def _validate(shape: Any, value: Any, path: str) -> str | None:
    """What the service would refuse: required members, lengths, patterns and enums of the model."""
    kind = shape.type_name
    if kind == "structure":
        if not isinstance(value, dict):
            return f"{path or 'request'}: expected a structure"
        for name in shape.required_members:
            if name not in value:
                return f"{path}{name}: required"
        for name, item in value.items():
            if name not in shape.members:
                return f"{path}{name}: unknown member"
            problem = _validate(shape.members[name], item, f"{path}{name}.")
            if problem:
                return problem
    elif kind == "list":
        for i, item in enumerate(value):
            problem = _validate(shape.member, item, f"{path}[{i}].")
            if problem:
                return problem
        if "max" in shape.metadata and len(value) > shape.metadata["max"]:
            return f"{path}: more than {shape.metadata['max']} items"
    elif kind == "map":
        if "max" in shape.metadata and len(value) > shape.metadata["max"]:
            return f"{path}: more than {shape.metadata['max']} entries"
        for key, item in value.items():
            problem = _validate(shape.key, key, f"{path}<key {key}>.") or _validate(
                shape.value, item, f"{path}{key}."
            )
            if problem:
                return problem
    elif kind == "string":
        meta = shape.metadata
        if "max" in meta and len(value) > meta["max"]:
            return f"{path.rstrip('.')}: longer than {meta['max']}"
        if "pattern" in meta and not regex.fullmatch(meta["pattern"], value):
            return f"{path.rstrip('.')}: {value!r} does not match {meta['pattern']}"
        if shape.enum and value not in shape.enum:
            return f"{path.rstrip('.')}: {value!r} is not one of the allowed values"
    elif kind in ("integer", "long"):
        if "max" in shape.metadata and value > shape.metadata["max"]:
            return f"{path.rstrip('.')}: more than {shape.metadata['max']}"
    return None
