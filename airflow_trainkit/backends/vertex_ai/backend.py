"""The Vertex AI backend's lifecycle: submit, describe, stop and re-attach of a CustomJob.

Vertex names a job by a server-assigned number (``projects/<p>/locations/<r>/customJobs/<n>``), so
a retry cannot describe our deterministic name directly. The resource name is the job's
``JobRef.handle``: the task records it right after the create call, and the trigger, stop and resume
paths use ``GetCustomJob`` / ``CancelCustomJob`` on it. Only a try that finds a record without a
handle (a crash between create and recording its answer) looks the name up, with one filtered
``ListCustomJobs``: ``display_name="<job id>" AND labels.trainkit-job-id="<job id>"`` (never a listing
of the account's jobs). The returned ``job_id`` is always our deterministic name.

Credentials and project come from the google provider's ``google_cloud_platform`` connection
(``GoogleBaseHook``); its extra may set ``region`` (default ``us-central1``) and ``api_endpoint``
(a private or regional endpoint; ``http://host:port`` for a local stand-in). The Google SDK is
imported only inside the methods that call Vertex.
"""

from __future__ import annotations

import asyncio
import contextvars
import functools
import json
import logging
import re
import threading
from functools import cached_property
from typing import TYPE_CHECKING, Any

from typing_extensions import override

from airflow_trainkit.backends.vertex_ai.request import VertexRequestBuilder
from airflow_trainkit.backends.vertex_ai.status import JOB_ID_LABEL, PHASES, VertexState, status_from_job
from airflow_trainkit.training.backend import JobPhase, JobRef, JobStatus, TrainingBackend, register_backend
from airflow_trainkit.training.capabilities import Capabilities
from airflow_trainkit.training.pricing import BackendPricing

if TYPE_CHECKING:
    from concurrent.futures import ThreadPoolExecutor

    from airflow_trainkit.training.identity import JobIdentity
    from airflow_trainkit.training.spec import TrainingJobSpec

log = logging.getLogger(__name__)

DEFAULT_CONN_ID = "google_cloud_default"
DEFAULT_REGION = "us-central1"
# Seconds each Vertex call may take; the trigger retries transient failures itself.
CALL_TIMEOUT = 60.0
_TRANSIENT_CODES = {429, 500, 502, 503, 504}
_JOB_NAME = re.compile(r"^[a-z][a-z0-9-]{0,62}$")
_RESOURCE_NAME = re.compile(r"^projects/[^/]+/locations/[^/]+/customJobs/[0-9]+$")
_REGION = re.compile(r"^[a-z]+-[a-z]+[0-9]+$")


