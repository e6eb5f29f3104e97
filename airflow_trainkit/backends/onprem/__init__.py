"""The on-prem GPU backend: jobs run on GPU hosts, pinned to GPUs, supervised by a runner.

Each job has a directory ``<root>/<job id>/`` on its host with ``job.json`` (what to run),
``state.json`` (written by the runner), ``stop.json`` (a stop request) and ``output.log``.
Everything the backend knows it reads from there, through the host's transport
(:mod:`.transport`: this host, or a GPU server over SSH), so a retry, a restarted worker or the
triggerer finds a job again by its name alone. With the local transport the triggerer must see the
same root (same host or a shared folder); with SSH it asks the host. The job directory is private
(0700, its files 0600) and holds no environment: the job's environment goes to the runner process
directly when it is spawned (over SSH, on the channel's stdin).
"""

from __future__ import annotations

import asyncio
import json
import os
import re
import sys
from datetime import UTC, datetime
from enum import StrEnum
from functools import cached_property
from typing import TYPE_CHECKING, Any

from typing_extensions import override

from airflow_trainkit.training.backend import JobPhase, JobRef, JobStatus, TrainingBackend, register_backend
from airflow_trainkit.training.capabilities import Capabilities
from airflow_trainkit.training.pricing import BackendPricing

if TYPE_CHECKING:
    from collections.abc import Mapping
    from pathlib import Path

    from airflow_trainkit.backends.onprem.placement import Candidate
    from airflow_trainkit.backends.onprem.transport import Transport
    from airflow_trainkit.hooks.onprem import OnPremSettings
    from airflow_trainkit.training.identity import JobIdentity
    from airflow_trainkit.training.spec import TrainingJobSpec

ROOT_MARKER = ".trainkit-onprem-root"
# A runner that has not written its pid this long after submit is taken as lost.
RUNNER_START_GRACE_SECONDS = 60.0
# The largest progress.json read from an SSH host (a few thousand rounds of a few metrics is ~0.5 MB).
PROGRESS_READ_LIMIT = 8_000_000
# Worker environment the job must not inherit: Airflow's connections, variables and config, and
# whatever is named like a credential. A job that needs one gets it through spec.env.
_SECRET_ENV = re.compile(
    r"^(AIRFLOW_CONN_|AIRFLOW_VAR_|AIRFLOW__)|SECRET|PASSWORD|PASSWD|_PWD$|PASSPHRASE|TOKEN|CREDENTIAL"
    r"|API_?KEY|ACCESS_?KEY|PRIVATE_?KEY|_KEY$|CONNECTION_?STRING|COOKIE",
    re.IGNORECASE,
)
# ... and whatever holds a URL with a password in it (postgresql://user:pass@host/db).
_URL_WITH_PASSWORD = re.compile(r"[A-Za-z][A-Za-z0-9+.-]*://[^/@\s:]*:[^/@\s]*@")


class OnPremState(StrEnum):
    """A job's state as its runner records it in ``state.json``; ``LOST`` is the backend's verdict."""

    PENDING = "PENDING"
    RUNNING = "RUNNING"
    STOPPING = "STOPPING"
    SUCCEEDED = "SUCCEEDED"
    FAILED = "FAILED"
    STOPPED = "STOPPED"
    LOST = "LOST"  # the runner died without recording an outcome (host reboot, OOM kill)


