"""A local Vertex AI JobService that speaks the REST protocol the real aiplatform_v1 client uses.

Each created CustomJob follows a plan (the states successive GetCustomJob calls report), cancel moves
a live job to CANCELLING then CANCELLED, and throttling (429) or 5xx answers can be injected. Every
create body is parsed with protobuf's ``json_format`` into the real ``CustomJob`` message (unknown
fields or bad enum values are refused, as the service would) and checked against the rules Vertex
enforces (one chief replica, label syntax, gs:// output). ListCustomJobs accepts only filters on
``display_name`` and ``labels.*``: an unfiltered listing of the project is refused, so a test fails
if the backend ever lists all jobs.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import parse_qs, unquote, urlparse

from google.protobuf import json_format
from wire_fake import Answer, ScriptedJob, WireFake
from wire_fake import Plan as BasePlan

_PARENT = r"projects/[^/]+/locations/[^/]+"
_CREATE_OR_LIST = re.compile(rf"^/v1/({_PARENT})/customJobs$")
_GET = re.compile(rf"^/v1/({_PARENT}/customJobs/[0-9]+)$")
_OBJECT = re.compile(r"^/storage/v1/b/([^/]+)/o/([^/]+)$")
_CANCEL = re.compile(rf"^/v1/({_PARENT}/customJobs/[0-9]+):cancel$")
_FILTER_TERM = re.compile(r'^(display_name|labels\.[a-z][a-z0-9_-]*)\s*=\s*"([^"]*)"$')
_LABEL_KEY = re.compile(r"^[a-z][a-z0-9_-]{0,62}$")
_LABEL_VALUE = re.compile(r"^[a-z0-9_-]{0,63}$")
_ENV_NAME = re.compile(r"^[a-zA-Z_][a-zA-Z0-9_]*$")
_TERMINAL = {"SUCCEEDED", "FAILED", "CANCELLED", "EXPIRED", "PAUSED", "PARTIALLY_SUCCEEDED"}
_LIVE = {"QUEUED", "PENDING", "RUNNING", "UPDATING"}


@dataclass
class Plan(BasePlan):
    """What one job does: the states successive GetCustomJob calls report (the last one repeats).

    States are written without the ``JOB_STATE_`` prefix. The job starts ``queued_seconds`` after it
    was created and ends ``run_seconds`` after it started, so billable time is known in advance.
    """

    states: list[str] = field(default_factory=lambda: ["PENDING", "RUNNING", "SUCCEEDED"])
    queued_seconds: int = 30
    run_seconds: int = 400
    error: str | None = None


@dataclass
class Job(ScriptedJob[Plan]):
    message: Any = None  # the CustomJob protobuf (not proto-plus) message as stored by the service
    created: datetime = field(default_factory=lambda: datetime.now(UTC))


class FakeVertex(WireFake[Plan]):
    """Run with ``start()``; give the backend ``endpoint_url`` as the connection's ``api_endpoint``."""

    plan_type = Plan
    PENDING, RUNNING, SUCCEEDED, FAILED = "PENDING", "RUNNING", "SUCCEEDED", "FAILED"

    def __init__(self) -> None:
        super().__init__()
        self.auth_headers: set[str] = set()
        self.end_before_cancel = False  # the next cancel finds the job just SUCCEEDED (a race)
        self.objects: dict[str, bytes] = {}  # "gs://bucket/path" -> content, served by the storage API
        self.logs: dict[str, list[str]] = {}  # numeric job id -> its log lines, oldest first
        self._numbers = iter(range(7_000_000_000_000_000_000, 8_000_000_000_000_000_000, 7919))

    # -- test controls ---------------------------------------------------------------------------

    def timed_plan(self, seconds: float, *, failed: bool = False, pending: float = 1.0) -> Plan:
        plan = super().timed_plan(seconds, failed=failed, pending=pending)
        plan.queued_seconds, plan.run_seconds = round(pending), max(1, round(seconds - pending))
        if failed:
            plan.error = "The replica workerpool0-0 exited with a non-zero status of 3."
        return plan

    def job_named(self, display_name: str) -> Job:
        (job,) = [j for j in self.jobs.values() if j.message.display_name == display_name]
        return job

    def _reset(self) -> None:
        self.objects.clear()
        self.logs.clear()
        self.auth_headers.clear()
        self.end_before_cancel = False

    # -- the server ------------------------------------------------------------------------------

    def answer(self, method: str, path: str, headers: Any, body: bytes) -> Answer:
        status, payload = self.handle(method, path, body.decode(), headers.get("Authorization", ""))
        hold = False
        if method == "POST" and status == 200 and _CREATE_OR_LIST.match(urlparse(path).path):
            with self.lock:
                hold = self.take_hold(payload.get("displayName", ""))
        return Answer(status, payload, hold=hold)

    def handle(self, method: str, path: str, raw: str, auth: str) -> tuple[int, dict[str, Any]]:
        url = urlparse(path)
        query = {k: v[-1] for k, v in parse_qs(url.query).items()}
        with self.lock:
            if method == "POST" and url.path == "/token":  # OAuth token endpoint, should a client ask
                return 200, {"access_token": "fake-access-token", "expires_in": 3600, "token_type": "Bearer"}
            self.auth_headers.add(auth)
            if not auth.startswith("Bearer ") or len(auth) < 20:
                return _error(401, "UNAUTHENTICATED", "Request is missing a valid credential")
            fault = self.injected_fault()
            if fault == "throttle":
                self.requests.append(("Throttled", {"path": url.path}))
                return _error(429, "RESOURCE_EXHAUSTED", "Quota exceeded for aiplatform.googleapis.com")
            if fault == "5xx":
                self.requests.append(("Unavailable", {"path": url.path}))
                return _error(503, "UNAVAILABLE", "The service is currently unavailable.")
            if method == "POST" and (m := _CREATE_OR_LIST.match(url.path)):
                return self._create(m.group(1), raw)
            if method == "GET" and (m := _CREATE_OR_LIST.match(url.path)):
                return self._list(m.group(1), query)
            if method == "GET" and (m := _GET.match(url.path)):
                return self._get(m.group(1))
            if method == "GET" and (m := _OBJECT.match(url.path)) and query.get("alt") == "media":
                uri = f"gs://{unquote(m.group(1))}/{unquote(m.group(2))}"
                self.requests.append(("GetObject", {"uri": uri}))
                if uri not in self.objects:
                    return _error(404, "NOT_FOUND", f"No such object: {uri[5:]}")
                return 200, json.loads(self.objects[uri])
            if method == "POST" and url.path == "/v2/entries:list":
                return self._entries(json.loads(raw or "{}"))
            if method == "POST" and (m := _CANCEL.match(url.path)):
                return self._cancel(m.group(1))
            return _error(404, "NOT_FOUND", f"no route {method} {url.path}")

    def _create(self, parent: str, raw: str) -> tuple[int, dict[str, Any]]:
        try:
            message = json_format.Parse(raw, _custom_job_message(), ignore_unknown_fields=False)
        except json_format.ParseError as err:
            self.requests.append(("CreateCustomJob", {"invalid": str(err)}))
            return _error(400, "INVALID_ARGUMENT", f"Invalid JSON payload received. {err}")
        body = json_format.MessageToDict(message, preserving_proto_field_name=True)
        self.requests.append(("CreateCustomJob", body))
        problem = _check(message)
        if problem:
            return _error(400, "INVALID_ARGUMENT", problem)
        name = f"{parent}/customJobs/{next(self._numbers)}"
        message.name = name
        now = datetime.now(UTC).replace(microsecond=0)
        message.create_time.FromDatetime(now)
        message.update_time.FromDatetime(now)
        _set_state(message, "PENDING")
        self.jobs[name] = Job(plan=self.next_plan(message.display_name), message=message, created=now)
        return 200, _json(message)

    def _list(self, parent: str, query: dict[str, str]) -> tuple[int, dict[str, Any]]:
        text = query.get("filter", "")
        self.requests.append(("ListCustomJobs", {"parent": parent, "filter": text}))
        terms = [t.strip() for t in text.split(" AND ")] if text else []
        wanted: dict[str, str] = {}
        for term in terms:
            match = _FILTER_TERM.match(term)
            if not match:
                return _error(400, "INVALID_ARGUMENT", f"unsupported filter term {term!r}")
            wanted[match.group(1)] = match.group(2)
        if "display_name" not in wanted:
            return _error(400, "INVALID_ARGUMENT", "this fake refuses to list a project's jobs unfiltered")
        found = [
            job
            for name, job in self.jobs.items()
            if name.startswith(parent + "/")
            and job.message.display_name == wanted["display_name"]
            and all(
                job.message.labels.get(k[len("labels.") :]) == v
                for k, v in wanted.items()
                if k != "display_name"
            )
        ]
        for job in found:  # a read through the list moves the job on, like a GetCustomJob
            self._read(job)
        return 200, {"customJobs": [_json(job.message) for job in found]} if found else {}

    def _get(self, name: str) -> tuple[int, dict[str, Any]]:
        self.requests.append(("GetCustomJob", {"name": name}))
        job = self.jobs.get(name)
        if job is None:
            return _error(404, "NOT_FOUND", f"CustomJob {name} is not found.")
        self._read(job)
        return 200, _json(job.message)

    @staticmethod
    def _read(job: Job) -> None:
        """Report the job's next planned state (or the cancel's), as each read of it does."""
        _advance(job, job.read(terminal=_TERMINAL, stopping="CANCELLING", stopped="CANCELLED"))

    def _entries(self, body: dict[str, Any]) -> tuple[int, dict[str, Any]]:
        """Cloud Logging's entries:list for one job's ``ml_job`` resource, newest first."""
        self.requests.append(("ListLogEntries", body))
        match = re.fullmatch(
            r'resource\.type="ml_job" AND resource\.labels\.job_id="([0-9]+)"', body.get("filter", "")
        )
        if not match or body.get("orderBy") != "timestamp desc" or not body.get("resourceNames"):
            return _error(400, "INVALID_ARGUMENT", f"unsupported entries:list request {body!r}")
        lines = self.logs.get(match.group(1), [])
        newest = list(reversed(lines))[: int(body.get("pageSize") or 50)]
        return 200, {
            "entries": [{"textPayload": line + "\n", "resource": {"type": "ml_job"}} for line in newest]
        }

    def _cancel(self, name: str) -> tuple[int, dict[str, Any]]:
        self.requests.append(("CancelCustomJob", {"name": name}))
        job = self.jobs.get(name)
        if job is None:
            return _error(404, "NOT_FOUND", f"CustomJob {name} is not found.")
        if self.end_before_cancel:
            self.end_before_cancel = False
            job.end_as("SUCCEEDED")
            _advance(job, "SUCCEEDED")
        if job.timed:  # the clock moved the job on since it was last read
            _advance(job, job.state)
        current = _state_name(job.message)
        if job.stop_requested or current not in _LIVE:
            return _error(
                400, "FAILED_PRECONDITION", f"Cannot cancel CustomJob {name} in state JOB_STATE_{current}."
            )
        job.request_stop(stopping="CANCELLING", stopped="CANCELLED")
        return 200, {}


