"""A local Azure ML workspace (ARM), token endpoint and blob store, answering the real azure-ai-ml client.

The backend reaches it through its connection's ``api_endpoint`` (a redirecting azure-core transport:
the SDK still builds requests for ``management.azure.com``, ``login.microsoftonline.com`` and
``<account>.blob.core.windows.net``, which arrive here with the original host in ``X-Forwarded-Host``).

Each created job follows a plan (the states successive GETs report), cancel moves a live job to
CancelRequested then Canceled, and throttling (429, with or without ``Retry-After``), 5xx answers and
failing cancel POSTs can be injected. Every job and environment body is checked field by field
against the SDK's own REST models (``azure.ai.ml._restclient.arm_ml_service.models``: unknown fields,
wrong types, unknown discriminators and enum values are refused, as the service would) and against
the rules the service enforces beyond the shape. Nothing here lists jobs: a listing is a 404.

The blob service answers what azure-storage-blob (sync, and the async client adlfs uses) sends to read
a folder: Get Blob Properties (HEAD), Get Blob with a byte range, Get Container Properties and List
Blobs with a prefix and a delimiter, with the REST protocol's headers and XML bodies, and XML errors
(``BlobNotFound``, ``ContainerNotFound``, ``AuthenticationFailed``). Besides the redirected host, it
answers path-style URLs as the storage emulator does (``http://127.0.0.1:<port>/<account>/<container>/
<blob>``: a connection string's ``BlobEndpoint``), authorised by a bearer token it issued or a SAS it
issued for that account (``issue_sas``); anything else is 403.
"""

from __future__ import annotations

import datetime as dt
import enum
import json
import re
import typing
import uuid
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from email.utils import format_datetime
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, unquote, urlparse
from xml.sax.saxutils import escape

from wire_fake import Answer, ScriptedJob, WireFake
from wire_fake import Plan as BasePlan

ARM = "management.azure.com"
LOGIN = "login.microsoftonline.com"
_WS = r"/subscriptions/([^/]+)/resourceGroups/([^/]+)/providers/Microsoft\.MachineLearningServices/workspaces/([^/]+)"
_JOB = re.compile(rf"^{_WS}/jobs/([^/]+)$")
_CANCEL = re.compile(rf"^{_WS}/jobs/([^/]+)/cancel$")
_ENV = re.compile(rf"^{_WS}/environments/([^/]+)/versions/([^/]+)$")
_COMPUTE = re.compile(rf"^{_WS}/computes/([^/]+)$")
_DATASTORE = re.compile(rf"^{_WS}/datastores/([^/]+)$")
_OPERATION = re.compile(
    r"^/subscriptions/[^/]+/providers/Microsoft\.MachineLearningServices/locations/[^/]+/mfeOperationResults/(.+)$"
)
_BLOB_HOST = re.compile(r"^([a-z0-9]+)\.blob\.core\.windows\.net$")
_RANGE = re.compile(r"^bytes=(\d+)-(\d*)$")
BLOB_CREATED = datetime(2026, 1, 5, 10, 0, tzinfo=dt.UTC)
_TERMINAL = {"Completed", "Failed", "Canceled", "NotResponding", "Paused"}
_LIVE = {"NotStarted", "Queued", "Preparing", "Provisioning", "Starting", "Running", "Finalizing"}
_JOB_TIERS = {"null", "spot", "basic", "standard", "premium"}
_JOB_NAME = re.compile(r"^[a-zA-Z0-9][a-zA-Z0-9_-]{0,254}$")
_ENV_NAME = re.compile(r"^[a-zA-Z_][a-zA-Z0-9_]*$")


@dataclass
class Plan(BasePlan):
    """What one job does: the states successive GETs report (the last one repeats).

    The job starts ``queued_seconds`` after it was created and runs ``run_seconds``, so its
    ``StartTimeUtc`` / ``EndTimeUtc`` (and billable time) are known in advance.
    """

    states: list[str] = field(default_factory=lambda: ["NotStarted", "Queued", "Running", "Completed"])
    queued_seconds: int = 30
    run_seconds: int = 400


@dataclass
class Job(ScriptedJob[Plan]):
    body: dict[str, Any] = field(default_factory=dict)
    created: datetime = field(default_factory=lambda: datetime.now(dt.UTC))


