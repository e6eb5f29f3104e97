"""The Azure ML backend's lifecycle: submit, describe, stop and re-attach of a command job.

The job's name is ours (the deterministic task-instance name), so describe and re-attach are one
``GET {workspace}/jobs/{name}``, never a listing. Credentials come from the azure provider's ``azure``
connection: a client id and secret (login, password, extra ``tenantId``) when all three are set,
otherwise the provider's default credential chain (managed identity, with the extra
``managed_identity_client_id``; workload identity, with ``workload_identity_tenant_id``). The extra
names ``subscriptionId``, ``resource_group_name`` and ``workspace_name``, and may name a ``compute``
cluster, the ``region`` the workspace is in (for the actual cost) and ``api_endpoint`` (a local
stand-in: every call, token requests included, goes there). azure-ai-ml has no async client: the
trigger runs the sync calls in threads (``asyncio.to_thread``, the base class's default).
"""

from __future__ import annotations

import json
import logging
import threading
import time
from functools import cached_property
from typing import TYPE_CHECKING, Any

from typing_extensions import override

from airflow_trainkit.backends.azure_ml import request as azure_request
from airflow_trainkit.backends.azure_ml.status import PHASES, AzureMLState, job_facts, status_from_facts
from airflow_trainkit.training.backend import JobPhase, JobRef, JobStatus, TrainingBackend, register_backend
from airflow_trainkit.training.capabilities import Capabilities
from airflow_trainkit.training.pricing import BackendPricing

if TYPE_CHECKING:
    from airflow_trainkit.training.identity import JobIdentity
    from airflow_trainkit.training.spec import TrainingJobSpec

log = logging.getLogger(__name__)
# azure-core logs every request and response (headers included) at INFO: one poll of a thousand jobs
# would flood the triggerer's log. Its HTTP log goes to this logger, quiet unless set to INFO.
http_log = logging.getLogger(f"{__name__}.http")
http_log.setLevel(logging.WARNING)

DEFAULT_CONN_ID = "azure_default"
DEFAULT_REGION = "eastus"
# HTTP answers worth another try: throttling and server errors.
_TRANSIENT_CODES = {408, 429, 500, 502, 503, 504}
# The workspace's own datastore where Azure ML keeps each job's logs (ExperimentRun/dcid.<job>/...).
ARTIFACT_DATASTORE = "workspaceartifactstore"
LOG_FILES = ("user_logs/std_log.txt", "user_logs/std_log_process_0.txt")


