"""The one interface every compute backend implements, and the registry that finds them by name.

A backend is one module, ``airflow_trainkit/backends/<name>.py`` (or a package of that name),
whose class is decorated with ``@register_backend("<name>")``. The registry imports that module on
first use, so a DAG that names ``backend="sagemaker"`` does not import boto3 until the task runs.
Third-party backends register through the ``airflow_trainkit.backends`` entry point group (name -> "module:Class").
"""

from __future__ import annotations

import asyncio
import importlib
import json
import pkgutil
from abc import ABC, abstractmethod
from dataclasses import asdict, dataclass, field
from enum import Enum
from typing import TYPE_CHECKING, Any, ClassVar

if TYPE_CHECKING:
    from collections.abc import Mapping

    from airflow_trainkit.training.spec import TrainingJobSpec

_REGISTRY: dict[str, type[TrainingBackend]] = {}
ENTRY_POINT_GROUP = "airflow_trainkit.backends"


class JobPhase(str, Enum):
    """The shared view of every backend's own states."""

    PENDING = "pending"
    RUNNING = "running"
    STOPPING = "stopping"
    SUCCEEDED = "succeeded"
    FAILED = "failed"
    STOPPED = "stopped"

    @property
    def terminal(self) -> bool:
        return self in (JobPhase.SUCCEEDED, JobPhase.FAILED, JobPhase.STOPPED)

    @property
    def active(self) -> bool:
        return not self.terminal


@dataclass
class JobStatus:
    """What a backend knows about one job at one moment; JSON-serializable.

    :param state: the backend's own state name (a member of its ``State`` enum).
    :param billable_seconds: seconds the provider bills per instance (SageMaker's
        ``BillableTimeInSeconds``; wall time of the running phase elsewhere).
    :param details: backend-specific JSON facts (exit code, training seconds, failure reason, ...).
    """

    job_id: str
    state: str
    phase: JobPhase
    message: str | None = None
    started_at: str | None = None
    ended_at: str | None = None
    billable_seconds: float | None = None
    instance_type: str | None = None
    instance_count: int = 1
    output_uri: str | None = None
    console_url: str | None = None
    details: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["phase"] = self.phase.value
        return data

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> JobStatus:
        values = dict(data)
        values["phase"] = JobPhase(values["phase"])
        return cls(**values)