@register_backend("vertex_ai")
class VertexAIBackend(VertexRequestBuilder, TrainingBackend):
    """Run a :class:`~airflow_trainkit.training.spec.TrainingJobSpec` as a Vertex AI CustomJob.

    :param conn_id: a google provider ``google_cloud_platform`` connection; ``None`` for
        ``google_cloud_default``. Its extra sets ``project`` and may set ``region`` and ``api_endpoint``.
    """

    State = VertexState
    PHASES = PHASES  # the one map, shared with status_from_job
    capabilities = Capabilities(
        instance_table="vertex_ai",
        not_applicable={"allow_cpu": "the machine always carries the accelerators asked for"},
    )
    pricing = BackendPricing(
        catalog_key="vertex_ai",
        instance_table="vertex_ai",
        basis="billable (wall) time x instances x hourly price (machine + accelerators)",
        price_api="google_cloud_billing",
        default_region=DEFAULT_REGION,
        geographies={"us": DEFAULT_REGION, "eu": "europe-west4", "asia": "asia-southeast1"},
        region_conn_id=DEFAULT_CONN_ID,
        region_extra_keys=("region", "location"),
    )
    poll_interval = 30.0
    shared_per_connection = True
    # Vertex AI quota "Resource management (CRUD) requests": 600 a minute per project and region
    # (cloud.google.com/vertex-ai/docs/quotas, "Request quotas"); GetCustomJob counts against it.
    # Eight a second leaves a fifth of it to everything else on the project.
    status_calls_per_second = 8.0

    def __init__(self, conn_id: str | None = None) -> None:
        super().__init__(conn_id)
        # Resource names learnt by this object (from a create or a lookup), by job name.
        self._names: dict[str, str] = {}
        self._client: Any = None
        self._client_lock = threading.Lock()

    @property
    def gcp_conn_id(self) -> str:
        """The google_cloud_platform connection this backend uses: ``conn_id``, or ``google_cloud_default``."""
        return self.conn_id or DEFAULT_CONN_ID

    # -- connection and client ------------------------------------------------------------------

    @cached_property
    def _hook(self) -> Any:
        # The google provider imports google-auth: only when a Vertex job is actually handled.
        from airflow.providers.google.common.hooks.base_google import GoogleBaseHook

        return GoogleBaseHook(gcp_conn_id=self.gcp_conn_id)

    def _extra(self, key: str) -> Any:
        extras = self._hook.extras or {}
        return extras.get(key) or extras.get(f"extra__google_cloud_platform__{key}")

    @cached_property
    def project(self) -> str:
        """The connection's project (its extra's ``project``, else the credentials' own).

        :raises ValueError: the connection names no project.
        """
        _, project = self._hook.get_credentials_and_project_id()
        if not project:
            raise ValueError(
                f"connection {self.gcp_conn_id!r}: no Google Cloud project; set 'project' in its extra"
            )
        return str(project)

    @cached_property
    def region(self) -> str:
        """The connection's extra ``region`` (or ``location``), else the default region.

        :raises ValueError: the value is not a region name.
        """
        region = self._extra("region") or self._extra("location") or DEFAULT_REGION
        if not isinstance(region, str) or not _REGION.match(region):
            raise ValueError(f"connection {self.gcp_conn_id!r} extra 'region': not a region: {region!r}")
        return region

    @property
    def parent(self) -> str:
        """``projects/<project>/locations/<region>``: where this backend's jobs are created and found."""
        return f"projects/{self.project}/locations/{self.region}"

    @property
    def client(self) -> Any:
        """This object's one JobServiceClient over REST, made on first use and shared by every thread.

        Its requests session is thread-safe for concurrent calls and pools its connections (see
        :meth:`_call_threads`); the trigger shares this object, so a triggerer holds one client per
        connection.
        """
        with self._client_lock:  # the call threads may all ask for it first at once
            if self._client is None:
                self._client = self._make_client()
            return self._client

    def _make_client(self) -> Any:
        # aiplatform_v1 takes seconds to import: only once a Vertex job is handled.
        from google.cloud.aiplatform_v1.services.job_service import JobServiceClient
        from google.cloud.aiplatform_v1.services.job_service.transports.rest import JobServiceRestTransport

        credentials, _ = self._hook.get_credentials_and_project_id()
        endpoint = str(self._extra("api_endpoint") or f"{self.region}-aiplatform.googleapis.com")
        scheme, _, host = endpoint.rpartition("://")
        transport = JobServiceRestTransport(
            host=host.rstrip("/"),
            credentials=credentials,
            url_scheme=scheme or "https",
            always_use_jwt_access=True,
        )
        return JobServiceClient(transport=transport)

    @cached_property
    def _call_threads(self) -> ThreadPoolExecutor:
        """The threads the triggerer's Vertex calls run in: one per connection the client pools.

        The SDK's async REST transport works here, but signs each call in a worker thread anyway and
        needs an event-loop-bound client per loop (see docs/architecture.md); so calls stay on the one
        sync client. Threads of their own, as many as requests keeps connections per host: a thousand
        polls neither open connections the pool then discards nor queue in front of the event
        loop's default executor, which the rest of the triggerer uses.
        """
        from concurrent.futures import ThreadPoolExecutor

        from requests.adapters import DEFAULT_POOLSIZE  # the AuthorizedSession's pool per host

        return ThreadPoolExecutor(max_workers=DEFAULT_POOLSIZE, thread_name_prefix="trainkit-vertex")

    async def _in_call_thread(self, func: Any, /, *args: Any, **kwargs: Any) -> Any:
        """``asyncio.to_thread`` on :meth:`_call_threads` (the caller's context vars go along, for logs)."""
        call = functools.partial(contextvars.copy_context().run, func, *args, **kwargs)
        return await asyncio.get_running_loop().run_in_executor(self._call_threads, call)

    # -- the backend interface ------------------------------------------------------------------

    @override
    def submit(
        self, spec: TrainingJobSpec, job: JobRef | str, identity: JobIdentity | None = None
    ) -> JobStatus:
        from google.cloud.aiplatform_v1.types import CustomJob

        job_id = self.ref(job).job_name
        body = self.build_request(spec, job_id, identity=identity)
        message = CustomJob.from_json(json.dumps(body))
        machine = body["job_spec"]["worker_pool_specs"][0]["machine_spec"]
        log.info(
            "Creating Vertex AI custom job %s in %s on %d x %s%s%s",
            job_id,
            self.parent,
            spec.instance_count,
            machine["machine_type"],
            f" + {machine['accelerator_count']} x {machine['accelerator_type']}"
            if "accelerator_type" in machine
            else "",
            " (Spot)" if spec.spot else "",
        )
        created = self.client.create_custom_job(
            parent=self.parent, custom_job=message, retry=None, timeout=CALL_TIMEOUT
        )
        self._names[job_id] = created.name
        return self._status(created, job_id)

    @override
    def describe(self, job: JobRef | str) -> JobStatus:
        """``GetCustomJob`` on the job's handle; one filtered lookup when it has none yet."""
        from google.api_core.exceptions import NotFound

        from airflow_trainkit.exceptions import TrainingJobNotFound

        ref = self.ref(job)
        job_id = ref.job_name
        name = ref.handle or self._names.get(job_id)
        if name is None:
            job = self._lookup(job_id)
            return self._status(job, job_id)
        try:
            job = self.client.get_custom_job(name=name, retry=None, timeout=CALL_TIMEOUT)
        except NotFound:
            raise TrainingJobNotFound(self.name, job_id) from None
        return self._status(job, job_id)

    @override
    async def describe_async(self, job: JobRef | str) -> JobStatus:
        """``describe`` on the shared client, in one of its call threads."""
        status: JobStatus = await self._in_call_thread(self.describe, job)
        return status

    @override
    async def stop_async(self, job: JobRef | str, *, reason: str = "stopped by Airflow") -> None:
        await self._in_call_thread(self.stop, job, reason=reason)

    @override
    def stop(self, job: JobRef | str, *, reason: str = "stopped by Airflow") -> None:
        """``CancelCustomJob``; a job that is cancelling or has ended is left alone.

        :raises TrainingJobNotFound: no job has that name.
        """
        from google.api_core.exceptions import BadRequest, FailedPrecondition

        ref = self.ref(job)
        job_id = ref.job_name
        status = self.describe(ref)
        if status.phase != JobPhase.PENDING and status.phase != JobPhase.RUNNING:
            log.info("Vertex AI job %s is %s already; nothing to stop", job_id, status.state)
            return
        try:
            self.client.cancel_custom_job(name=status.handle, retry=None, timeout=CALL_TIMEOUT)
        except (BadRequest, FailedPrecondition):
            # FAILED_PRECONDITION (HTTP 400 over REST): it ended or began cancelling since the describe.
            status = self.describe(ref.with_(handle=status.handle))
            if status.phase.active and status.phase != JobPhase.STOPPING:
                raise
            log.info("Vertex AI job %s is %s already; nothing to stop", job_id, status.state)
            return
        log.info("Asked Vertex AI job %s to cancel: %s", job_id, reason)

    @override
    def is_transient(self, error: BaseException) -> bool:
        """Throttling, 5xx answers, deadlines and connection failures are worth another try."""
        from google.api_core import exceptions as core
        from google.auth.exceptions import TransportError
        from requests.exceptions import ConnectionError as RequestsConnectionError
        from requests.exceptions import Timeout

        if isinstance(error, core.GoogleAPICallError):
            return error.code in _TRANSIENT_CODES or isinstance(
                error, (core.DeadlineExceeded, core.ResourceExhausted, core.ServiceUnavailable)
            )
        if isinstance(error, (core.RetryError, TransportError, RequestsConnectionError, Timeout)):
            return True
        return super().is_transient(error)

    @override
    def log_tail(self, job: JobRef | str, lines: int = 50) -> list[str]:
        """The job's last log lines from Cloud Logging (``resource.type="ml_job"``), oldest first.

        One ``entries:list`` call through the Logging REST API (``logging_endpoint`` in the connection's
        extra, default ``https://logging.googleapis.com``), newest first and at most ``lines`` entries.
        """
        status = self.describe(job)
        numeric_id = str(status.handle or "").rsplit("/", 1)[-1]
        if not numeric_id:
            return []
        # google-auth's requests session signs the call; imported only when a log is read.
        from google.auth.transport.requests import AuthorizedSession

        endpoint = str(self._extra("logging_endpoint") or "https://logging.googleapis.com").rstrip("/")
        credentials, _ = self._hook.get_credentials_and_project_id()
        body: dict[str, Any] = {
            "resourceNames": [f"projects/{self.project}"],
            "filter": f'resource.type="ml_job" AND resource.labels.job_id="{numeric_id}"',
            "orderBy": "timestamp desc",
            "pageSize": max(1, min(int(lines), 1000)),
        }
        response = AuthorizedSession(credentials).post(
            f"{endpoint}/v2/entries:list", json=body, timeout=CALL_TIMEOUT
        )
        response.raise_for_status()
        out = []
        for entry in reversed(response.json().get("entries") or []):
            text = entry.get("textPayload") or (entry.get("jsonPayload") or {}).get("message") or ""
            out.append(str(text).rstrip("\n"))
        return out

    @override
    def metrics(self, status: JobStatus) -> dict[str, Any] | None:
        """The ``metrics.json`` a succeeded job wrote next to its model, read with the connection's credentials.

        Read through the Cloud Storage JSON API (``storage_endpoint`` in the connection's extra, default
        ``https://storage.googleapis.com``); ``None`` when the job did not succeed or wrote none.
        """
        if status.phase != JobPhase.SUCCEEDED or not status.output_uri:
            return None
        from urllib.parse import quote

        # google-auth's requests session signs the call; imported only when metrics are read.
        from google.auth.exceptions import GoogleAuthError
        from google.auth.transport.requests import AuthorizedSession
        from requests import RequestException

        bucket, _, folder = status.output_uri[len("gs://") :].partition("/")
        obj = "/".join(p for p in (folder.strip("/"), "metrics.json") if p)
        endpoint = str(self._extra("storage_endpoint") or "https://storage.googleapis.com").rstrip("/")
        credentials, _ = self._hook.get_credentials_and_project_id()
        url = f"{endpoint}/storage/v1/b/{quote(bucket, safe='')}/o/{quote(obj, safe='')}?alt=media"
        try:
            response = AuthorizedSession(credentials).get(url, timeout=CALL_TIMEOUT)
            if response.status_code == 404:
                return None
            response.raise_for_status()
            data = json.loads(response.content)
        except (RequestException, GoogleAuthError, ValueError) as err:
            log.warning(
                "Could not read metrics.json of Vertex AI job %s: %s", status.job_id, type(err).__name__
            )
            return None
        return data if isinstance(data, dict) else None

    # -- helpers --------------------------------------------------------------------------------

    def _lookup(self, job_id: str) -> Any:
        """The CustomJob named ``job_id``: by resource name, or one filtered ``ListCustomJobs`` call.

        :raises TrainingJobNotFound: no job carries that display name and label.
        """
        from google.api_core.exceptions import NotFound

        from airflow_trainkit.exceptions import TrainingJobNotFound

        if _RESOURCE_NAME.match(job_id):  # a job started elsewhere, watched by its resource name
            try:
                job = self.client.get_custom_job(name=job_id, retry=None, timeout=CALL_TIMEOUT)
            except NotFound:
                raise TrainingJobNotFound(self.name, job_id) from None
            self._names[job_id] = job.name
            return job
        if not _JOB_NAME.match(job_id):
            raise ValueError(
                f"job_id: {job_id!r} is neither a trainkit job name nor a CustomJob resource name"
            )
        pager = self.client.list_custom_jobs(
            request={
                "parent": self.parent,
                "filter": f'display_name="{job_id}" AND labels.{JOB_ID_LABEL}="{job_id}"',
                "page_size": 10,
            },
            retry=None,
            timeout=CALL_TIMEOUT,
        )
        found = list(next(iter(pager.pages)).custom_jobs)
        if not found:
            raise TrainingJobNotFound(self.name, job_id)
        found.sort(key=lambda j: (j.create_time, j.name))
        if len(found) > 1:
            log.warning(
                "%d Vertex AI jobs carry the name %s; following the first created, %s",
                len(found),
                job_id,
                found[0].name,
            )
        self._names[job_id] = found[0].name
        return found[0]

    def _status(self, job: Any, job_id: str) -> JobStatus:
        from google.cloud.aiplatform_v1.types import CustomJob

        data = CustomJob.to_dict(job, use_integers_for_enums=False, preserving_proto_field_name=True)
        return status_from_job(data, job_id, self.project, self.region)
