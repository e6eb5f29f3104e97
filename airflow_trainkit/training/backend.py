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
import threading
from abc import ABC, abstractmethod
from dataclasses import asdict, dataclass, field, fields, replace
from enum import Enum, StrEnum
from typing import TYPE_CHECKING, Any, ClassVar

from airflow_trainkit.training.capabilities import Capabilities

if TYPE_CHECKING:
    from collections.abc import Mapping

    from airflow_trainkit.training.identity import JobIdentity
    from airflow_trainkit.training.pricing import BackendPricing
    from airflow_trainkit.training.spec import TrainingJobSpec

_REGISTRY: dict[str, type[TrainingBackend]] = {}
ENTRY_POINT_GROUP = "airflow_trainkit.backends"
# One backend object per (backend, connection) in a process: the triggerer's triggers share its
# clients and sessions instead of building a thousand of them.
_SHARED: dict[tuple[str, str | None], TrainingBackend] = {}
_SHARED_LOCK = threading.Lock()


class JobPhase(StrEnum):
    """The shared view of every backend's own states."""

    PENDING = "pending"
    RUNNING = "running"
    STOPPING = "stopping"
    SUCCEEDED = "succeeded"
    FAILED = "failed"
    STOPPED = "stopped"

    @property
    def terminal(self) -> bool:
        """The job has ended (succeeded, failed or stopped) and will not change again."""
        return self in (JobPhase.SUCCEEDED, JobPhase.FAILED, JobPhase.STOPPED)

    @property
    def active(self) -> bool:
        """The job may still run or change: a job a task re-attaches to, or must stop."""
        return not self.terminal


@dataclass
class JobRef:
    """Which job a task started, as recorded in the task state store: typed and JSON-serializable.

    Written before the submit call (so a crash right after it still leaves the name to look up) and
    once more after it, when the backend assigned its own ``handle``.

    :param backend: the backend's registered name.
    :param job_name: the deterministic name (or, for a sensor, the id the user gave).
    :param attempt: which attempt of this task instance the job is (1, 2, ...).
    :param deadline: wall-clock time (epoch seconds) after which the job is stopped.
    :param adopted: this try found the job running rather than starting it.
    :param handle: the backend's own id where it differs from the name (Vertex's resource name);
        ``None`` until the server assigned one, and then the name is looked up.
    :param submitted_at: epoch seconds of the submit call; clouds answer "not found" just after it.
    :param returned: the task has already returned this job's result.
    """

    backend: str
    job_name: str
    attempt: int = 1
    deadline: float | None = None
    adopted: bool = False
    handle: str | None = None
    submitted_at: float | None = None
    returned: bool = False

    def to_dict(self) -> dict[str, Any]:
        """The record as JSON, for the task state store, the trigger's kwargs and its events."""
        return asdict(self)

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> JobRef:
        """The record back from its dict; records of earlier releases (``job_id``) are read too."""
        values = dict(data)
        if "job_name" not in values and "job_id" in values:
            values["job_name"] = values.pop("job_id")
        known = {f.name for f in fields(cls)}
        return cls(**{k: v for k, v in values.items() if k in known})

    def with_(self, **changes: Any) -> JobRef:
        """A copy with ``changes`` (the record is saved again, never edited in place)."""
        return replace(self, **changes)


@dataclass
class JobStatus:
    """What a backend knows about one job at one moment; JSON-serializable.

    :param state: the backend's own state name (a member of its ``State`` enum).
    :param billable_seconds: seconds the provider bills per instance (SageMaker's
        ``BillableTimeInSeconds``; wall time of the running phase elsewhere).
    :param details: backend-specific JSON facts (exit code, training seconds, failure reason, ...).
    :param handle: the backend's own id of the job where it is not the name (see :class:`JobRef`).
    :param region: the region the job runs in, where the backend has regions (its actual cost is
        priced there); ``None`` otherwise.
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
    handle: str | None = None
    region: str | None = None

    def to_dict(self) -> dict[str, Any]:
        """The status as JSON (``phase`` as its string), as the trigger's ``done`` event carries it."""
        data = asdict(self)
        data["phase"] = self.phase.value
        return data

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> JobStatus:
        """The status back from its dict; keys another release added are left out."""
        known = {f.name for f in fields(cls)}
        values = {k: v for k, v in data.items() if k in known}
        values["phase"] = JobPhase(values["phase"])
        return cls(**values)


