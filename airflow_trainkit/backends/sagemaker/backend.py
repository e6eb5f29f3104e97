"""The SageMaker backend's lifecycle: submit, describe, stop, re-attach and logs of a training job.

Credentials, region and endpoints come from the amazon provider's AWS connection (``AwsBaseHook``);
boto3 and aiobotocore are imported inside the functions that call AWS, never at module level.
"""

from __future__ import annotations

import logging
from functools import cached_property
from typing import TYPE_CHECKING, Any

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

    def __init__(self, conn_id: str | None = None) -> None:
        super().__init__(conn_id)
        self._aio_session: Any = None

    @property
    def aws_conn_id(self) -> str:
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
        return self._sagemaker_hook.conn

    @cached_property
    def region(self) -> str:
        return str(self.client.meta.region_name)

    async def _async_session(self) -> Any:
        """One aiobotocore session per backend object (it caches the service model between polls)."""
        if self._aio_session is None:
            import asyncio

            self._aio_session = await asyncio.to_thread(self._sagemaker_hook.get_session, deferrable=True)
        return self._aio_session

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

    async def describe_async(self, job: JobRef | str) -> JobStatus:
        """``DescribeTrainingJob`` through aiobotocore, with the connection's credentials and endpoint."""
        from botocore.exceptions import ClientError

        job_id = self.ref(job).job_name
        session = await self._async_session()
        hook = self._sagemaker_hook
        client_context = session.create_client(
            "sagemaker",
            region_name=hook.region_name,
            endpoint_url=hook.conn_config.get_service_endpoint_url(service_name="sagemaker"),
            config=hook.config,
            verify=hook.verify,
        )
        async with client_context as client:
            try:
                response = await client.describe_training_job(TrainingJobName=job_id)
            except ClientError as err:
                if _is_not_found(err):
                    from airflow_trainkit.exceptions import TrainingJobNotFound

                    raise TrainingJobNotFound(self.name, job_id) from None
                raise
            region = str(client.meta.region_name)
        return status_from_description(response, region)

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