def _custom_job_message() -> Any:
    """An empty ``CustomJob`` protobuf message. Imported here, not at the top: importing
    ``aiplatform_v1`` takes seconds, and every test module that names ``Plan`` imports this file."""
    from google.cloud.aiplatform_v1.types import CustomJob

    return CustomJob.pb(CustomJob())


def _advance(job: Job, state: str) -> None:
    """Write ``state`` and the times it implies into the stored message."""
    message = job.message
    _set_state(message, state)
    started = job.created + timedelta(seconds=job.plan.queued_seconds)
    ran = state in ("RUNNING", "UPDATING", "SUCCEEDED") or (
        state not in ("QUEUED", "PENDING") and "RUNNING" in job.plan.states
    )
    if ran and not message.HasField("start_time"):
        message.start_time.FromDatetime(started)
    if state in _TERMINAL and not message.HasField("end_time"):
        end = started + timedelta(seconds=job.plan.run_seconds) if message.HasField("start_time") else started
        message.end_time.FromDatetime(end)
    if state in ("FAILED", "EXPIRED") and not message.HasField("error"):
        message.error.code = 13 if state == "FAILED" else 4
        message.error.message = (
            job.plan.error or f"The replica workerpool0-0 exited with a non-zero status of 1. {state}"
        )
    message.update_time.FromDatetime(datetime.now(UTC).replace(microsecond=0))