class TrainingBackend(ABC):
    """Submit, describe, stop and read one backend's training jobs. Never sleeps or polls.

    Subclasses set ``name``, ``State`` (their own state enum), ``PHASES`` (each state's shared
    phase) and ``capabilities`` (what they refuse or ignore of a spec). Every method that takes a
    job accepts a :class:`JobRef` or a job name. Waiting lives in :mod:`airflow_trainkit.training.waiting`;
    the submit-or-re-attach lifecycle in :mod:`airflow_trainkit.training.lifecycle`.
    """

    name: ClassVar[str]
    State: ClassVar[type[Enum]]
    PHASES: ClassVar[Mapping[Any, JobPhase]]
    capabilities: ClassVar[Capabilities] = Capabilities()
    # How a job on it is priced (training/pricing.py); None: never quoted, no actual cost.
    pricing: ClassVar[BackendPricing | None] = None
    max_job_name_length: ClassVar[int] = 63
    # Seconds between status calls in the trigger; backends with rate limits raise it.
    poll_interval: ClassVar[float] = 30.0
    # Whether the triggerer's triggers on one connection may share one object (and its clients).
    # Cloud backends say yes; one whose settings may change between jobs (on-prem) says no.
    shared_per_connection: ClassVar[bool] = False
    # The account's sustained status-call rate (calls per second) that every trigger on one
    # connection shares (training/ratelimit.py); None: no limit (your own hosts). A connection's
    # extra ``status_calls_per_second`` overrides it.
    status_calls_per_second: ClassVar[float | None] = None
    # Whether ``progress`` can read a job's per-round metrics while it runs (a tuner prunes only
    # where it can); a backend says yes once it has a test that reads them from a running job.
    reports_progress: ClassVar[bool] = False

    def __init__(self, conn_id: str | None = None) -> None:
        self.conn_id = conn_id

    def phase_of(self, state: Any) -> JobPhase:
        """The shared phase of one of this backend's states; unknown states are failures."""
        member = state if isinstance(state, self.State) else self.State(state)
        return self.PHASES.get(member, JobPhase.FAILED)

    def ref(self, job: JobRef | str) -> JobRef:
        """``job`` as a :class:`JobRef` of this backend (a bare name has no handle yet)."""
        return job if isinstance(job, JobRef) else JobRef(backend=self.name, job_name=str(job))

    def check(self, spec: TrainingJobSpec) -> list[str]:
        """Everything that refuses ``spec`` before a job starts: declared capabilities, then ``validate``.

        :return: notes on spec fields this backend ignores, to log once at submit.
        :raises ValueError: naming the field, the value and the backend.
        """
        notes = self.capabilities.check(spec, self.name)
        self.validate(spec)
        return notes

    def validate(self, spec: TrainingJobSpec) -> None:  # noqa: B027 - optional hook
        """Backend-specific checks beyond ``capabilities`` (options, roles, paths), as ``ValueError``."""

    @abstractmethod
    def submit(
        self, spec: TrainingJobSpec, job: JobRef | str, identity: JobIdentity | None = None
    ) -> JobStatus:
        """Start ``spec`` under the name ``job.job_name`` and return at once.

        :param identity: the task instance the job belongs to, for the job's tags or labels;
            ``None`` outside a task. Backends never read Airflow's context themselves.
        :return: the job's first status; ``status.handle`` carries an id the server assigned.
        """

    @abstractmethod
    def describe(self, job: JobRef | str) -> JobStatus:
        """The job's current status. :raises TrainingJobNotFound: no job has that name or handle."""

    @abstractmethod
    def stop(self, job: JobRef | str, *, reason: str = "stopped by Airflow") -> None:
        """Ask the job to stop. Stopping a stopped or finished job does nothing."""

    async def describe_async(self, job: JobRef | str) -> JobStatus:
        """``describe`` without blocking the triggerer's event loop."""
        return await asyncio.to_thread(self.describe, job)

    async def stop_async(self, job: JobRef | str, *, reason: str = "stopped by Airflow") -> None:
        """``stop`` without blocking the triggerer's event loop."""
        await asyncio.to_thread(self.stop, job, reason=reason)

    def find(self, job: JobRef | str) -> JobStatus | None:
        """``describe``, or ``None`` when there is no such job."""
        from airflow_trainkit.exceptions import TrainingJobNotFound

        try:
            return self.describe(job)
        except TrainingJobNotFound:
            return None

    def connection_ids(self) -> list[str]:
        """Every Airflow connection this backend reads for a job (the watchdog hands them on)."""
        return [self.conn_id] if self.conn_id else []

    def status_call_rate(self) -> float | None:
        """Status calls per second allowed on this backend's account: the connection's extra
        ``status_calls_per_second`` if set (a number, or ``"unlimited"``), else the class's declaration.

        Reads the connection (blocking): call it off the event loop.

        :raises ValueError: the extra is not a positive number or ``"unlimited"``.
        """
        from airflow_trainkit.training.ratelimit import RATE_EXTRA, parse_rate

        declared = type(self).status_calls_per_second
        if not self.conn_id:
            return declared
        from airflow_trainkit._compat import AirflowException, BaseHook

        try:
            extra = BaseHook.get_connection(self.conn_id).extra_dejson
        except AirflowException:  # no such connection: the backend says so itself when it runs
            return declared
        if RATE_EXTRA not in extra:
            return declared
        return parse_rate(extra[RATE_EXTRA], where=f"connection {self.conn_id!r}: extra {RATE_EXTRA}")

    def is_transient(self, error: BaseException) -> bool:
        """Whether a failed status call is worth retrying (throttling, 5xx, timeouts)."""
        return isinstance(error, (TimeoutError, ConnectionError))

    def log_tail(self, job: JobRef | str, lines: int = 50) -> list[str]:
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

    def progress(self, status: JobStatus) -> dict[str, list[float]] | None:
        """The per-round metrics the job has written so far (``progress.json`` in its output), or ``None``.

        :return: the file's ``history``: ``<data>-<metric>`` (``validation-auc``, ...) to one value per
            round, only the keys whose values are lists of numbers; ``None`` when the job has no
            output URI, the file is missing, partial or garbled, or cannot be read now. Never raises
            for what is (or is not) at the output.
        """
        from airflow_trainkit import storage
        from airflow_trainkit.trainers.contract import PROGRESS_FILE, progress_history

        if not status.output_uri:
            return None
        try:
            content = storage.read_bytes(storage.join_uri(status.output_uri, PROGRESS_FILE))
        except (OSError, ValueError):  # no progress.json yet (FileNotFoundError), or a store error
            return None
        return progress_history(content)

    async def progress_async(self, status: JobStatus) -> dict[str, list[float]] | None:
        """``progress`` without blocking the triggerer's event loop."""
        return await asyncio.to_thread(self.progress, status)

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
            "region": status.region,
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


def shared_backend(name: str, conn_id: str | None = None) -> TrainingBackend:
    """The process's one backend object for ``name`` on ``conn_id``, made on first use.

    Backend objects hold no per-job state, so every trigger of a triggerer on the same connection
    can use the same one (and its clients). Backends that do not declare
    ``shared_per_connection`` get a new object each time.
    """
    cls = get_backend(name)
    if not cls.shared_per_connection:
        return cls(conn_id)
    key = (name, conn_id)
    with _SHARED_LOCK:
        backend = _SHARED.get(key)
        if backend is None:
            backend = _SHARED[key] = cls(conn_id)
        return backend