class FakeAzureML(WireFake[Plan]):
    """Run with ``start()``; give the backend ``endpoint_url`` as the connection's ``api_endpoint``."""

    plan_type = Plan
    PENDING, RUNNING, SUCCEEDED, FAILED = "Queued", "Running", "Completed", "Failed"
    # Retry-After of the throttles of a fault window, unless ``retry_after`` sets one.
    WINDOW_RETRY_AFTER = "2"

    def __init__(self) -> None:
        super().__init__()
        self.tokens: set[str] = set()
        self.auth_headers: set[str] = set()
        self.token_requests: list[dict[str, str]] = []  # form fields of token requests, secret left out
        self.secrets_seen: list[str] = []  # client secrets the token endpoint received (to check no leak)
        self.computes: dict[str, dict[str, Any]] = {}
        self.datastores: dict[str, dict[str, Any]] = {}
        self.blobs: dict[tuple[str, str, str], bytes] = {}  # (account, container, path) -> content
        self.sas_tokens: dict[str, str] = {}  # signature -> the account it was issued for
        self.retry_after: str | None = None  # Retry-After of injected throttles (None: no header)
        self.cancel_faults: list[int] = []  # statuses the next cancel POSTs answer (no Retry-After)
        self.end_before_cancel = False  # the next cancel finds the job just Completed (a race)

    # -- test controls ---------------------------------------------------------------------------

    def job(self, name: str) -> Job:
        return self.jobs[name]

    def timed_plan(self, seconds: float, *, failed: bool = False, pending: float = 1.0) -> Plan:
        plan = super().timed_plan(seconds, failed=failed, pending=pending)
        plan.queued_seconds, plan.run_seconds = round(pending), max(1, round(seconds - pending))
        return plan

    def add_cluster(self, name: str, vm_size: str, *, low_priority: bool, max_nodes: int = 4) -> None:
        self.computes[name] = {
            "computeType": "AmlCompute",
            "computeLocation": "eastus",
            "provisioningState": "Succeeded",
            "properties": {
                "vmSize": vm_size,
                "vmPriority": "LowPriority" if low_priority else "Dedicated",
                "scaleSettings": {"maxNodeCount": max_nodes, "minNodeCount": 0},
            },
        }

    def add_datastore(self, name: str, account: str, container: str) -> None:
        self.datastores[name] = {
            "datastoreType": "AzureBlob",
            "accountName": account,
            "containerName": container,
            "endpoint": "core.windows.net",
            "protocol": "https",
            "credentials": {"credentialsType": "None"},
        }

    def put_blob(self, account: str, container: str, path: str, data: bytes) -> None:
        self.blobs[(account, container, path)] = data

    def put_folder(self, account: str, container: str, prefix: str, folder: Path) -> list[str]:
        """Every file under ``folder`` as a blob under ``prefix``: what a job's mounted output leaves
        in its datastore. Returns the blob names."""
        names = []
        for file in sorted(p for p in folder.rglob("*") if p.is_file()):
            name = f"{prefix.strip('/')}/{file.relative_to(folder).as_posix()}"
            self.put_blob(account, container, name, file.read_bytes())
            names.append(name)
        return names

    def issue_sas(self, account: str) -> str:
        """A SAS query string for ``account`` (read and list), which this fake will accept."""
        signature = uuid.uuid4().hex
        self.sas_tokens[signature] = account
        return f"sv=2025-01-05&ss=b&srt=co&sp=rl&se=2030-01-01T00%3A00%3A00Z&spr=https%2Chttp&sig={signature}"

    def _reset(self) -> None:
        self.auth_headers.clear()
        self.token_requests.clear()
        self.computes.clear()
        self.datastores.clear()
        self.blobs.clear()
        self.sas_tokens.clear()
        self.retry_after = None
        self.cancel_faults = []
        self.end_before_cancel = False

    # -- the server ------------------------------------------------------------------------------

    def answer(self, method: str, path: str, headers: Any, body: bytes) -> Answer:
        host = (headers.get("X-Forwarded-Host") or "").split(":")[0]
        url = urlparse(path)
        route = unquote(url.path)
        with self.lock:
            if host == LOGIN:
                return self._login(method, route, body)
            if not host:  # path-style, as the storage emulator: /<account>/<container>/<blob>
                account, _, rest = route.lstrip("/").partition("/")
                if not self._blob_authorised(account, headers, url.query):
                    self.requests.append(
                        ("BlobRefused", {"account": account, "method": method, "path": rest})
                    )
                    return _storage_error(403, "AuthenticationFailed", method)
                return self._blob(method, account, f"/{rest}", url.query, headers)
            auth = headers.get("Authorization", "")
            self.auth_headers.add(auth)
            if not auth.startswith("Bearer ") or auth[len("Bearer ") :] not in self.tokens:
                return _error(401, "InvalidAuthenticationToken", "The access token is invalid.")
            if (m := _BLOB_HOST.match(host)) is not None:
                return self._blob(method, m.group(1), route, url.query, headers)
            if host != ARM:
                return _error(404, "NoRoute", f"no service at host {host!r}")
            fault = self.injected_fault()
            if fault == "throttle":
                self.requests.append(("Throttled", {"path": route}))
                retry_after = self.retry_after
                if retry_after is None and self.window_open("throttle"):
                    retry_after = self.WINDOW_RETRY_AFTER
                headers_out = {"Retry-After": retry_after} if retry_after is not None else {}
                return Answer(429, _error_body("TooManyRequests", "Rate limit exceeded"), headers_out)
            if fault == "5xx":
                self.requests.append(("Unavailable", {"path": route}))
                return _error(503, "ServiceUnavailable", "The service is temporarily unavailable.")
            if method == "PUT" and (m := _JOB.match(route)):
                return self._create(m.groups(), body)
            if method == "GET" and (m := _JOB.match(route)):
                return self._get(m.group(4))
            if method == "POST" and (m := _CANCEL.match(route)):
                return self._cancel(m.groups())
            if method == "PUT" and (m := _ENV.match(route)):
                return self._environment(route, m.group(4), m.group(5), body)
            if method == "GET" and (m := _COMPUTE.match(route)):
                return self._compute(route, m.group(4))
            if method == "GET" and (m := _DATASTORE.match(route)):
                return self._datastore(route, m.group(4))
            if method == "GET" and _OPERATION.match(route):
                self.requests.append(("GetOperationResult", {"path": route}))
                return Answer(200, {})
            return _error(404, "NoRoute", f"no route {method} {route}")

    def _login(self, method: str, route: str, body: bytes) -> Answer:
        tenant = route.strip("/").split("/", 1)[0]
        if method == "GET" and route.endswith("/v2.0/.well-known/openid-configuration"):
            base = f"https://{LOGIN}/{tenant}"
            return Answer(
                200,
                {
                    "token_endpoint": f"{base}/oauth2/v2.0/token",
                    "authorization_endpoint": f"{base}/oauth2/v2.0/authorize",
                    "issuer": f"{base}/v2.0",
                    "device_authorization_endpoint": f"{base}/oauth2/v2.0/devicecode",
                },
            )
        if method == "POST" and route.endswith("/oauth2/v2.0/token"):
            form = {k: v[-1] for k, v in parse_qs(body.decode()).items()}
            if "client_secret" in form:
                self.secrets_seen.append(form.pop("client_secret"))
            self.token_requests.append({"tenant": tenant, **form})
            if not form.get("client_id") or "scope" not in form:
                return Answer(400, {"error": "invalid_request", "error_description": "client_id and scope"})
            token = f"fake-token-{uuid.uuid4().hex}"
            self.tokens.add(token)
            return Answer(
                200,
                {"token_type": "Bearer", "expires_in": 3599, "ext_expires_in": 3599, "access_token": token},
            )
        return Answer(404, {"error": "not_found", "error_description": route})

    def _create(self, ids: tuple[str, ...], raw: bytes) -> Answer:
        sub, group, ws, name = ids
        body = json.loads(raw or b"{}")
        self.requests.append(("CreateJob", {"name": name, **body}))
        problems = model_problems("JobBase", body) or _job_rules(name, body)
        if problems:
            return _error(400, "UserError", "; ".join(problems))
        if name in self.jobs:
            return _error(409, "UserError", f"A job with the name {name} already exists.")
        now = datetime.now(dt.UTC).replace(microsecond=0)
        props = json.loads(json.dumps(body["properties"]))  # the record keeps what was sent
        props["status"] = "NotStarted"
        wsid = f"/subscriptions/{sub}/resourcegroups/{group}/workspaces/{ws}"
        props["services"] = {
            "Studio": {
                "jobServiceType": "Studio",
                "endpoint": f"https://ml.azure.com/runs/{name}?wsid={wsid}",
            }
        }
        props.setdefault("properties", {})
        stored = {
            "id": f"/subscriptions/{sub}/resourceGroups/{group}/providers/Microsoft.MachineLearningServices/workspaces/{ws}/jobs/{name}",
            "name": name,
            "type": "Microsoft.MachineLearningServices/workspaces/jobs",
            "systemData": {"createdAt": now.isoformat().replace("+00:00", "Z"), "createdBy": "trainkit-test"},
            "properties": props,
        }
        self.jobs[name] = Job(plan=self.next_plan(name), body=stored, created=now)
        return Answer(201, stored, hold=self.take_hold(name))

    def _get(self, name: str) -> Answer:
        self.requests.append(("GetJob", {"name": name}))
        job = self.jobs.get(name)
        if job is None:
            return _error(404, "UserError", f"Could not find job {name}")
        _advance(job, job.read(terminal=_TERMINAL, stopping="CancelRequested", stopped="Canceled"))
        return Answer(200, job.body)

    def _cancel(self, ids: tuple[str, ...]) -> Answer:
        sub, _group, _ws, name = ids
        self.requests.append(("CancelJob", {"name": name}))
        if self.cancel_faults:
            code = self.cancel_faults.pop(0)
            self.requests.append(("CancelFault", {"name": name, "status": code}))
            return _error(code, "TooManyRequests" if code == 429 else "BadGateway", f"injected {code}")
        job = self.jobs.get(name)
        if job is None:
            return _error(404, "UserError", f"Could not find job {name}")
        if self.end_before_cancel:
            self.end_before_cancel = False
            job.end_as("Completed")
            _advance(job, "Completed")
        if job.timed:  # the clock moved the job on since it was last read
            _advance(job, job.state)
        current = job.body["properties"]["status"]
        if current in _TERMINAL:
            return _error(400, "UserError", f"Cannot cancel job {name} in status {current}")
        if not job.stop_requested:
            job.request_stop(stopping="CancelRequested", stopped="Canceled")
        location = (
            f"https://{ARM}/subscriptions/{sub}/providers/Microsoft.MachineLearningServices/locations/eastus/"
            f"mfeOperationResults/jc:{name}?api-version=2023-04-01-preview"
        )
        return Answer(202, {}, {"Location": location})

    def _environment(self, route: str, name: str, version: str, raw: bytes) -> Answer:
        body = json.loads(raw or b"{}")
        self.requests.append(("CreateEnvironment", {"name": name, "version": version, **body}))
        problems = model_problems("EnvironmentVersion", body)
        if not (body.get("properties") or {}).get("image"):
            problems.append("properties.image is required for an image environment")
        if problems:
            return _error(400, "UserError", "; ".join(problems))
        return Answer(201, {"id": route, "name": version, "properties": body["properties"]})

    def _compute(self, route: str, name: str) -> Answer:
        self.requests.append(("GetCompute", {"name": name}))
        if name not in self.computes:
            return _error(404, "ResourceNotFound", f"Compute {name} not found")
        return Answer(
            200, {"id": route, "name": name, "location": "eastus", "properties": self.computes[name]}
        )

    def _datastore(self, route: str, name: str) -> Answer:
        self.requests.append(("GetDatastore", {"name": name}))
        if name not in self.datastores:
            return _error(404, "UserError", f"Datastore {name} not found")
        return Answer(200, {"id": route, "name": name, "properties": self.datastores[name]})

    def _blob_authorised(self, account: str, headers: Any, query: str) -> bool:
        auth = headers.get("Authorization", "")
        if auth.startswith("Bearer ") and auth[len("Bearer ") :] in self.tokens:
            return True
        signature = (parse_qs(query).get("sig") or [""])[-1]
        return bool(signature) and self.sas_tokens.get(signature) == account

    def _blob(self, method: str, account: str, route: str, query: str, headers: Any) -> Answer:
        """The blob service's read side: one blob's properties or bytes, a container, a listing."""
        container, _, path = route.lstrip("/").partition("/")
        params = {k: v[-1] for k, v in parse_qs(query).items()}
        if method not in ("GET", "HEAD"):
            return _storage_error(405, "UnsupportedHttpVerb", method)
        in_container = {p: d for (a, c, p), d in self.blobs.items() if (a, c) == (account, container)}
        if params.get("restype") == "container":
            if not in_container:
                return _storage_error(404, "ContainerNotFound", method)
            if params.get("comp") == "list":
                return self._list_blobs(account, container, in_container, params)
            self.requests.append(("GetContainerProperties", {"account": account, "container": container}))
            return Answer(200, b"", {**_blob_headers(), "x-ms-has-immutability-policy": "false"})
        operation = "GetBlobProperties" if method == "HEAD" else "GetBlob"
        self.requests.append((operation, {"account": account, "container": container, "path": path}))
        data = in_container.get(path)
        if data is None:
            return _storage_error(404, "ContainerNotFound" if not in_container else "BlobNotFound", method)
        out = {
            **_blob_headers(),
            "x-ms-blob-type": "BlockBlob",
            "Content-Type": "application/octet-stream",
            "Accept-Ranges": "bytes",
        }
        if method == "HEAD":
            return Answer(200, data, {**out, "x-ms-access-tier": "Hot", "x-ms-access-tier-inferred": "true"})
        wanted = headers.get("x-ms-range") or headers.get("Range")
        if not wanted:
            return Answer(200, data, out)
        match = _RANGE.match(wanted)
        if match is None:
            return _storage_error(400, "InvalidHeaderValue", method)
        start = int(match.group(1))
        end = min(int(match.group(2)) if match.group(2) else len(data) - 1, len(data) - 1)
        if start >= len(data):
            return _storage_error(416, "InvalidRange", method, {"Content-Range": f"bytes */{len(data)}"})
        return Answer(
            206, data[start : end + 1], {**out, "Content-Range": f"bytes {start}-{end}/{len(data)}"}
        )

    def _list_blobs(
        self, account: str, container: str, blobs: dict[str, bytes], params: dict[str, str]
    ) -> Answer:
        """List Blobs: names under ``prefix``, folded at ``delimiter`` into ``BlobPrefix`` entries,
        in name order, ``maxresults`` a page with a ``NextMarker``."""
        prefix, delimiter = params.get("prefix", ""), params.get("delimiter", "")
        self.requests.append(
            (
                "ListBlobs",
                {"account": account, "container": container, "prefix": prefix, "delimiter": delimiter},
            )
        )
        entries: dict[str, str | None] = {}  # name -> None for a prefix, else the blob's name
        for name in sorted(blobs):
            if not name.startswith(prefix):
                continue
            cut = name.find(delimiter, len(prefix)) if delimiter else -1
            if cut >= 0:
                entries.setdefault(name[: cut + len(delimiter)], None)
            else:
                entries[name] = name
        names = sorted(entries)
        marker = params.get("marker", "")
        names = [n for n in names if n >= marker] if marker else names
        limit = int(params.get("maxresults") or 5000)
        page, rest = names[:limit], names[limit:]
        stamp = format_datetime(BLOB_CREATED, usegmt=True)
        items = []
        for name in page:
            if entries[name] is None:
                items.append(f"<BlobPrefix><Name>{escape(name)}</Name></BlobPrefix>")
                continue
            items.append(
                f"<Blob><Name>{escape(name)}</Name><Properties><Creation-Time>{stamp}</Creation-Time>"
                f"<Last-Modified>{stamp}</Last-Modified><Etag>0x8DC0000000000</Etag>"
                f"<Content-Length>{len(blobs[name])}</Content-Length>"
                "<Content-Type>application/octet-stream</Content-Type><BlobType>BlockBlob</BlobType>"
                "<AccessTier>Hot</AccessTier><AccessTierInferred>true</AccessTierInferred>"
                "<LeaseStatus>unlocked</LeaseStatus><LeaseState>available</LeaseState>"
                "<ServerEncrypted>true</ServerEncrypted></Properties></Blob>"
            )
        xml = (
            '<?xml version="1.0" encoding="utf-8"?>'
            f'<EnumerationResults ServiceEndpoint="https://{account}.blob.core.windows.net/" '
            f'ContainerName="{escape(container)}"><Prefix>{escape(prefix)}</Prefix>'
            f"{f'<Marker>{escape(marker)}</Marker>' if marker else ''}"
            f"<MaxResults>{limit}</MaxResults>"
            f"{f'<Delimiter>{escape(delimiter)}</Delimiter>' if delimiter else ''}"
            f"<Blobs>{''.join(items)}</Blobs>"
            f"<NextMarker>{escape(rest[0]) if rest else ''}</NextMarker></EnumerationResults>"
        )
        return Answer(200, xml.encode(), {**_blob_headers(), "Content-Type": "application/xml"})


