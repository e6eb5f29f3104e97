"""The SageMaker backend's lifecycle: submit, describe, stop, re-attach and logs of a training job.

Credentials, region and endpoints come from the amazon provider's AWS connection (``AwsBaseHook``);
boto3 and aiobotocore are imported inside the functions that call AWS, never at module level.
"""

from __future__ import annotations

import asyncio
import logging
import threading
from functools import cached_property
from typing import TYPE_CHECKING, Any

from typing_extensions import override

from airflow_trainkit.backends.sagemaker.request import SageMakerRequestBuilder
from airflow_trainkit.backends.sagemaker.source import SOURCE_ARCHIVE, package_source, script_source
from airflow_trainkit.backends.sagemaker.status import PHASES, SageMakerState, status_from_description
from airflow_trainkit.training.backend import JobRef, JobStatus, TrainingBackend, register_backend
from airflow_trainkit.training.capabilities import Capabilities
from airflow_trainkit.training.pricing import BackendPricing

if TYPE_CHECKING:
    from airflow_trainkit.training.identity import JobIdentity
    from airflow_trainkit.training.spec import TrainingJobSpec

log = logging.getLogger(__name__)

DEFAULT_CONN_ID = "aws_default"
# TCP connections each event loop's client keeps to SageMaker (botocore's own default); calls beyond
# it wait for a free connection. The connection's ``config_kwargs`` may set ``max_pool_connections``.
MAX_POOL_CONNECTIONS = 10
LOG_GROUP = "/aws/sagemaker/TrainingJobs"
_NOT_FOUND = ("requested resource not found", "could not find", "does not exist")
_THROTTLING = {
    "Throttling",
    "ThrottlingException",
    "ThrottledException",
    "RequestThrottled",
    "RequestLimitExceeded",
    "TooManyRequestsException",
    "ProvisionedThroughputExceededException",
    "SlowDown",
    "ServiceUnavailable",
    "InternalFailure",
    "InternalServerError",
}


