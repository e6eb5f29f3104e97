"""The Ray cluster backend's lifecycle: submit, describe, stop and read logs of a Ray job over HTTP.

The job's ``submission_id`` is our deterministic job name, and the Jobs API refuses a second job with
the same id: a retry, a restarted worker or the triggerer finds the job again with one
``GET /api/jobs/{name}``, never a listing. Neither the worker nor the triggerer imports ``ray``: the
calls go through :mod:`airflow_trainkit.backends.ray.client` (httpx), and the triggerer's are async.
"""

from __future__ import annotations

import json
import logging
import shlex
from functools import cached_property
from typing import TYPE_CHECKING, Any

from typing_extensions import override

from airflow_trainkit.backends.ray.status import (
    META_INSTANCE_COUNT,
    META_INSTANCE_TYPE,
    META_JOB_NAME,
    META_OUTPUT_URI,
    PHASES,
    RayJobState,
    status_from_job,
)
from airflow_trainkit.training.backend import JobRef, JobStatus, TrainingBackend, register_backend
from airflow_trainkit.training.capabilities import Capabilities
from airflow_trainkit.training.pricing import BackendPricing

if TYPE_CHECKING:
    from airflow_trainkit.backends.ray.client import RayJobsClient
    from airflow_trainkit.hooks.ray import RaySettings
    from airflow_trainkit.training.identity import JobIdentity
    from airflow_trainkit.training.spec import TrainingJobSpec

log = logging.getLogger(__name__)

# spec.options the backend reads; anything else is refused.
OPTIONS = {
    "working_dir": "a local folder uploaded as the job's working directory",
    "num_cpus": "CPUs the entrypoint holds (single process; default 1) or each worker holds (distributed)",
    "workers": "Ray workers of the built-in distributed trainer (default: instance_count)",
    "stop_grace_seconds": "seconds between the launcher's SIGTERM and SIGKILL at max_runtime (default 30)",
}
DEFAULT_STOP_GRACE = 30
_METADATA_LIMIT = 200  # characters per metadata value: Ray keeps metadata in its GCS