@register_backend("onprem")
class OnPremBackend(TrainingBackend):
    """Run training commands on this host's GPUs (or CPU), or on GPU servers over SSH, detached from
    the Airflow task.

    :param conn_id: a ``trainkit_onprem`` connection, or ``None`` for the embedded defaults.
    """

    State = OnPremState
    PHASES = {
        OnPremState.PENDING: JobPhase.PENDING,
        OnPremState.RUNNING: JobPhase.RUNNING,
        OnPremState.STOPPING: JobPhase.STOPPING,
        OnPremState.SUCCEEDED: JobPhase.SUCCEEDED,
        OnPremState.FAILED: JobPhase.FAILED,
        OnPremState.STOPPED: JobPhase.STOPPED,
        OnPremState.LOST: JobPhase.FAILED,
    }
    capabilities = Capabilities(
        refused={"spot": "has no spot capacity: its jobs run on hosts you own"},
        not_applicable={
            "image": "the command runs on the host itself, not in a container",
            "tags": "jobs are folders on the host and carry no labels",
            "allow_spot_without_checkpoint": "there is no spot capacity",
        },
        max_instance_count=1,
    )
    pricing = BackendPricing(
        catalog_key="onprem",
        rows="onprem_settings",
        spot_rate="on_demand",
        basis="wall time x your hourly cost of the host x the share of its GPUs used (whole host for CPU runs)",
    )
    poll_interval = 2.0  # one local file read, or one short command on an SSH host
    reports_progress = True  # the job's output folder, read here or on its SSH host

    @cached_property
    def settings(self) -> OnPremSettings:
        """The connection's settings (transport, hosts, root, GPUs, grace), read once per backend."""
        from airflow_trainkit.hooks.onprem import OnPremGpuHook

        return OnPremGpuHook(self.conn_id).settings()

    @cached_property
    def transports(self) -> dict[str, Transport]:
        """Each host's transport by its name: this host's alone, or one per SSH host, in order."""
        from airflow_trainkit.backends.onprem.transport import LocalTransport

        if self.settings.transport == "ssh":
            from airflow_trainkit.backends.onprem.ssh import SshTransport

            return {
                h.ssh_conn_id: SshTransport(h.ssh_conn_id, h.root, gpus=h.gpus, python=h.python)
                for h in self.settings.hosts
            }
        local = LocalTransport(self.settings.gpus)
        return {local.host: local}

    @property
    def transport(self) -> Transport:
        """The first (for the local transport, the only) host's transport."""
        return next(iter(self.transports.values()))

    @property
    def root(self) -> Path:
        """The connection's job root (with the SSH transport, a host may name its own: :meth:`root_on`)."""
        return self.settings.root

    def root_on(self, transport: Transport) -> str:
        """The job root on the host of ``transport``."""
        return str(getattr(transport, "root", None) or self.settings.root)

    def host_gpus(self) -> list[dict[str, str]]:
        """The first host's GPUs: its configured inventory, else what ``nvidia-smi`` lists there."""
        return self.transport.gpus()

    @override
    def validate(self, spec: TrainingJobSpec) -> None:
        from airflow_trainkit import storage

        if self.settings.transport == "local":
            for channel, uri in spec.inputs.items():
                if storage.is_local(uri) and not storage.local_path(uri).exists():
                    raise ValueError(f"spec.inputs[{channel!r}]: no such file or folder {uri!r}")
        else:
            self._check_hosts()
        self._eligible(spec)

    def _check_hosts(self) -> None:
        """Each SSH host answers with a Python the runner can use. A host that cannot be reached now
        is left to placement (which passes over it) unless none can; a refused key, an untrusted
        host key or an old Python is an error at once."""
        from airflow_trainkit.exceptions import TrainingJobUnreachable

        unreachable = []
        for transport in self.transports.values():
            try:
                transport.check_python()
            except TrainingJobUnreachable as err:
                if not err.transient:
                    raise
                unreachable.append(err)
        if len(unreachable) == len(self.transports):
            raise unreachable[0]

    def _gpu_plan(self, spec: TrainingJobSpec, transport: Transport | None = None) -> int:
        """How many GPUs the job takes on one host; refuses what that host cannot give."""
        from airflow_trainkit.backends.onprem.placement import host_plan

        return host_plan(spec, transport or self.transport)[0]

    def _eligible(self, spec: TrainingJobSpec) -> list[Candidate]:
        from airflow_trainkit.backends.onprem.placement import eligible

        return eligible(spec, list(self.transports.values()))

    def place(self, spec: TrainingJobSpec) -> Candidate:
        """The host a new job goes to, by :func:`~airflow_trainkit.backends.onprem.placement.choose`."""
        from airflow_trainkit.backends.onprem.placement import choose

        return choose(self._eligible(spec), self.root_on)

    @override
    def submit(
        self, spec: TrainingJobSpec, job: JobRef | str, identity: JobIdentity | None = None
    ) -> JobStatus:
        from airflow_trainkit import storage
        from airflow_trainkit.backends.onprem.runner import JOB_PYTHONPATH_VAR
        from airflow_trainkit.home import artifacts_dir

        job_id = self.ref(job).job_name
        transport, gpu_count, gpus = self.place(spec)
        root = self.root_on(transport)
        job_dir = f"{root}/{job_id}"
        remote = transport.ships_runner
        if remote:
            output_uri = spec.output_uri or f"{root}/outputs/{job_id}"
            local_inputs = {c: u for c, u in spec.inputs.items() if storage.is_local(u)}
            missing = transport.call(
                "missing", paths=[str(storage.local_path(u)) for u in local_inputs.values()]
            )
            for channel, uri in local_inputs.items():
                if str(storage.local_path(uri)) in missing:
                    raise ValueError(
                        f"spec.inputs[{channel!r}]: no such file or folder {uri!r} on host {transport.host!r}"
                    )
            env: dict[str, str] = {}
        else:
            output_uri = spec.output_uri or str(artifacts_dir() / job_id)
            env = inherited_env(os.environ)
        env.update(spec.env)
        env.update(
            {
                "TRAINKIT_JOB_ID": job_id,
                "TRAINKIT_JOB_DIR": job_dir,
                "TRAINKIT_OUTPUT_URI": output_uri,
                "TRAINKIT_INPUTS": json.dumps(spec.inputs),
                "TRAINKIT_HYPERPARAMETERS": json.dumps(spec.hyperparameters),
                **{f"TRAINKIT_INPUT_{name.upper()}": uri for name, uri in spec.inputs.items()},
            }
        )
        if spec.checkpoint_uri:
            env["TRAINKIT_CHECKPOINT_URI"] = spec.checkpoint_uri
        files: dict[str, str] | None = None
        if remote:
            from airflow_trainkit.backends.onprem.shipping import ship

            files = ship(spec, transport, job_dir, env)
        command = list(spec.command)
        if command[0] in ("python", "python3"):
            command[0] = transport.python()
        record = {
            "job_id": job_id,
            "root": root,
            "host": transport.host,
            "workdir": f"{job_dir}/work",
            "command": command,
            "gpu_count": gpu_count,
            "host_gpus": gpus if gpu_count else [],
            "max_runtime": spec.max_runtime,
            # How long the runner may wait for free GPUs: the spec's max_wait is the wait plus the run.
            "max_wait": (spec.max_wait - spec.max_runtime) if spec.max_wait else spec.max_runtime,
            "grace_seconds": self.settings.grace_seconds,
            "output_uri": output_uri,
        }
        state = {"state": OnPremState.PENDING.value, "submitted_at": _utcnow(), "message": "starting"}
        prepared = transport.call(
            "prepare",
            root=root,
            job_id=job_id,
            job_json=json.dumps(record, indent=1),
            state_json=json.dumps(state),
            output_dir=str(storage.local_path(output_uri)) if storage.is_local(output_uri) else None,
            files=files,
        )
        if prepared["exists"]:
            raise FileExistsError(
                f"on-prem job {job_id!r} exists already in {job_dir} on host {transport.host!r}"
            )
        # The environment travels with the spawn only (on the SSH channel's stdin for a remote
        # host); the runner hands it to the command.
        if remote:
            argv = [transport.python(), f"{job_dir}/runner.py", job_dir]
        else:
            argv = [sys.executable, "-m", "airflow_trainkit.backends.onprem.runner", job_dir]
            env[JOB_PYTHONPATH_VAR] = env.get("PYTHONPATH", "")
            env["PYTHONPATH"] = os.pathsep.join(p for p in sys.path if p)
        transport.call("spawn", job_dir=job_dir, argv=argv, env=env, inherit=remote)
        return self.describe(self._ref(job_id, transport))

    def _ref(self, job_id: str, transport: Transport) -> JobRef:
        handle = f"{transport.host}/{job_id}" if transport.ships_runner else None
        return JobRef(backend=self.name, job_name=job_id, handle=handle)

    def _candidates(self, ref: JobRef) -> list[Transport]:
        """The hosts that may hold the job: the one its handle names, else every host in order."""
        if ref.handle and "/" in ref.handle:
            host = ref.handle.rpartition("/")[0]
            if host in self.transports:
                return [self.transports[host]]
        return list(self.transports.values())

    @override
    def find(self, job: JobRef | str) -> JobStatus | None:
        # Called by the worker that is about to submit: a local root that does not exist yet is new,
        # not invisible, so make it here and keep "unreachable" for readers such as the triggerer.
        if self.settings.transport == "local" and not (self.root / ROOT_MARKER).exists():
            self.transport.call("prepare_root", root=str(self.root))
        return super().find(job)

    @override
    def describe(self, job: JobRef | str) -> JobStatus:
        ref = self.ref(job)
        candidates = self._candidates(ref)
        for transport in candidates:
            snapshot = transport.call(
                "snapshot",
                root=self.root_on(transport),
                job_id=ref.job_name,
                start_grace=RUNNER_START_GRACE_SECONDS,
            )
            if snapshot["state"] is not None or len(candidates) == 1:
                return self._status(ref.job_name, transport, snapshot)
        return self._status(ref.job_name, candidates[-1], snapshot)

    @override
    async def describe_async(self, job: JobRef | str) -> JobStatus:
        """One remote command per describe of a job whose host is known, on a shared connection."""
        ref = self.ref(job)
        candidates = await asyncio.to_thread(self._candidates, ref)  # reads the connection once
        for transport in candidates:
            snapshot = await transport.call_async(
                "snapshot",
                root=self.root_on(transport),
                job_id=ref.job_name,
                start_grace=RUNNER_START_GRACE_SECONDS,
            )
            if snapshot["state"] is not None or len(candidates) == 1:
                return self._status(ref.job_name, transport, snapshot)
        return self._status(ref.job_name, candidates[-1], snapshot)

    def _status(self, job_id: str, transport: Transport, snapshot: dict[str, Any]) -> JobStatus:
        from airflow_trainkit.exceptions import TrainingJobNotFound, TrainingJobUnreachable

        root = self.root_on(transport)
        job_dir = f"{root}/{job_id}"
        state = snapshot["state"]
        if state is None:
            if not snapshot["root_visible"] and not transport.ships_runner:
                raise TrainingJobUnreachable(
                    f"on-prem job root {root} is not visible from host {transport.host!r}: the "
                    "triggerer and the workers must share it (same host, or a shared folder set as the "
                    "connection's 'root')",
                    where=root,
                )
            raise TrainingJobNotFound(self.name, job_id)
        record = snapshot.get("job") or {}
        name = state.get("state", "PENDING")
        message = state.get("message")
        if OnPremState(name) in (OnPremState.PENDING, OnPremState.RUNNING, OnPremState.STOPPING):
            if not snapshot.get("runner_alive"):
                name, message = (
                    OnPremState.LOST.value,
                    "the job's runner process died without recording an outcome",
                )
        gpus = state.get("gpus") or []
        ref = self._ref(job_id, transport)
        return JobStatus(
            job_id=job_id,
            state=name,
            phase=self.phase_of(name),
            message=message,
            started_at=state.get("started_at"),
            ended_at=state.get("ended_at"),
            billable_seconds=state.get("billable_seconds"),
            instance_type="onprem",
            instance_count=1,
            output_uri=record.get("output_uri"),
            console_url=None,
            details={
                "host": transport.host,
                "transport": self.settings.transport,
                "gpus": [g["index"] for g in gpus],
                "exit_code": state.get("exit_code"),
                "job_dir": job_dir,
                "log": f"{job_dir}/output.log",
            },
            handle=ref.handle,
        )

    @override
    def stop(self, job: JobRef | str, *, reason: str = "stopped by Airflow") -> None:
        ref = self.ref(job)
        for transport in self._candidates(ref):
            done = transport.call(
                "stop",
                root=self.root_on(transport),
                job_id=ref.job_name,
                reason=reason,
                start_grace=RUNNER_START_GRACE_SECONDS,
            )
            if done["found"]:
                return

    @override
    async def stop_async(self, job: JobRef | str, *, reason: str = "stopped by Airflow") -> None:
        ref = self.ref(job)
        for transport in await asyncio.to_thread(self._candidates, ref):
            done = await transport.call_async(
                "stop",
                root=self.root_on(transport),
                job_id=ref.job_name,
                reason=reason,
                start_grace=RUNNER_START_GRACE_SECONDS,
            )
            if done["found"]:
                return

    @override
    def connection_ids(self) -> list[str]:
        """The on-prem connection and, with the SSH transport, each host's ``ssh`` connection."""
        return super().connection_ids() + [h.ssh_conn_id for h in self.settings.hosts]

    @override
    def is_transient(self, error: BaseException) -> bool:
        from airflow_trainkit.exceptions import TrainingJobUnreachable

        if isinstance(error, TrainingJobUnreachable):
            return error.transient
        return super().is_transient(error)

    @override
    def log_tail(self, job: JobRef | str, lines: int = 50) -> list[str]:
        ref = self.ref(job)
        candidates = self._candidates(ref)
        if len(candidates) > 1:  # no handle: the host is the one that has the job
            candidates = [self.transports[str(self.describe(ref).details["host"])]]
        path = f"{self.root_on(candidates[0])}/{ref.job_name}/output.log"
        return list(candidates[0].call("tail", path=path, lines=lines))

    @override
    def metrics(self, status: JobStatus) -> dict[str, Any] | None:
        """``metrics.json`` of the job's output; read on the GPU host when the output is a path there."""
        on_host = self._output_on_host(status)
        if on_host is None:
            return super().metrics(status)
        transport, folder = on_host
        text = transport.call("read", path=f"{folder}/metrics.json")
        try:
            data = json.loads(text) if text else None
        except ValueError:
            return None
        return data if isinstance(data, dict) else None

    @override
    def progress(self, status: JobStatus) -> dict[str, list[float]] | None:
        """``progress.json`` of the job's output; read on the GPU host when the output is a path there."""
        from airflow_trainkit.exceptions import TrainingJobUnreachable
        from airflow_trainkit.trainers.contract import PROGRESS_FILE, progress_history

        on_host = self._output_on_host(status)
        if on_host is None:
            return super().progress(status)
        transport, folder = on_host
        try:
            text = transport.call("read", path=f"{folder}/{PROGRESS_FILE}", limit=PROGRESS_READ_LIMIT)
        except TrainingJobUnreachable:  # the host does not answer now: no progress to read now
            return None
        return progress_history(text)

    @override
    async def progress_async(self, status: JobStatus) -> dict[str, list[float]] | None:
        """One remote command on the shared connection when the output is on an SSH host."""
        from airflow_trainkit.exceptions import TrainingJobUnreachable
        from airflow_trainkit.trainers.contract import PROGRESS_FILE, progress_history

        on_host = await asyncio.to_thread(self._output_on_host, status)  # reads the connection once
        if on_host is None:
            return await super().progress_async(status)
        transport, folder = on_host
        try:
            text = await transport.call_async(
                "read", path=f"{folder}/{PROGRESS_FILE}", limit=PROGRESS_READ_LIMIT
            )
        except TrainingJobUnreachable:
            return None
        return progress_history(text)

    def _output_on_host(self, status: JobStatus) -> tuple[Transport, str] | None:
        """The SSH host's transport and the output folder's path there, when the job's output is a
        path on the GPU host; ``None`` when this process reads it itself (local, or object storage)."""
        from airflow_trainkit import storage

        transport = self.transports.get(str(status.details.get("host")))
        if transport is None or not transport.ships_runner or not status.output_uri:
            return None
        if not storage.is_local(status.output_uri):
            return None
        return transport, str(storage.local_path(status.output_uri))


def inherited_env(environ: Mapping[str, str]) -> dict[str, str]:
    """The part of the worker's environment a job inherits: no Airflow secret, no credential."""
    return {
        k: v for k, v in environ.items() if not _SECRET_ENV.search(k) and not _URL_WITH_PASSWORD.search(v)
    }


def _utcnow() -> str:
    return datetime.now(UTC).isoformat(timespec="milliseconds")