def _blob_headers() -> dict[str, str]:
    """The headers every blob service answer carries."""
    stamp = format_datetime(BLOB_CREATED, usegmt=True)
    return {
        "ETag": '"0x8DC0000000000"',
        "Last-Modified": stamp,
        "x-ms-creation-time": stamp,
        "x-ms-request-id": str(uuid.uuid4()),
        "x-ms-version": "2026-02-06",
        "x-ms-server-encrypted": "true",
        "x-ms-lease-state": "available",
        "x-ms-lease-status": "unlocked",
    }


def _storage_error(status: int, code: str, method: str, extra: dict[str, str] | None = None) -> Answer:
    """The blob service's error: ``x-ms-error-code`` and, but for HEAD, an XML ``<Error>`` body."""
    headers = {"x-ms-error-code": code, "x-ms-request-id": str(uuid.uuid4()), **(extra or {})}
    if method == "HEAD":
        return Answer(status, b"", headers)
    xml = (
        f'<?xml version="1.0" encoding="utf-8"?><Error><Code>{code}</Code>'
        f"<Message>{code}\nRequestId:{headers['x-ms-request-id']}</Message></Error>"
    )
    return Answer(status, xml.encode(), {**headers, "Content-Type": "application/xml"})


def _advance(job: Job, state: str) -> None:
    """Write ``state`` and the times it implies into the stored job."""
    props = job.body["properties"]
    props["status"] = state
    started = job.created + timedelta(seconds=job.plan.queued_seconds)
    extra = props.setdefault("properties", {})
    ran = state in ("Running", "Finalizing", "Completed") or (
        state not in _LIVE - {"Running"} and "Running" in job.plan.states
    )
    if ran and "StartTimeUtc" not in extra:
        extra["StartTimeUtc"] = _stamp(started)
    if state in _TERMINAL and "EndTimeUtc" not in extra:
        end = started + timedelta(seconds=job.plan.run_seconds) if "StartTimeUtc" in extra else started
        extra["EndTimeUtc"] = _stamp(end)