class TrainingBackend(ABC):
    """Submit, describe, stop and read one backend's training jobs. Never sleeps or polls.

    Subclasses set ``name``, ``State`` (their own state enum) and ``PHASES`` (each state's
    shared phase). Waiting lives in :class:`~airflow_trainkit.triggers.training.TrainingJobTrigger`.
    """

    name: ClassVar[str]
    State: ClassVar[type[Enum]]
    PHASES: ClassVar[Mapping[Any, JobPhase]]
    max_job_name_length: ClassVar[int] = 63
    # Seconds between status calls in the trigger; backends with rate limits raise it.
    poll_interval: ClassVar[float] = 30.0

    def __init__(self, conn_id: str | None = None) -> None:
        self.conn_id = conn_id

    def phase_of(self, state: Any) -> JobPhase:
        """The shared phase of one of this backend's states; unknown states are failures."""
        member = state if isinstance(state, self.State) else self.State(state)
        return self.PHASES.get(member, JobPhase.FAILED)

    def validate(self, spec: TrainingJobSpec) -> None:  # noqa: B027 - optional hook
        """Refuse a spec this backend cannot run, with a ``ValueError`` naming the field."""

    @abstractmethod
    def submit(self, spec: TrainingJobSpec, job_id: str) -> JobStatus:
        """Start ``spec`` under the name ``job_id`` and return at once."""

    @abstractmethod
    def describe(self, job_id: str) -> JobStatus:
        """The job's current status. :raises TrainingJobNotFound: no job has that id."""

    @abstractmethod
    def stop(self, job_id: str, *, reason: str = "stopped by Airflow") -> None:
        """Ask the job to stop. Stopping a stopped or finished job does nothing."""

    async def describe_async(self, job_id: str) -> JobStatus:
        """``describe`` without blocking the triggerer's event loop."""
        return await asyncio.to_thread(self.describe, job_id)

    async def stop_async(self, job_id: str, *, reason: str = "stopped by Airflow") -> None:
        await asyncio.to_thread(self.stop, job_id, reason=reason)

    def find(self, job_id: str) -> JobStatus | None:
        """``describe``, or ``None`` when there is no such job."""
        from airflow_trainkit.exceptions import TrainingJobNotFound

        try:
            return self.describe(job_id)
        except TrainingJobNotFound:
            return None

    def is_transient(self, error: BaseException) -> bool:
        """Whether a failed status call is worth retrying (throttling, 5xx, timeouts)."""
        return isinstance(error, (TimeoutError, ConnectionError))

    def log_tail(self, job_id: str, lines: int = 50) -> list[str]:
        """The last lines of the job's log; empty when the backend keeps none."""
        return []

    def metrics(self, status: JobStatus) -> dict[str, Any] | None:
        """The ``metrics.json`` the job wrote to its output URI, if it wrote one."""
        from airflow_trainkit import storage

        if not status.output_uri:
            return None
        uri = storage.join_uri(status.output_uri, "metrics.json")
        try:
            data = json.loads(storage.read_bytes(uri))
        except (OSError, ValueError):  # no metrics.json (FileNotFoundError), or not JSON
            return None
        return data if isinstance(data, dict) else None

    def result(
        self, status: JobStatus, spec: TrainingJobSpec | None = None, attempt: int = 1
    ) -> dict[str, Any]:
        """The small JSON result a training task returns."""
        return {
            "backend": self.name,
            "job_id": status.job_id,
            "attempt": attempt,
            "state": status.state,
            "phase": status.phase.value,
            "started_at": status.started_at,
            "ended_at": status.ended_at,
            "billable_seconds": status.billable_seconds,
            "instance_type": status.instance_type,
            "instance_count": status.instance_count,
            "spot": bool(spec.spot) if spec else None,
            "accelerator": spec.accelerator if spec else None,
            "output_uri": status.output_uri,
            "metrics": self.metrics(status),
            "console_url": status.console_url,
            "details": status.details,
        }


def register_backend(name: str) -> Any:
    """Class decorator: make a backend available to ``get_backend(name)``."""

    def decorate(cls: type[TrainingBackend]) -> type[TrainingBackend]:
        cls.name = name
        _REGISTRY[name] = cls
        return cls

    return decorate


def available_backends() -> list[str]:
    """Names of the built-in backends and of those registered by entry points."""
    from importlib.metadata import entry_points

    import airflow_trainkit.backends as package

    names = {m.name for m in pkgutil.iter_modules(package.__path__) if not m.name.startswith("_")}
    names |= {ep.name for ep in entry_points(group=ENTRY_POINT_GROUP)}
    return sorted(names | set(_REGISTRY))


def get_backend(name: str) -> type[TrainingBackend]:
    """The backend class registered as ``name``, importing its module now.

    :raises ValueError: no backend has that name.
    """
    if not isinstance(name, str) or not name:
        raise ValueError(f"backend must be a backend name, got {name!r}")
    if name in _REGISTRY:
        return _REGISTRY[name]
    known = available_backends()
    if name not in known:
        raise ValueError(f"backend {name!r} is not known; known backends: {', '.join(known)}")
    from importlib.metadata import entry_points

    plugins = {ep.name: ep for ep in entry_points(group=ENTRY_POINT_GROUP)}
    if name in plugins:
        cls = plugins[name].load()
        _REGISTRY.setdefault(name, cls)
    else:
        importlib.import_module(f"airflow_trainkit.backends.{name}")
    if name not in _REGISTRY:
        raise ValueError(f"backend module for {name!r} did not register a backend class")
    return _REGISTRY[name]