@register_backend("ray")
class RayBackend(TrainingBackend):
    """Run a :class:`~airflow_trainkit.training.spec.TrainingJobSpec` as a Ray job through the Jobs API.

    :param conn_id: a ``trainkit_ray`` connection; ``None`` for ``trainkit_ray_default``.
    """

    State = RayJobState
    PHASES = PHASES
    capabilities = Capabilities(
        refused={"spot": "runs on the cluster's own nodes and has no spot capacity to ask for"},
        not_applicable={
            "image": "the job runs in the cluster's own Python environment",
            "allow_cpu": "the cluster's scheduler places the job: a GPU request waits for a GPU node "
            "(bounded by max_wait)",
            "allow_spot_without_checkpoint": "there is no spot capacity",
        },
    )
    pricing = BackendPricing(
        catalog_key="onprem",
        rows="onprem_settings",
        spot_rate="on_demand",
        basis="wall time x instances x your hourly cost of the node type (on-prem cost settings); the "
        "Jobs API does not report what a job held, so the resources the spec asked for are priced",
    )
    poll_interval = 10.0
    shared_per_connection = True
    # progress.json in the job's output URI (from its metadata, so known while it runs); the
    # single-process trainer writes it as it trains to a folder this process can read (a local or
    # shared path), to object storage only at the end.
    reports_progress = True

    # -- connection -------------------------------------------------------------------------------

    @cached_property
    def settings(self) -> RaySettings:
        """The connection's settings (address, token, TLS, package storage), read once per backend."""
        from airflow_trainkit.hooks.ray import RayClusterHook

        return RayClusterHook(self.conn_id).settings()

    @cached_property
    def client(self) -> RayJobsClient:
        """This backend's Jobs API client, shared by the worker's calls and the triggerer's loops."""
        from airflow_trainkit.backends.ray.client import RayJobsClient

        return RayJobsClient(self.settings)

    @property
    def console_url(self) -> str:
        """The dashboard a job's console link points into: the connection's ``console_url``, else its address."""
        return self.settings.console_url or self.settings.address

    # -- checks -----------------------------------------------------------------------------------

    @override
    def validate(self, spec: TrainingJobSpec) -> None:
        """Options, output and package size, before anything is uploaded or submitted."""
        unknown = sorted(set(spec.options) - set(OPTIONS))
        if unknown:
            raise ValueError(
                f"spec.options: unknown option(s) {', '.join(map(repr, unknown))} for the ray backend; "
                f"known: {', '.join(sorted(OPTIONS))}"
            )
        for name in ("num_cpus",):
            value = spec.options.get(name)
            if value is not None and (
                isinstance(value, bool) or not isinstance(value, (int, float)) or value <= 0
            ):
                raise ValueError(f"spec.options[{name!r}] must be a positive number, got {value!r}")
        for name in ("workers", "stop_grace_seconds"):
            value = spec.options.get(name)
            if value is not None and (isinstance(value, bool) or not isinstance(value, int) or value < 1):
                raise ValueError(
                    f"spec.options[{name!r}] must be a whole number of at least 1, got {value!r}"
                )
        if not spec.output_uri:
            raise ValueError(
                "spec.output_uri is required on the ray backend (got None): storage that every node of "
                "the cluster and the Airflow worker can read"
            )
        if self._workers(spec) > 1 and spec.checkpoint_uri and self._builtin(spec):
            raise ValueError(
                f"spec.checkpoint_uri: the distributed built-in trainer does not resume from checkpoints "
                f"(got {spec.checkpoint_uri!r})"
            )
        self._package(spec)

    # -- the backend interface --------------------------------------------------------------------

    @override
    def submit(
        self, spec: TrainingJobSpec, job: JobRef | str, identity: JobIdentity | None = None
    ) -> JobStatus:
        from airflow_trainkit.backends.ray.client import SUBMIT_TIMEOUT, RayApiError
        from airflow_trainkit.exceptions import TrainingJobUnreachable

        job_id = self.ref(job).job_name
        package, data = self._package(spec)
        self._upload(package, data)
        body = self.request_body(spec, job_id, package, identity, start_by=self.ref(job).deadline)
        log.info(
            "Submitting Ray job %s to %s: %s (%s)",
            job_id,
            self.settings.address,
            body["entrypoint"],
            ", ".join(f"{k}={v}" for k, v in body.items() if k.startswith("entrypoint_")) or "no resources",
        )
        try:
            self.client.request("POST", "/api/jobs/", json=body, timeout=SUBMIT_TIMEOUT)
        except RayApiError as err:
            if not err.already_exists:
                if err.transient:
                    return self._after_unclear_submit(job_id, err)
                raise
            log.info("Ray job %s exists already; re-attaching to it", job_id)
        except TrainingJobUnreachable as err:
            if not err.transient:
                raise
            return self._after_unclear_submit(job_id, err)
        return self.describe(job_id)

    def _after_unclear_submit(self, job_id: str, err: Exception) -> JobStatus:
        """A submit that timed out or got a 5xx may still have started the job: look before failing."""
        status = self.find(job_id)
        if status is None:
            raise err
        log.info("The submit of Ray job %s answered %s, but the job exists: following it", job_id, err)
        return status

    @override
    def describe(self, job: JobRef | str) -> JobStatus:
        job_id = self.ref(job).job_name
        try:
            info = self.client.request("GET", self._path(job_id))
        except Exception as err:
            self._raise_not_found(job_id, err)
            raise
        return self._status(job_id, info)

    @override
    async def describe_async(self, job: JobRef | str) -> JobStatus:
        """``GET /api/jobs/{name}`` on this event loop's async client."""
        import asyncio

        job_id = self.ref(job).job_name
        if "settings" not in self.__dict__:  # the connection is read once, off the event loop
            await asyncio.to_thread(lambda: self.settings)
        try:
            info = await self.client.arequest("GET", self._path(job_id))
        except Exception as err:
            self._raise_not_found(job_id, err)
            raise
        return self._status(job_id, info)

    @override
    def stop(self, job: JobRef | str, *, reason: str = "stopped by Airflow") -> None:
        """``POST /api/jobs/{name}/stop``; a job that has ended or does not exist is left alone."""
        job_id = self.ref(job).job_name
        try:
            answer = self.client.request("POST", f"{self._path(job_id)}/stop")
        except Exception as err:
            if _not_found(err):
                log.info("Ray job %s does not exist; nothing to stop", job_id)
                return
            raise
        self._log_stop(job_id, answer, reason)

    @override
    async def stop_async(self, job: JobRef | str, *, reason: str = "stopped by Airflow") -> None:
        import asyncio

        job_id = self.ref(job).job_name
        if "settings" not in self.__dict__:
            await asyncio.to_thread(lambda: self.settings)
        try:
            answer = await self.client.arequest("POST", f"{self._path(job_id)}/stop")
        except Exception as err:
            if _not_found(err):
                return
            raise
        self._log_stop(job_id, answer, reason)

    @override
    def log_tail(self, job: JobRef | str, lines: int = 50) -> list[str]:
        """The driver's last lines (``GET /api/jobs/{name}/logs``)."""
        job_id = self.ref(job).job_name
        answer = self.client.request("GET", f"{self._path(job_id)}/logs")
        text = str((answer or {}).get("logs") or "")
        return text.splitlines()[-lines:] if lines > 0 else []

    @override
    def is_transient(self, error: BaseException) -> bool:
        """Throttling, 5xx answers and an API that does not answer are worth another try."""
        from airflow_trainkit.backends.ray.client import RayApiError
        from airflow_trainkit.exceptions import TrainingJobUnreachable

        if isinstance(error, RayApiError):
            return error.transient
        if isinstance(error, TrainingJobUnreachable):
            return error.transient
        return super().is_transient(error)

    # -- the request ------------------------------------------------------------------------------

    def request_body(
        self,
        spec: TrainingJobSpec,
        job_id: str,
        package: str,
        identity: JobIdentity | None = None,
        *,
        start_by: float | None = None,
    ) -> dict[str, Any]:
        """The ``POST /api/jobs/`` body: entrypoint, runtime_env, metadata and entrypoint resources.

        :param start_by: the task's deadline (epoch seconds): a job placed later does not run.
        """
        workers = self._workers(spec)
        command = list(spec.command)
        builtin = self._builtin(spec)
        if builtin and workers > 1:
            from airflow_trainkit.backends.ray.package import DISTRIBUTED_MODULE

            command[2] = DISTRIBUTED_MODULE
        from airflow_trainkit.backends.ray.package import LAUNCHER_NAME

        grace = int(spec.options.get("stop_grace_seconds") or DEFAULT_STOP_GRACE)
        limits = f"--max-runtime {spec.max_runtime} --grace {grace}"
        if start_by:
            limits += f" --start-by {int(start_by)}"
        entrypoint = f"python {LAUNCHER_NAME} {limits} -- {shlex.join(command)}"
        accelerator = spec.parsed_accelerator
        cpus = float(spec.options.get("num_cpus") or 1)
        env = dict(spec.env)
        env.update(
            {
                "TRAINKIT_JOB_ID": job_id,
                "TRAINKIT_OUTPUT_URI": str(spec.output_uri),
                "TRAINKIT_INPUTS": json.dumps(spec.inputs),
                "TRAINKIT_HYPERPARAMETERS": json.dumps(spec.hyperparameters),
                "TRAINKIT_GPU_COUNT": str(accelerator.count if accelerator else 0),
                "TRAINKIT_RAY_WORKERS": str(workers),
                **{f"TRAINKIT_INPUT_{name.upper()}": uri for name, uri in spec.inputs.items()},
            }
        )
        if spec.checkpoint_uri:
            env["TRAINKIT_CHECKPOINT_URI"] = spec.checkpoint_uri
        body: dict[str, Any] = {
            "entrypoint": entrypoint,
            "submission_id": job_id,
            "runtime_env": {"working_dir": f"gcs://{package}", "env_vars": env},
            "metadata": self._metadata(spec, job_id, identity, workers),
        }
        if workers > 1:
            # The driver holds nothing: each worker asks for its share through its actor options.
            env["TRAINKIT_RAY_CPUS_PER_WORKER"] = f"{cpus:g}"
            env["TRAINKIT_RAY_GPUS_PER_WORKER"] = str(accelerator.count if accelerator else 0)
        else:
            body["entrypoint_num_cpus"] = cpus
            if accelerator:
                body["entrypoint_num_gpus"] = accelerator.count
                if accelerator.model:
                    # Ray labels each GPU node with the resource accelerator_type:<model>.
                    body["entrypoint_resources"] = {f"accelerator_type:{accelerator.model}": 0.001}
        return body

    def _metadata(
        self, spec: TrainingJobSpec, job_id: str, identity: JobIdentity | None, workers: int
    ) -> dict[str, str]:
        metadata = {str(k): str(v)[:_METADATA_LIMIT] for k, v in spec.tags.items()}
        if identity is not None:
            metadata.update(
                {
                    "airflow_dag_id": identity.dag_id,
                    "airflow_run_id": identity.run_id,
                    "airflow_task_id": identity.task_id,
                    "airflow_map_index": str(identity.map_index),
                }
            )
        metadata.update(
            {
                META_JOB_NAME: job_id,
                META_OUTPUT_URI: str(spec.output_uri),
                META_INSTANCE_COUNT: str(workers if workers > 1 else spec.instance_count),
                META_INSTANCE_TYPE: spec.instance_type_for(self.name) or "",
            }
        )
        return {k: v[:_METADATA_LIMIT] if k not in (META_OUTPUT_URI,) else v for k, v in metadata.items()}

    # -- helpers ----------------------------------------------------------------------------------

    @staticmethod
    def _builtin(spec: TrainingJobSpec) -> bool:
        from airflow_trainkit.backends.ray.package import BUILTIN_MODULES

        command = spec.command
        return (
            len(command) >= 3
            and command[0] in ("python", "python3")
            and command[1] == "-m"
            and (command[2] in BUILTIN_MODULES)
        )

    @staticmethod
    def _workers(spec: TrainingJobSpec) -> int:
        return int(spec.options.get("workers") or spec.instance_count)

    def _package(self, spec: TrainingJobSpec) -> tuple[str, bytes]:
        from airflow_trainkit.backends.ray.package import package_files, zip_package

        working_dir = spec.options.get("working_dir")
        files = package_files(builtin_trainer=self._builtin(spec), working_dir=working_dir)
        field = "spec.options['working_dir']" if working_dir else f"connection {self.settings.conn_id!r}"
        return zip_package(files, max_bytes=int(self.settings.max_package_mb * 2**20), field=field)

    def _upload(self, package: str, data: bytes) -> None:
        """Store the package in the cluster unless it holds it already (the GET also pins it a while)."""
        from airflow_trainkit.backends.ray.client import SUBMIT_TIMEOUT

        path = f"/api/packages/gcs/{package}"
        try:
            self.client.request("GET", path)
            return
        except Exception as err:
            if not _not_found(err):
                raise
        log.info("Uploading the job's working directory (%d bytes) as %s", len(data), package)
        self.client.request(
            "PUT", path, content=data, headers={"Content-Type": "application/zip"}, timeout=SUBMIT_TIMEOUT
        )

    @staticmethod
    def _path(job_id: str) -> str:
        from urllib.parse import quote

        return f"/api/jobs/{quote(job_id, safe='')}"

    def _raise_not_found(self, job_id: str, err: BaseException) -> None:
        from airflow_trainkit.exceptions import TrainingJobNotFound

        if _not_found(err):
            raise TrainingJobNotFound(self.name, job_id) from None

    def _status(self, job_id: str, info: Any) -> JobStatus:
        if not isinstance(info, dict) or "status" not in info:
            from airflow_trainkit.backends.ray.client import RayApiError

            raise RayApiError("GET", self._path(job_id), 200, "the answer carries no job status")
        return status_from_job(info, job_id, self.console_url)

    def _log_stop(self, job_id: str, answer: Any, reason: str) -> None:
        if isinstance(answer, dict) and answer.get("stopped"):
            log.info("Asked Ray job %s to stop: %s", job_id, reason)
        else:
            log.info("Ray job %s had ended already; nothing to stop", job_id)


def _not_found(err: BaseException) -> bool:
    from airflow_trainkit.backends.ray.client import RayApiError

    return isinstance(err, RayApiError) and err.not_found