def _stamp(when: datetime) -> str:
    return when.strftime("%Y-%m-%dT%H:%M:%S.%f") + "0Z"  # seven fractional digits, as Azure writes


def _job_rules(name: str, body: dict[str, Any]) -> list[str]:
    """Rules the service enforces on a command job beyond the model's shape."""
    out = []
    props = body.get("properties") or {}
    if not _JOB_NAME.match(name):
        out.append(f"job name {name!r} is not valid")
    if props.get("jobType") != "Command":
        out.append(f"jobType must be Command, got {props.get('jobType')!r}")
    if not props.get("command"):
        out.append("properties.command is required")
    if not props.get("environmentId"):
        out.append("properties.environmentId is required")
    resources = props.get("resources") or {}
    if not props.get("computeId") and not resources.get("instanceType"):
        out.append("serverless jobs need resources.instanceType")
    tier = (props.get("queueSettings") or {}).get("jobTier")
    if tier is not None and str(tier).lower() not in _JOB_TIERS:
        out.append(f"queueSettings.jobTier {tier!r} is not a job tier")
    if tier is not None and props.get("computeId"):
        out.append("queueSettings.jobTier applies to serverless compute only")
    for key in props.get("environmentVariables") or {}:
        if not _ENV_NAME.match(key):
            out.append(f"environmentVariables: bad name {key!r}")
    for kind in ("inputs", "outputs"):
        for key in props.get(kind) or {}:
            if not _ENV_NAME.match(key):
                out.append(f"{kind}: bad name {key!r}")
    for placeholder in re.findall(r"\$\{\{(inputs|outputs)\.([^}]+)\}\}", str(props.get("command"))):
        if placeholder[1] not in (props.get(placeholder[0]) or {}):
            out.append(
                f"command uses ${{{{{placeholder[0]}.{placeholder[1]}}}}} that the job does not define"
            )
    timeout = (props.get("limits") or {}).get("timeout")
    if timeout is not None and not re.match(
        r"^P(?:\d+D)?(?:T(?:\d+H)?(?:\d+M)?(?:\d+(?:\.\d+)?S)?)?$", timeout
    ):
        out.append(f"limits.timeout {timeout!r} is not an ISO 8601 duration")
    return out