@register_backend("sagemaker")
class SageMakerBackend(SageMakerRequestBuilder, TrainingBackend):
    """Run a :class:`~airflow_trainkit.training.spec.TrainingJobSpec` as a SageMaker training job.

    :param conn_id: an amazon provider ``aws`` connection; ``None`` for ``aws_default``. Its extra
        may carry ``execution_role_arn`` (or ``role_arn``) as the job's execution role.
    """

    State = SageMakerState
    PHASES = PHASES  # the one map, shared with status_from_description
    capabilities = Capabilities(
        instance_table="sagemaker",
        not_applicable={"allow_cpu": "the instance type always carries the GPUs asked for"},
    )
    pricing = BackendPricing(
        catalog_key="sagemaker",
        instance_table="sagemaker",
        spot_rate="on_demand",
        basis="BillableTimeInSeconds x instances x on-demand price (managed spot bills fewer seconds)",
        price_api="aws_price_list",
        default_region="us-east-1",
        # asia: the one Asian region with a sourced SageMaker price in the shipped catalog (Mumbai)
        geographies={"us": "us-east-1", "eu": "eu-west-1", "asia": "ap-south-1"},
        region_conn_id=DEFAULT_CONN_ID,
        region_extra_keys=("region_name",),
    )
    poll_interval = 30.0
    shared_per_connection = True
    # AWS publishes no rate for DescribeTrainingJob: its quotas page says only that the management
    # APIs' throttling limits are not adjustable (docs.aws.amazon.com/sagemaker/latest/dg/
    # model-customize-mtrl-quotas.html, "Amazon SageMaker AI endpoints and quotas"). Ten a second
    # per account and region is a conservative share; raise it with the connection's extra.
    status_calls_per_second = 10.0

    def __init__(self, conn_id: str | None = None) -> None:
        super().__init__(conn_id)
        # This object's aiobotocore client in each event loop that used it, and the task that holds
        # it open (the loop itself keeps only weak references to tasks). See _async_client.
        self._aio_clients: dict[
            asyncio.AbstractEventLoop, tuple[asyncio.Future[Any], asyncio.Task[None]]
        ] = {}
        self._aio_lock = threading.Lock()
        #: aiobotocore clients this object has opened: one per event loop, however many jobs it watches.
        self.async_clients_made = 0

    @property
    def aws_conn_id(self) -> str:
        """The AWS connection this backend uses: ``conn_id``, or ``aws_default``."""
        return self.conn_id or DEFAULT_CONN_ID

    # -- AWS clients -----------------------------------------------------------------------------

    def _hook(self, client_type: str) -> Any:
        # The amazon provider imports boto3: only when a SageMaker job is actually handled.
        from airflow.providers.amazon.aws.hooks.base_aws import AwsBaseHook

        return AwsBaseHook(aws_conn_id=self.aws_conn_id, client_type=client_type)

    @cached_property
    def _sagemaker_hook(self) -> Any:
        return self._hook("sagemaker")

    @cached_property
    def client(self) -> Any:
        """The blocking boto3 SageMaker client of the worker's calls, made on first use."""
        return self._sagemaker_hook.conn

    @cached_property
    def region(self) -> str:
        """The region the connection's client talks to (job console links and script mode use it)."""
        return str(self.client.meta.region_name)

    @property
    def async_clients_open(self) -> int:
        """aiobotocore clients open (or opening) now: one per event loop that uses this object."""
        return len(self._aio_clients)

    async def _async_client(self) -> tuple[Any, asyncio.Semaphore]:
        """This event loop's aiobotocore SageMaker client, opened by the first call and shared by all,
        and the semaphore that admits as many calls at a time as its pool has connections.

        An aiobotocore client (its aiohttp connection pool, TLS context and sockets) belongs to the
        loop it was opened on, so each loop gets its own: in a triggerer that is one client per
        connection for every trigger. A keeper task holds it open until the loop shuts down
        (``asyncio.run`` cancels the task, which closes the client); concurrent first calls wait
        for the same client instead of opening one each.
        """
        loop = asyncio.get_running_loop()
        with self._aio_lock:  # loops in other threads share the map
            for closed in [other for other in self._aio_clients if other.is_closed()]:
                del self._aio_clients[closed]  # shut down without cancelling its keeper
            if loop in self._aio_clients:
                ready = self._aio_clients[loop][0]
            else:
                ready = loop.create_future()
                keeper = loop.create_task(
                    self._keep_async_client(ready), name=f"trainkit-sagemaker-client-{self.aws_conn_id}"
                )
                self._aio_clients[loop] = (ready, keeper)
        # A caller cancelled while it waits must not cancel the client every other caller waits for.
        return await asyncio.shield(ready)

    async def _keep_async_client(self, ready: asyncio.Future[Any]) -> None:
        """Open the loop's client, hand it to ``ready``, and hold it open until this task is cancelled."""
        loop = asyncio.get_running_loop()
        try:
            # Reading the connection and loading the service model block: in a thread, not the loop.
            session, kwargs = await asyncio.to_thread(self._async_client_args)
            async with session.create_client("sagemaker", **kwargs) as client:
                self.async_clients_made += 1
                # Calls beyond the pool would build and sign their requests (a few ms of the
                # loop's time each) and then wait for a connection; a thousand triggers polling
                # at once would hold the loop for seconds. They wait here instead, before that work.
                ready.set_result((client, asyncio.Semaphore(kwargs["config"].max_pool_connections)))
                await loop.create_future()  # never set: the loop's shutdown cancels it
        except asyncio.CancelledError:
            if not ready.done():
                ready.cancel()
            raise
        except Exception as err:  # the callers waiting on `ready` raise it; the next call tries again
            if not ready.done():
                ready.set_exception(err)
        finally:
            with self._aio_lock:
                if loop in self._aio_clients and self._aio_clients[loop][0] is ready:
                    del self._aio_clients[loop]

    def _async_client_args(self) -> tuple[Any, dict[str, Any]]:
        """An aiobotocore session with the connection's credentials, and its client's arguments."""
        from botocore.config import Config

        hook = self._sagemaker_hook
        session = hook.get_session(deferrable=True)
        warm_up = getattr(session, "warm_up_loader_caches", None)  # not in older aiobotocore releases
        if warm_up is not None:
            warm_up("sagemaker")  # create_client then finds the service model loaded, no file I/O
        kwargs = {
            "region_name": hook.region_name,
            "endpoint_url": hook.conn_config.get_service_endpoint_url(service_name="sagemaker"),
            # Our pool size unless the connection's config_kwargs set its own.
            "config": Config(max_pool_connections=MAX_POOL_CONNECTIONS).merge(hook.config),
            "verify": hook.verify,
        }
        return session, kwargs

    def _connection_extra(self) -> dict[str, Any]:
        return dict(self._sagemaker_hook.conn_config.extra_config or {})

    # -- script mode: ship a source folder to a framework container -----------------------------

    def upload_source(self, spec: TrainingJobSpec, job_id: str) -> tuple[str, str] | None:
        """Package the script-mode source as ``sourcedir.tar.gz`` and upload it under the output path.

        :return: ``(S3 URI of the archive, program name)``, or ``None`` when the spec is not script mode.
        """
        source = script_source(spec)
        if source is None:
            return None
        files, program = source
        archive = package_source(files)
        output = spec.output_uri or ""
        bucket, _, prefix = output[len("s3://") :].partition("/")
        key = "/".join(p for p in (prefix.strip("/"), job_id, "source", SOURCE_ARCHIVE) if p)
        self._hook("s3").conn.put_object(Bucket=bucket, Key=key, Body=archive)
        uri = f"s3://{bucket}/{key}"
        log.info(
            "Uploaded %d files (%d bytes) to %s; SageMaker runs %s", len(files), len(archive), uri, program
        )
        return uri, program

    # -- the backend interface ------------------------------------------------------------------

    @override
    def submit(
        self, spec: TrainingJobSpec, job: JobRef | str, identity: JobIdentity | None = None
    ) -> JobStatus:
        job_id = self.ref(job).job_name
        uploaded = self.upload_source(spec, job_id)
        request = self.build_request(
            spec,
            job_id,
            identity=identity,
            submit_directory=uploaded[0] if uploaded else None,
            entry_point=uploaded[1] if uploaded else None,
        )
        log.info(
            "Creating SageMaker training job %s on %d x %s%s",
            job_id,
            spec.instance_count,
            request["ResourceConfig"]["InstanceType"],
            " (managed spot)" if spec.spot else "",
        )
        self.client.create_training_job(**request)
        return self.describe(job_id)

    @override
    def describe(self, job: JobRef | str) -> JobStatus:
        from botocore.exceptions import ClientError  # boto3 is only needed once a job is handled

        job_id = self.ref(job).job_name
        try:
            response = self.client.describe_training_job(TrainingJobName=job_id)
        except ClientError as err:
            if _is_not_found(err):
                from airflow_trainkit.exceptions import TrainingJobNotFound

                raise TrainingJobNotFound(self.name, job_id) from None
            raise
        return status_from_description(response, self.region)

    @override
    async def describe_async(self, job: JobRef | str) -> JobStatus:
        """``DescribeTrainingJob`` through aiobotocore, with the connection's credentials and endpoint."""
        from botocore.exceptions import ClientError

        job_id = self.ref(job).job_name
        client, calls = await self._async_client()
        try:
            async with calls:
                response = await client.describe_training_job(TrainingJobName=job_id)
        except ClientError as err:
            if _is_not_found(err):
                from airflow_trainkit.exceptions import TrainingJobNotFound

                raise TrainingJobNotFound(self.name, job_id) from None
            raise
        return status_from_description(response, str(client.meta.region_name))

    @override
    def stop(self, job: JobRef | str, *, reason: str = "stopped by Airflow") -> None:
        """``StopTrainingJob``; a job that is stopping, stopped, finished or unknown is left alone."""
        from botocore.exceptions import ClientError

        job_id = self.ref(job).job_name
        try:
            self.client.stop_training_job(TrainingJobName=job_id)
        except ClientError as err:
            code = err.response.get("Error", {}).get("Code")
            if code != "ValidationException":
                raise
            if _is_not_found(err):
                log.info("SageMaker job %s does not exist; nothing to stop", job_id)
                return
            status = self.describe(job_id)
            if status.state == SageMakerState.IN_PROGRESS.value:
                raise
            log.info("SageMaker job %s is %s already; nothing to stop", job_id, status.state)
            return
        log.info("Asked SageMaker job %s to stop: %s", job_id, reason)

    @override
    def is_transient(self, error: BaseException) -> bool:
        """Throttling, 5xx answers and connection failures are worth another try."""
        from botocore.exceptions import ClientError, HTTPClientError
        from botocore.exceptions import ConnectionError as BotoConnectionError

        if isinstance(error, ClientError):
            code = error.response.get("Error", {}).get("Code", "")
            status = error.response.get("ResponseMetadata", {}).get("HTTPStatusCode") or 0
            return code in _THROTTLING or status == 429 or int(status) >= 500
        if isinstance(error, (BotoConnectionError, HTTPClientError)):
            return True
        return super().is_transient(error)

    @override
    def log_tail(self, job: JobRef | str, lines: int = 50) -> list[str]:
        """The last lines of the job's CloudWatch log streams (one per host, prefixed by host)."""
        from botocore.exceptions import ClientError

        job_id = self.ref(job).job_name
        logs = self._hook("logs").conn
        try:
            streams = logs.describe_log_streams(
                logGroupName=LOG_GROUP, logStreamNamePrefix=f"{job_id}/", limit=50
            ).get("logStreams", [])
        except ClientError as err:
            if err.response.get("Error", {}).get("Code") == "ResourceNotFoundException":
                return []
            raise
        events: list[tuple[int, str]] = []
        for stream in streams:
            name = stream["logStreamName"]
            host = name[len(job_id) + 1 :].split("-")[0:2]
            response = logs.get_log_events(
                logGroupName=LOG_GROUP, logStreamName=name, limit=lines, startFromHead=False
            )
            label = f"[{'-'.join(host)}] " if len(streams) > 1 else ""
            events.extend(
                (e.get("timestamp", 0), label + e["message"].rstrip("\n")) for e in response["events"]
            )
        events.sort(key=lambda e: e[0])
        return [message for _, message in events[-lines:]]

    @override
    def metrics(self, status: JobStatus) -> dict[str, Any] | None:
        """SageMaker's ``FinalMetricDataList`` (the model itself is a tarball on S3), if the job has one."""
        final = status.details.get("final_metrics")
        return dict(final) if final else None


def _is_not_found(err: Any) -> bool:
    error = err.response.get("Error", {})
    code = error.get("Code", "")
    message = str(error.get("Message", "")).lower()
    return code in ("ResourceNotFound", "ResourceNotFoundException") or (
        code == "ValidationException" and any(m in message for m in _NOT_FOUND)
    )