def _set_state(message: Any, state: str) -> None:
    enum = message.DESCRIPTOR.fields_by_name["state"].enum_type
    message.state = enum.values_by_name[f"JOB_STATE_{state}"].number


def _state_name(message: Any) -> str:
    enum = message.DESCRIPTOR.fields_by_name["state"].enum_type
    return enum.values_by_number[message.state].name[len("JOB_STATE_") :]


def _check(message: Any) -> str | None:
    """Rules the service enforces beyond the message's shape."""
    if not message.display_name or len(message.display_name) > 128:
        return "display_name must be 1-128 characters"
    pools = list(message.job_spec.worker_pool_specs)
    if not pools:
        return "job_spec.worker_pool_specs must not be empty"
    if pools[0].replica_count != 1:
        return "job_spec.worker_pool_specs[0].replica_count must be 1 (the chief)"
    for i, pool in enumerate(pools):
        if not pool.machine_spec.machine_type:
            return f"worker_pool_specs[{i}].machine_spec.machine_type is required"
        if pool.machine_spec.accelerator_count and not pool.machine_spec.accelerator_type:
            return f"worker_pool_specs[{i}].machine_spec.accelerator_type is required with a count"
        if not pool.container_spec.image_uri:
            return f"worker_pool_specs[{i}].container_spec.image_uri is required"
        for var in pool.container_spec.env:
            if not _ENV_NAME.match(var.name):
                return f"worker_pool_specs[{i}].container_spec.env: bad name {var.name!r}"
    if len(message.labels) > 64:
        return "at most 64 labels"
    for key, value in message.labels.items():
        if not _LABEL_KEY.match(key) or not _LABEL_VALUE.match(value):
            return f"label {key!r}={value!r} breaks the label rules"
    prefix = message.job_spec.base_output_directory.output_uri_prefix
    if prefix and not prefix.startswith("gs://"):
        return f"base_output_directory.output_uri_prefix must be a gs:// URI, got {prefix!r}"
    return None


def _json(message: Any) -> dict[str, Any]:
    return json_format.MessageToDict(message)


def _error(code: int, status: str, message: str) -> tuple[int, dict[str, Any]]:
    return code, {"error": {"code": code, "message": message, "status": status}}