# -- checking a body against the SDK's REST models -------------------------------------------------


def model_problems(model_name: str, data: Any) -> list[str]:
    """Every way ``data`` breaks the SDK's REST model ``model_name`` (empty when it fits)."""
    from azure.ai.ml._restclient.arm_ml_service import models

    return _problems(getattr(models, model_name), data, "body")


def _namespace() -> dict[str, Any]:
    from azure.ai.ml._restclient.arm_ml_service import models
    from azure.ai.ml._restclient.arm_ml_service.models import _models

    return {**vars(_models), "_models": models}


def _problems(cls: Any, data: Any, path: str) -> list[str]:
    if not isinstance(data, dict):
        return [f"{path}: expected an object for {cls.__name__}, got {type(data).__name__}"]
    cls.__new__(cls)  # a model computes its field table on first construction
    mapping = getattr(cls, "__mapping__", None)
    if mapping:
        disc = next((rf._rest_name for rf in cls._attr_to_rest_field.values() if rf._is_discriminator), None)
        if disc and disc in data:
            if data[disc] not in mapping:
                return [f"{path}.{disc}: unknown {cls.__name__} kind {data[disc]!r}"]
            cls = mapping[data[disc]]
            cls.__new__(cls)
    fields = {rf._rest_name: attr for attr, rf in cls._attr_to_rest_field.items()}
    hints = typing.get_type_hints(cls, globalns=_namespace())
    out: list[str] = []
    for key, value in data.items():
        if key not in fields:
            out.append(f"{path}.{key}: not a field of {cls.__name__}")
            continue
        out += _value_problems(hints.get(fields[key]), value, f"{path}.{key}")
    return out


