"""The on-prem GPU backend: jobs run on the worker's host, pinned to GPUs, supervised by a runner.

Each job has a directory ``<root>/<job id>/`` with ``job.json`` (what to run), ``state.json``
(written by the runner), ``stop.json`` (a stop request) and ``output.log``. Everything the
backend knows it reads from there, so a retry, a restarted worker or the triggerer finds a job
again by its name alone; the triggerer must therefore see the same root (same host or a shared
folder). The job directory is private (0700, its files 0600) and holds no environment: the job's
environment goes to the runner process directly when it is spawned.
"""

from __future__ import annotations

import json
import os
import re
import socket
import sys
from datetime import datetime, timezone
from enum import Enum
from functools import cached_property
from typing import TYPE_CHECKING, Any

from airflow_trainkit.training.backend import JobPhase, JobRef, JobStatus, TrainingBackend, register_backend
from airflow_trainkit.training.capabilities import Capabilities
from airflow_trainkit.training.pricing import BackendPricing

if TYPE_CHECKING:
    from collections.abc import Mapping
    from pathlib import Path

    from airflow_trainkit.backends.onprem.transport import Transport
    from airflow_trainkit.hooks.onprem import OnPremSettings
    from airflow_trainkit.training.identity import JobIdentity
    from airflow_trainkit.training.spec import TrainingJobSpec

ROOT_MARKER = ".trainkit-onprem-root"
# A runner that has not written its pid this long after submit is taken as lost.
RUNNER_START_GRACE_SECONDS = 60.0
# Worker environment the job must not inherit: Airflow's connections, variables and config, and
# whatever is named like a credential. A job that needs one gets it through spec.env.
_SECRET_ENV = re.compile(
    r"^(AIRFLOW_CONN_|AIRFLOW_VAR_|AIRFLOW__)|SECRET|PASSWORD|PASSWD|_PWD$|PASSPHRASE|TOKEN|CREDENTIAL"
    r"|API_?KEY|ACCESS_?KEY|PRIVATE_?KEY|_KEY$|CONNECTION_?STRING|COOKIE",
    re.IGNORECASE,
)
# ... and whatever holds a URL with a password in it (postgresql://user:pass@host/db).
_URL_WITH_PASSWORD = re.compile(r"[A-Za-z][A-Za-z0-9+.-]*://[^/@\s:]*:[^/@\s]*@")


class OnPremState(str, Enum):
    PENDING = "PENDING"
    RUNNING = "RUNNING"
    STOPPING = "STOPPING"
    SUCCEEDED = "SUCCEEDED"
    FAILED = "FAILED"
    STOPPED = "STOPPED"
    LOST = "LOST"  # the runner died without recording an outcome (host reboot, OOM kill)