@register_backend("azure_ml")
class AzureMLBackend(TrainingBackend):
    """Run a :class:`~airflow_trainkit.training.spec.TrainingJobSpec` as an Azure ML command job.

    :param conn_id: an azure provider ``azure`` connection; ``None`` for ``azure_default``.
    """

    State = AzureMLState
    PHASES = PHASES
    capabilities = Capabilities(
        instance_table="azure_ml",
        not_applicable={"allow_cpu": "the VM size always carries the GPUs asked for"},
    )
    pricing = BackendPricing(
        catalog_key="azure_ml",
        instance_table="azure_ml",
        basis="billable (wall) time x instances x hourly price (the compute's VM rate)",
        price_api="azure_retail_prices",
        default_region=DEFAULT_REGION,
        geographies={"us": "eastus", "eu": "westeurope", "asia": "southeastasia"},
        region_conn_id=DEFAULT_CONN_ID,
        region_extra_keys=("region", "location"),
    )
    poll_interval = 30.0
    shared_per_connection = True
    # jobs.get is an Azure Resource Manager read: 12,000 subscription reads an hour per principal
    # (learn.microsoft.com/azure/azure-resource-manager/management/request-limits-and-throttling;
    # the newer token-bucket regions refill 25 a second), i.e. 3.3 a second sustained.
    status_calls_per_second = 3.0
    max_job_name_length = 63
    # Our own retries of a cancel POST that azure-core gave back (429/502 without Retry-After).
    cancel_attempts = 4
    cancel_backoff = 1.0

    def __init__(self, conn_id: str | None = None) -> None:
        super().__init__(conn_id)
        self._client: Any = None
        self._client_lock = threading.Lock()
        self._datastores: dict[str, tuple[str, str, str]] = {}

    @property
    def azure_conn_id(self) -> str:
        """The azure connection this backend reads: ``conn_id``, or ``azure_default``."""
        return self.conn_id or DEFAULT_CONN_ID

    # -- connection, credential, client ---------------------------------------------------------

    @cached_property
    def _connection(self) -> Any:
        # The azure provider imports azure-identity: only when an Azure ML job is handled.
        from airflow.providers.microsoft.azure.hooks.base_azure import AzureBaseHook

        return AzureBaseHook.get_connection(self.azure_conn_id)

    def _extra(self, key: str) -> Any:
        extras = self._connection.extra_dejson or {}
        value = extras.get(key)
        return value if value not in (None, "") else extras.get(f"extra__azure__{key}") or None

    def _required(self, key: str, *aliases: str) -> str:
        for name in (key, *aliases):
            value = self._extra(name)
            if value:
                return str(value)
        raise ValueError(
            f"connection {self.azure_conn_id!r} extra {key!r}: missing (got None); the Azure ML "
            "backend needs subscriptionId, resource_group_name and workspace_name in the connection's extra"
        )

    @cached_property
    def workspace(self) -> tuple[str, str, str]:
        """(subscription id, resource group, workspace name) from the connection's extra."""
        return (
            self._required("subscriptionId", "subscription_id"),
            self._required("resource_group_name", "resource_group"),
            self._required("workspace_name", "workspace"),
        )

    @cached_property
    def region(self) -> str | None:
        """The workspace's region from the extra (``region`` or ``location``), for the actual cost."""
        value = self._extra("region") or self._extra("location")
        return str(value) if value else None

    def _transport(self) -> Any:
        endpoint = self._extra("api_endpoint")
        if not endpoint:
            return None
        from airflow_trainkit.backends.azure_ml.transport import redirecting_transport

        return redirecting_transport(str(endpoint))

    def _client_kwargs(self) -> dict[str, Any]:
        # azure-mgmt-core ships with azure-ai-ml; its ARM policy redacts what ARM calls need redacted.
        from azure.mgmt.core.policies import ARMHttpLoggingPolicy

        kwargs: dict[str, Any] = {
            "http_logging_policy": ARMHttpLoggingPolicy(logger=http_log),
            # A worker or triggerer is no notebook: no progress bars, no usage telemetry.
            "show_progress": False,
            "enable_telemetry": False,
        }
        transport = self._transport()
        if transport is not None:
            kwargs["transport"] = transport
        for key in ("retry_total", "retry_backoff_factor"):
            if self._extra(key) is not None:
                kwargs[key] = (
                    float(self._extra(key)) if key == "retry_backoff_factor" else int(self._extra(key))
                )
        return kwargs

    @cached_property
    def credential(self) -> Any:
        """A token credential as the azure provider's newer hooks build it (never logged)."""
        conn = self._connection
        tenant = self._extra("tenantId") or self._extra("tenant_id")
        if conn.login and conn.password and tenant:
            from azure.identity import ClientSecretCredential

            log.info("Azure ML connection %s: client secret credential", self.azure_conn_id)
            # azure-identity builds its HttpLoggingPolicy from these kwargs: its token requests log there too.
            kwargs: dict[str, Any] = {"logger": http_log}
            transport = self._transport()
            if transport is not None:  # a local stand-in answers the token requests too
                kwargs.update(transport=transport, disable_instance_discovery=True)
            return ClientSecretCredential(
                tenant_id=str(tenant), client_id=str(conn.login), client_secret=str(conn.password), **kwargs
            )
        from airflow.providers.microsoft.azure.utils import get_sync_default_azure_credential

        log.info(
            "Azure ML connection %s: default credential chain (managed/workload identity)", self.azure_conn_id
        )
        return get_sync_default_azure_credential(
            managed_identity_client_id=self._extra("managed_identity_client_id"),
            workload_identity_tenant_id=self._extra("workload_identity_tenant_id"),
        )

    @property
    def client(self) -> Any:
        """This object's one ``MLClient``, made on first use and shared by every thread."""
        with self._client_lock:
            if self._client is None:
                # azure-ai-ml takes seconds to import: only once an Azure ML job is handled.
                from azure.ai.ml import MLClient

                subscription, group, workspace = self.workspace
                self._client = MLClient(
                    self.credential, subscription, group, workspace, **self._client_kwargs()
                )
            return self._client

    # -- the backend interface ------------------------------------------------------------------

    @override
    def validate(self, spec: TrainingJobSpec) -> None:
        azure_request.validate(spec)

    @override
    def submit(
        self, spec: TrainingJobSpec, job: JobRef | str, identity: JobIdentity | None = None
    ) -> JobStatus:
        """One PUT of the job (plus one PUT of an anonymous environment for a plain image, and one GET
        of the cluster when a cluster is named). Cluster checks raise before the job is created."""
        job_id = self.ref(job).job_name
        azure_request.validate(spec)
        compute = azure_request.compute_name(spec, self._extra("compute"))
        vm_size = self._check_cluster(spec, compute) if compute else None
        plan = azure_request.job_plan(
            spec, job_id, compute=compute, identity=identity, cluster_vm_size=vm_size
        )
        command_job = self._command_job(plan)
        log.info(
            "Creating Azure ML job %s in workspace %s on %s: %d x %s%s",
            job_id,
            self.workspace[2],
            compute or "serverless compute",
            plan.instance_count,
            vm_size or plan.instance_type,
            " (spot)" if spec.spot else "",
        )
        created = self.client.jobs.create_or_update(command_job, experiment_name=plan.experiment_name)
        return self._status(created, job_id)

    @override
    def describe(self, job: JobRef | str) -> JobStatus:
        """One ``GET {workspace}/jobs/{name}``."""
        from azure.core.exceptions import ResourceNotFoundError

        from airflow_trainkit.exceptions import TrainingJobNotFound

        job_id = self.ref(job).job_name
        try:
            found = self.client.jobs.get(job_id)
        except ResourceNotFoundError:
            raise TrainingJobNotFound(self.name, job_id) from None
        return self._status(found, job_id)

    @override
    def stop(self, job: JobRef | str, *, reason: str = "stopped by Airflow") -> None:
        """``begin_cancel``; a job that is cancelling or has ended is left alone.

        azure-core does not retry a cancel POST answered 429 or 502 without ``Retry-After``: we do,
        ``cancel_attempts`` times with a doubling pause.

        :raises TrainingJobNotFound: no job has that name.
        """
        from azure.core.exceptions import HttpResponseError, ResourceNotFoundError

        from airflow_trainkit.exceptions import TrainingJobNotFound

        ref = self.ref(job)
        job_id = ref.job_name
        status = self.describe(ref)
        if status.phase not in (JobPhase.PENDING, JobPhase.RUNNING):
            log.info("Azure ML job %s is %s already; nothing to stop", job_id, status.state)
            return
        for attempt in range(1, self.cancel_attempts + 1):
            try:
                self.client.jobs.begin_cancel(job_id)
                break
            except ResourceNotFoundError:
                raise TrainingJobNotFound(self.name, job_id) from None
            except HttpResponseError as err:
                if err.status_code in _TRANSIENT_CODES and attempt < self.cancel_attempts:
                    log.warning(
                        "Cancel of Azure ML job %s answered %s; trying again (%d/%d)",
                        job_id,
                        err.status_code,
                        attempt,
                        self.cancel_attempts,
                    )
                    time.sleep(self.cancel_backoff * 2 ** (attempt - 1))
                    continue
                # It may have ended (or begun cancelling) since the describe.
                status = self.describe(ref)
                if status.phase in (JobPhase.PENDING, JobPhase.RUNNING):
                    raise
                log.info("Azure ML job %s is %s already; nothing to stop", job_id, status.state)
                return
        log.info("Asked Azure ML job %s to cancel: %s", job_id, reason)

    @override
    def is_transient(self, error: BaseException) -> bool:
        """Throttling, 5xx answers and connection failures are worth another try."""
        from azure.core.exceptions import HttpResponseError, ServiceRequestError, ServiceResponseError

        if isinstance(error, (ServiceRequestError, ServiceResponseError)):
            return True
        if isinstance(error, HttpResponseError):
            return error.status_code in _TRANSIENT_CODES
        return super().is_transient(error)

    @override
    def result(
        self, status: JobStatus, spec: TrainingJobSpec | None = None, attempt: int = 1
    ) -> dict[str, Any]:
        """The base result, with ``output_uri`` as an ``abfss://`` URI fsspec (adlfs) can read; the
        datastore URI the job wrote to stays in ``details['output_datastore_uri']``."""
        out = super().result(status, spec, attempt)
        if status.output_uri:
            readable = self.readable_uri(status.output_uri)
            if readable != status.output_uri:
                out["details"] = {**out["details"], "output_datastore_uri": status.output_uri}
                out["output_uri"] = readable
        return out

    @override
    def metrics(self, status: JobStatus) -> dict[str, Any] | None:
        """The ``metrics.json`` a succeeded job wrote next to its model, read from the datastore's blob."""
        if status.phase != JobPhase.SUCCEEDED or not status.output_uri:
            return None
        where = azure_request.datastore_path(status.output_uri)
        if where is None:
            return None
        data = self._read_blob(where[0], f"{where[1].rstrip('/')}/metrics.json")
        if data is None:
            return None
        try:
            parsed = json.loads(data)
        except ValueError:
            log.warning("metrics.json of Azure ML job %s is not JSON", status.job_id)
            return None
        return parsed if isinstance(parsed, dict) else None

    @override
    def log_tail(self, job: JobRef | str, lines: int = 50) -> list[str]:
        """The last lines of the job's ``std_log``, from the workspace artifact store."""
        job_id = self.ref(job).job_name
        for name in LOG_FILES:
            data = self._read_blob(ARTIFACT_DATASTORE, f"ExperimentRun/dcid.{job_id}/{name}")
            if data is not None:
                return data.decode("utf-8", errors="replace").splitlines()[-max(1, int(lines)) :]
        return []

    def readable_uri(self, uri: str) -> str:
        """An ``azureml://datastores/<name>/paths/<p>`` URI as ``abfss://<container>@<account>.dfs.<suffix>/<p>``."""
        where = azure_request.datastore_path(uri)
        if where is None:
            return uri
        account, container, suffix = self._datastore(where[0])
        return f"abfss://{container}@{account}.dfs.{suffix}/{where[1].lstrip('/')}"

    # -- helpers --------------------------------------------------------------------------------

    def _check_cluster(self, spec: TrainingJobSpec, compute: str) -> str:
        """One GET of the named cluster: its VM size, its node limit and its tier.

        :raises ValueError: the cluster does not exist, is too small for ``spec.instance_count``, or is
            dedicated while ``spec.spot`` asks for low priority.
        """
        from azure.core.exceptions import ResourceNotFoundError

        try:
            cluster = self.client.compute.get(compute)
        except ResourceNotFoundError:
            raise ValueError(
                f"compute: no Azure ML compute named {compute!r} in workspace {self.workspace[2]!r}"
            ) from None
        size = str(getattr(cluster, "size", None) or "")
        max_nodes = getattr(cluster, "max_instances", None)
        tier = str(getattr(cluster, "tier", None) or "dedicated")
        if max_nodes is not None and spec.instance_count > int(max_nodes):
            raise ValueError(
                f"spec.instance_count: cluster {compute!r} runs at most {max_nodes} node(s), got {spec.instance_count}"
            )
        if spec.spot and tier.replace("_", "").lower() != "lowpriority":
            raise ValueError(
                f"spec.spot: cluster {compute!r} is {tier!r}, not low priority (got spot=True); name a "
                "low-priority cluster, or leave compute out to run spot on serverless compute"
            )
        return size

    def _command_job(self, plan: azure_request.JobPlan) -> Any:
        """The SDK's command job for ``plan``; the SDK builds and checks its REST body."""
        from azure.ai.ml import Input, Output, PyTorchDistribution, command
        from azure.ai.ml.entities import Environment, JobResourceConfiguration

        environment: Any = (
            Environment(image=plan.environment) if plan.environment_is_image else plan.environment
        )
        kwargs: dict[str, Any] = {}
        if plan.compute:
            kwargs["compute"] = plan.compute
        if plan.instance_count > 1:
            kwargs["distribution"] = PyTorchDistribution(
                process_count_per_instance=plan.process_count_per_instance
            )
        if plan.spot and not plan.compute:
            kwargs["queue_settings"] = {"job_tier": "Spot"}
        job = command(
            name=plan.name,
            display_name=plan.name,
            experiment_name=plan.experiment_name,
            command=plan.command,
            environment=environment,
            inputs={
                name: Input(type=kind, path=uri, mode="ro_mount") for name, (kind, uri) in plan.inputs.items()
            },
            outputs={
                name: Output(type="uri_folder", path=uri, mode="rw_mount")
                for name, uri in plan.outputs.items()
            },
            environment_variables=plan.environment_variables,
            tags=plan.tags,
            timeout=plan.timeout,
            instance_count=plan.instance_count,
            **kwargs,
        )
        if not plan.compute:
            job.resources = JobResourceConfiguration(
                instance_type=plan.instance_type, instance_count=plan.instance_count
            )
        return job

    def _status(self, job: Any, job_id: str) -> JobStatus:
        return status_from_facts(job_facts(job), job_id, self.region)

    def _datastore(self, name: str) -> tuple[str, str, str]:
        """(account, container, endpoint suffix) of a blob or ADLS Gen2 datastore: one GET, then cached."""
        if name not in self._datastores:
            store = self.client.datastores.get(name)
            container = getattr(store, "container_name", None) or getattr(store, "filesystem", None)
            account = getattr(store, "account_name", None)
            if not account or not container:
                raise ValueError(f"datastore {name!r} is not a blob or ADLS Gen2 datastore")
            suffix = str(getattr(store, "endpoint", None) or "core.windows.net")
            self._datastores[name] = (str(account), str(container), suffix)
        return self._datastores[name]

    def _read_blob(self, datastore: str, path: str) -> bytes | None:
        """One blob of a datastore, read with the connection's credential; ``None`` when it is absent."""
        # azure-storage-blob ships with azure-ai-ml; imported only when a job's files are read.
        from azure.core.exceptions import AzureError, ResourceNotFoundError
        from azure.storage.blob import BlobClient

        try:
            account, container, suffix = self._datastore(datastore)
            # azure-identity builds its HttpLoggingPolicy from these kwargs: its token requests log there too.
            kwargs: dict[str, Any] = {"logger": http_log}
            transport = self._transport()
            if transport is not None:
                kwargs["transport"] = transport
            blob = BlobClient(
                account_url=f"https://{account}.blob.{suffix}",
                container_name=container,
                blob_name=path.lstrip("/"),
                credential=self.credential,
                **kwargs,
            )
            return bytes(blob.download_blob().readall())
        except ResourceNotFoundError:
            return None
        except (AzureError, ValueError) as err:
            log.warning("Could not read %s from datastore %s: %s", path, datastore, type(err).__name__)
            return None