def _value_problems(kind: Any, value: Any, path: str) -> list[str]:
    if kind is None or value is None or kind is typing.Any:
        return []
    origin = typing.get_origin(kind)
    if origin is typing.Union:
        results = [_value_problems(a, value, path) for a in typing.get_args(kind) if a is not type(None)]
        return [] if any(not r for r in results) else results[0]
    if origin is typing.Literal:
        return (
            []
            if value in typing.get_args(kind)
            else [f"{path}: {value!r} is not one of {typing.get_args(kind)}"]
        )
    if origin is dict or kind is dict:
        if not isinstance(value, dict):
            return [f"{path}: expected an object, got {value!r}"]
        args = typing.get_args(kind)
        return [
            p
            for k, v in value.items()
            for p in (_value_problems(args[1], v, f"{path}[{k!r}]") if args else [])
        ]
    if origin is list:
        if not isinstance(value, list):
            return [f"{path}: expected a list, got {value!r}"]
        (item,) = typing.get_args(kind)
        return [p for i, v in enumerate(value) for p in _value_problems(item, v, f"{path}[{i}]")]
    if isinstance(kind, type) and issubclass(kind, enum.Enum):
        allowed = {str(m.value).lower() for m in kind}
        return [] if str(value).lower() in allowed else [f"{path}: {value!r} is not a {kind.__name__}"]
    if isinstance(kind, type) and getattr(kind, "_is_model", False):
        return _problems(kind, value, path)
    if kind in (dt.datetime, dt.timedelta, dt.date):
        return [] if isinstance(value, str) else [f"{path}: expected a string, got {value!r}"]
    if kind is float:
        ok = isinstance(value, (int, float)) and not isinstance(value, bool)
        return [] if ok else [f"{path}: expected a number, got {value!r}"]
    if kind is int:
        ok = isinstance(value, int) and not isinstance(value, bool)
        return [] if ok else [f"{path}: expected an integer, got {value!r}"]
    if isinstance(kind, type):
        return [] if isinstance(value, kind) else [f"{path}: expected {kind.__name__}, got {value!r}"]
    return [f"{path}: cannot check the type {kind}"]


def _error_body(code: str, message: str) -> dict[str, Any]:
    return {"error": {"code": code, "message": message}}


def _error(status: int, code: str, message: str) -> Answer:
    return Answer(status, _error_body(code, message))