@register_backend("onprem")
class OnPremBackend(TrainingBackend):
    """Run training commands on this host's GPUs (or CPU), detached from the Airflow task.

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
            "max_wait": "there is no spot capacity to wait for",
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
    poll_interval = 2.0  # reading a local file is cheap

    @cached_property
    def settings(self) -> OnPremSettings:
        from airflow_trainkit.hooks.onprem import OnPremGpuHook

        return OnPremGpuHook(self.conn_id).settings()

    @cached_property
    def transport(self) -> Transport:
        from airflow_trainkit.backends.onprem.transport import LocalTransport

        return LocalTransport()

    @property
    def root(self) -> Path:
        return self.settings.root

    def host_gpus(self) -> list[dict[str, str]]:
        from airflow_trainkit.backends.onprem.transport import parse_gpu_list

        if self.settings.gpus is not None:
            return parse_gpu_list(self.settings.gpus)
        return self.transport.gpus()

    def validate(self, spec: TrainingJobSpec) -> None:
        from airflow_trainkit import storage

        for channel, uri in spec.inputs.items():
            if storage.is_local(uri) and not storage.local_path(uri).exists():
                raise ValueError(f"spec.inputs[{channel!r}]: no such file or folder {uri!r}")
        self._gpu_plan(spec)

    def _gpu_plan(self, spec: TrainingJobSpec) -> int:
        """How many GPUs the job takes; refuses what this host cannot give."""
        accelerator = spec.parsed_accelerator
        if accelerator is None:
            return 0
        gpus = self.host_gpus()
        if not gpus:
            if spec.allow_cpu:
                return 0
            raise ValueError(
                f"spec.accelerator {spec.accelerator!r} asks for {accelerator.count} GPU(s) but host "
                f"{socket.gethostname()!r} has none; set allow_cpu=true to run on CPU instead"
            )
        if len(gpus) < accelerator.count:
            raise ValueError(
                f"spec.accelerator {spec.accelerator!r} asks for {accelerator.count} GPU(s) but host "
                f"{socket.gethostname()!r} has {len(gpus)}"
            )
        names = {g["name"] for g in gpus if g["name"]}
        if accelerator.model and names and not any(accelerator.model.upper() in n.upper() for n in names):
            raise ValueError(
                f"spec.accelerator {spec.accelerator!r}: host {socket.gethostname()!r} has {', '.join(sorted(names))}"
            )
        return accelerator.count

    def submit(
        self, spec: TrainingJobSpec, job: JobRef | str, identity: JobIdentity | None = None
    ) -> JobStatus:
        from airflow_trainkit import storage
        from airflow_trainkit.backends.onprem.runner import JOB_PYTHONPATH_VAR
        from airflow_trainkit.backends.onprem.transport import process_start_ticks
        from airflow_trainkit.home import artifacts_dir

        job_id = self.ref(job).job_name
        gpu_count = self._gpu_plan(spec)
        job_dir = self.root / job_id
        if self.transport.exists(job_dir / "job.json"):
            raise FileExistsError(f"on-prem job {job_id!r} exists already in {job_dir}")
        self.transport.make_private_dir(job_dir)
        self.transport.make_dirs(job_dir / "work")
        self.transport.write_text_atomic(self.root / ROOT_MARKER, "trainkit on-prem job root\n")
        output_uri = spec.output_uri or str(artifacts_dir() / job_id)
        if storage.is_local(output_uri):
            storage.local_path(output_uri).mkdir(parents=True, exist_ok=True)
        env = inherited_env(os.environ)
        env.update(spec.env)
        env.update(
            {
                "TRAINKIT_JOB_ID": job_id,
                "TRAINKIT_JOB_DIR": str(job_dir),
                "TRAINKIT_OUTPUT_URI": output_uri,
                "TRAINKIT_INPUTS": json.dumps(spec.inputs),
                "TRAINKIT_HYPERPARAMETERS": json.dumps(spec.hyperparameters),
                **{f"TRAINKIT_INPUT_{name.upper()}": uri for name, uri in spec.inputs.items()},
            }
        )
        if spec.checkpoint_uri:
            env["TRAINKIT_CHECKPOINT_URI"] = spec.checkpoint_uri
        command = list(spec.command)
        if command[0] in ("python", "python3"):
            command[0] = sys.executable  # the worker's own interpreter, with trainkit installed
        record = {
            "job_id": job_id,
            "root": str(self.root),
            "workdir": str(job_dir / "work"),
            "command": command,
            "gpu_count": gpu_count,
            "host_gpus": self.host_gpus() if gpu_count else [],
            "max_runtime": spec.max_runtime,
            "max_wait": spec.max_wait or spec.max_runtime,
            "grace_seconds": self.settings.grace_seconds,
            "output_uri": output_uri,
        }
        now = _utcnow()
        self.transport.write_text_atomic(job_dir / "job.json", json.dumps(record, indent=1))
        self.transport.write_text_atomic(
            job_dir / "state.json",
            json.dumps({"state": OnPremState.PENDING.value, "submitted_at": now, "message": "starting"}),
        )
        # The environment travels with the spawn only; the runner hands it to the command.
        pid = self.transport.spawn_detached(
            [sys.executable, "-m", "airflow_trainkit.backends.onprem.runner", str(job_dir)],
            cwd=job_dir,
            env={
                **env,
                "PYTHONPATH": os.pathsep.join(p for p in sys.path if p),
                JOB_PYTHONPATH_VAR: env.get("PYTHONPATH", ""),
            },
        )
        self.transport.write_text_atomic(
            job_dir / "runner.json", json.dumps({"pid": pid, "start_ticks": process_start_ticks(pid)})
        )
        return self.describe(job_id)

    def find(self, job: JobRef | str) -> JobStatus | None:
        # Called by the worker that is about to submit: a root that does not exist yet is new, not
        # invisible, so make it here and keep "unreachable" for readers such as the triggerer.
        if not self.transport.exists(self.root / ROOT_MARKER):
            self.transport.make_dirs(self.root)
            self.transport.write_text_atomic(self.root / ROOT_MARKER, "trainkit on-prem job root\n")
        return super().find(job)

    def describe(self, job: JobRef | str) -> JobStatus:
        from airflow_trainkit.exceptions import TrainingJobNotFound, TrainingJobUnreachable

        job_id = self.ref(job).job_name
        job_dir = self.root / job_id
        state_text = self.transport.read_text(job_dir / "state.json")
        if state_text is None:
            if not self.transport.exists(self.root / ROOT_MARKER):
                raise TrainingJobUnreachable(
                    f"on-prem job root {self.root} is not visible from host {socket.gethostname()!r}: the "
                    "triggerer and the workers must share it (same host, or a shared folder set as the "
                    "connection's 'root')",
                    where=str(self.root),
                )
            raise TrainingJobNotFound(self.name, job_id)
        state = json.loads(state_text)
        record = json.loads(self.transport.read_text(job_dir / "job.json") or "{}")
        name = state.get("state", "PENDING")
        message = state.get("message")
        if OnPremState(name) in (OnPremState.PENDING, OnPremState.RUNNING, OnPremState.STOPPING):
            if not self._runner_alive(job_dir, state):
                name, message = (
                    OnPremState.LOST.value,
                    "the job's runner process died without recording an outcome",
                )
        gpus = state.get("gpus") or []
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
                "host": socket.gethostname(),
                "gpus": [g["index"] for g in gpus],
                "exit_code": state.get("exit_code"),
                "job_dir": str(job_dir),
                "log": str(job_dir / "output.log"),
            },
        )

    def _runner_alive(self, job_dir: Path, state: dict[str, Any]) -> bool:
        runner = json.loads(self.transport.read_text(job_dir / "runner.json") or "{}")
        pid = state.get("runner_pid") or runner.get("pid")
        if pid is None:
            submitted = datetime.fromisoformat(state.get("submitted_at") or _utcnow())
            return (datetime.now(timezone.utc) - submitted).total_seconds() < RUNNER_START_GRACE_SECONDS
        ticks = state.get("runner_start_ticks") or runner.get("start_ticks")
        return self.transport.process_alive(int(pid), ticks)

    def stop(self, job: JobRef | str, *, reason: str = "stopped by Airflow") -> None:
        from airflow_trainkit.backends.onprem.transport import SIGKILL, SIGTERM

        job_id = self.ref(job).job_name
        job_dir = self.root / job_id
        state_text = self.transport.read_text(job_dir / "state.json")
        if state_text is None:
            return
        state = json.loads(state_text)
        if OnPremState(state["state"]) in (OnPremState.SUCCEEDED, OnPremState.FAILED, OnPremState.STOPPED):
            return
        if not self.transport.exists(job_dir / "stop.json"):
            self.transport.write_text_atomic(
                job_dir / "stop.json", json.dumps({"reason": reason, "requested_at": _utcnow()})
            )
        if self._runner_alive(job_dir, state):
            # A runner that has not yet recorded its pid reads stop.json before it starts the
            # command; one that has gets SIGTERM, forwards it to the job's group and escalates.
            if state.get("runner_pid"):
                self.transport.signal_group(int(state["runner_pid"]), SIGTERM)
        elif state.get("child_pgid"):
            # No runner left to escalate: the orphaned job gets no grace.
            self.transport.signal_group(int(state["child_pgid"]), SIGKILL)

    def log_tail(self, job: JobRef | str, lines: int = 50) -> list[str]:
        text = self.transport.read_text(self.root / self.ref(job).job_name / "output.log") or ""
        return text.splitlines()[-lines:]


def inherited_env(environ: Mapping[str, str]) -> dict[str, str]:
    """The part of the worker's environment a job inherits: no Airflow secret, no credential."""
    return {
        k: v for k, v in environ.items() if not _SECRET_ENV.search(k) and not _URL_WITH_PASSWORD.search(v)
    }


def _utcnow() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="milliseconds")
