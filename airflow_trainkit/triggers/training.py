"""One trigger for every backend: waits for a training job to end, by the clock, in the triggerer."""

from __future__ import annotations

import asyncio
import logging
import os
import time
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any, Literal

from pydantic import BaseModel, ConfigDict
from typing_extensions import override

from airflow_trainkit._compat import BaseTrigger, TriggerEvent
from airflow_trainkit.config_model import build
from airflow_trainkit.durations import parse_duration
from airflow_trainkit.training.backend import JobPhase

if TYPE_CHECKING:
    from collections.abc import AsyncIterator

log = logging.getLogger(__name__)

# How long the kill decision keeps asking for the task's state, and the limit of each question.
TASK_STATE_WINDOW_SECONDS = 120.0
TASK_STATE_TIMEOUT_SECONDS = 15.0
_DECISIONS: set[asyncio.Task[None]] = set()
# Task states after which the task runs again: a kill that leads there must not stop the job,
# because the next try re-attaches to it (a clear of a deferred task calls on_kill too).
# None is a cleared task that is not scheduled yet.
WILL_RUN_AGAIN = {
    None,
    "scheduled",
    "queued",
    "running",
    "restarting",
    "up_for_retry",
    "up_for_reschedule",
    "deferred",
}


class _Event(BaseModel):
    """What every event of the trigger carries. Keys a later release adds are let through."""

    model_config = ConfigDict(extra="ignore", frozen=True)

    job_id: str | None = None
    ref: dict[str, Any] | None = None


class _JobStatusShape(BaseModel):
    """The keys :meth:`JobStatus.from_dict` needs; the others are kept as they are."""

    model_config = ConfigDict(extra="allow", frozen=True)

    job_id: str
    state: str
    phase: JobPhase


class JobDone(_Event):
    """The job reached a terminal state (succeeded, failed or stopped): ``job`` is its status."""

    status: Literal["done"]
    job: _JobStatusShape

    def job_status(self) -> dict[str, Any]:
        """``job`` as the dict :meth:`JobStatus.from_dict` reads."""
        return self.job.model_dump(mode="json")


class JobTimedOut(_Event):
    """The deadline passed (``reason``: ``"deadline"``, ``"timeout"`` or ``"execution_timeout"``)."""

    status: Literal["timeout"]
    message: str
    reason: str = "deadline"


class JobStatusFailed(_Event):
    """Asking for the job's status failed in a way the wait policy gave up on."""

    status: Literal["error"]
    message: str


TrainingJobEvent = JobDone | JobTimedOut | JobStatusFailed
_EVENTS: dict[str, type[TrainingJobEvent]] = {
    "done": JobDone,
    "timeout": JobTimedOut,
    "error": JobStatusFailed,
}


def read_event(event: Any) -> TrainingJobEvent:
    """The event a resumed task got from :class:`TrainingJobTrigger`, checked in shape.

    :raises ValueError: naming what is missing or wrong (``event.status``, ``event.job.phase``, ...).
    """
    status = event.get("status") if isinstance(event, Mapping) else None
    model = _EVENTS.get(status) if isinstance(status, str) else None
    if model is None:
        shown = status if isinstance(event, Mapping) else event
        raise ValueError(
            f"trigger event: event.status must be one of {', '.join(map(repr, _EVENTS))}, got {shown!r}"
        )
    try:
        return build(model, event, prefix="event")
    except ValueError as problem:
        raise ValueError(f"trigger event: {problem}") from None


class TrainingJobTrigger(BaseTrigger):
    """Poll a training job until it reaches a terminal state or its deadline passes.

    Yields exactly one event: ``{"status": "done", "job": <JobStatus dict>, "ref": <JobRef dict>}``,
    ``{"status": "timeout", ...}`` (the job was asked to stop) or ``{"status": "error", ...}``.
    Polling follows :class:`~airflow_trainkit.training.waiting.WaitPolicy`; every status call
    first waits for the account's rate limit (:mod:`~airflow_trainkit.training.ratelimit`).

    :param backend: backend name, e.g. ``"onprem"``.
    :param job: the job's :class:`~airflow_trainkit.training.backend.JobRef` as a dict (with the
        backend's handle, so a restarted triggerer describes the job directly), or a job name.
    :param conn_id: the backend's connection id.
    :param deadline: wall-clock time (epoch seconds) after which the job is stopped. Absolute,
        so a restarted triggerer keeps the same deadline.
    :param poll_interval: seconds between status calls; ``None`` for the backend's default.
    :param stop_on_kill: the waiting task owns the job: stop it when the deferred task is marked
        failed or success, and when the deadline passes. Sensors watching a job started elsewhere
        set it to ``False``.
    :param identity: dag_id, run_id, task_id and map_index of the waiting task.
    :param job_id: a trigger serialized by an earlier release names its job this way.
    :param deadline_reason: what the deadline is, for the stop reason and the event:
        ``"deadline"`` (the job's own limit) or ``"execution_timeout"`` (the task's, while deferred).
    """

    def __init__(
        self,
        backend: str,
        job: dict[str, Any] | str | None = None,
        conn_id: str | None = None,
        deadline: float | None = None,
        poll_interval: float | None = None,
        stop_on_kill: bool = True,
        identity: dict[str, Any] | None = None,
        job_id: str | None = None,
        deadline_reason: str = "deadline",
    ) -> None:
        super().__init__()
        from airflow_trainkit.training.backend import JobRef

        self.backend_name = backend
        if isinstance(job, dict):
            self.ref = JobRef.from_dict(job)
        else:  # a bare job name (or job_id from a trigger an earlier release serialized)
            self.ref = JobRef(backend=backend, job_name=str(job or job_id))
        self.conn_id = conn_id
        self.deadline = deadline
        self.poll_interval = poll_interval
        self.stop_on_kill = stop_on_kill
        self.identity = identity or {}
        self.deadline_reason = deadline_reason
        self.decision: asyncio.Task[None] | None = None

    @property
    def job_id(self) -> str:
        """The name of the job this trigger waits for."""
        return self.ref.job_name

    @override
    def serialize(self) -> tuple[str, dict[str, Any]]:
        return (
            f"{type(self).__module__}.{type(self).__qualname__}",
            {
                "backend": self.backend_name,
                "job": self.ref.to_dict(),
                "conn_id": self.conn_id,
                "deadline": self.deadline,
                "poll_interval": self.poll_interval,
                "stop_on_kill": self.stop_on_kill,
                "identity": self.identity,
                "deadline_reason": self.deadline_reason,
            },
        )

    def _backend(self) -> Any:
        from airflow_trainkit.training.backend import shared_backend

        return shared_backend(self.backend_name, self.conn_id)

    def _backend_and_limiter(self) -> tuple[Any, Any]:
        """The shared backend and its account's status-call limiter (``None``: no limit); blocking."""
        from airflow_trainkit.training.ratelimit import status_call_limiter

        backend = self._backend()
        return backend, status_call_limiter(backend)

    @override
    async def run(self) -> AsyncIterator[TriggerEvent]:
        from airflow_trainkit.training.waiting import WaitDeadlinePassed, WaitPolicy

        started = time.monotonic()
        ref = self.ref
        try:
            backend, limiter = await asyncio.to_thread(self._backend_and_limiter)
        except ValueError as problem:  # a connection setting the task cannot wait with, named
            yield TriggerEvent(
                {"status": "error", "job_id": self.job_id, "ref": ref.to_dict(), "message": str(problem)}
            )
            return
        last_state: list[str | None] = [None]

        async def describe() -> Any:
            status = await backend.describe_async(ref)
            if status.state != last_state[0]:
                log.info(
                    "%s job %s is %s%s",
                    self.backend_name,
                    self.job_id,
                    status.state,
                    f": {status.message}" if status.message else "",
                )
                last_state[0] = status.state
            return status

        policy = WaitPolicy(
            interval=float(self.poll_interval or backend.poll_interval),
            is_transient=backend.is_transient,
            deadline=self.deadline,
            submitted_at=ref.submitted_at,
            # One bucket per account: many jobs spread their calls instead of tripping throttling.
            before_call=limiter.acquire if limiter is not None else None,
        )
        base = {"job_id": self.job_id, "ref": ref.to_dict()}
        try:
            status = await policy.apoll(describe, lambda status: status.phase.terminal)
        except WaitDeadlinePassed as passed:
            reason = f"{self.deadline_reason} passed"
            message = (
                f"{self.backend_name} job {self.job_id} passed its deadline"
                if self.deadline_reason == "deadline"
                else f"{self.backend_name} job {self.job_id}: the task's {reason}"
            )
            last = passed.last
            if last is not None and getattr(last, "state", None):
                # What the backend last said (a job still PENDING says why), for the task's error.
                message += f" while {last.state}" + (f" ({last.message})" if last.message else "")
            if self.stop_on_kill:  # a sensor never stops the job it watches
                message += "; asked it to stop"
                try:
                    await backend.stop_async(ref, reason=reason)
                except Exception as err:
                    message += f" (stop failed: {err!r})"
            self.log.warning("%s", message)
            await _settle(started)
            yield TriggerEvent(
                {"status": "timeout", **base, "reason": self.deadline_reason, "message": message}
            )
            return
        except Exception as err:
            await _settle(started)
            yield TriggerEvent(
                {
                    "status": "error",
                    **base,
                    "message": f"status of {self.backend_name} job {self.job_id} failed: {type(err).__name__}: {err}",
                }
            )
            return
        await _settle(started)
        yield TriggerEvent({"status": "done", **base, "job": status.to_dict()})

    async def on_kill(self) -> None:
        """Stop the job unless the task will run again (cleared, rather than marked failed or success).

        Airflow calls this for a clear and for a mark alike; only the task's new state tells them
        apart. The triggerer answers that query only some seconds after the cancel (seen live on
        3.3.2: 10-25 s) while on_kill has 30 s in all, so the decision runs in a task of its own.
        """
        if not self.stop_on_kill:
            return
        self.decision = asyncio.get_running_loop().create_task(self._stop_unless_task_runs_again())
        _DECISIONS.add(self.decision)  # the loop keeps only weak references to tasks
        self.decision.add_done_callback(_DECISIONS.discard)

    async def _stop_unless_task_runs_again(self) -> None:
        state = await self._task_state()
        if state in WILL_RUN_AGAIN:
            self.log.info(
                "Task is %s and will run again: leaving %s job %s for it to re-attach to",
                state or "cleared",
                self.backend_name,
                self.job_id,
            )
            return
        self.log.info("Task is %s: stopping %s job %s", state, self.backend_name, self.job_id)
        try:
            backend = await asyncio.to_thread(self._backend)
            await backend.stop_async(self.ref, reason=f"Airflow task was set to {state} while deferred")
        except Exception:
            log.exception("Could not stop %s job %s", self.backend_name, self.job_id)

    async def _task_state(self) -> str | None:
        return await task_state_of(self.identity)


async def task_state_of(identity: Mapping[str, Any]) -> str | None:
    """The state of the task ``identity`` names, as the scheduler sees it now; ``"unknown"`` if it
    cannot be read (every trigger that owns jobs asks this before stopping them on a kill)."""
    from airflow_trainkit._compat import atask_state_now

    if not identity.get("dag_id"):
        return "unknown"
    end = time.monotonic() + TASK_STATE_WINDOW_SECONDS
    while True:
        try:
            return await asyncio.wait_for(
                atask_state_now(
                    identity["dag_id"],
                    identity["run_id"],
                    identity["task_id"],
                    int(identity.get("map_index", -1)),
                ),
                timeout=TASK_STATE_TIMEOUT_SECONDS,
            )
        except LookupError as err:  # not inside a triggerer: nobody to ask
            log.warning("Cannot read the task's state (%s); stopping the job to be safe", err)
            return "unknown"
        except Exception as err:
            if time.monotonic() >= end:
                log.warning("Cannot read the task's state (%r); stopping the job to be safe", err)
                return "unknown"
            await asyncio.sleep(2)


# Airflow 3.3.2's scheduler fails a resumed task when the worker's "success" for its deferral is
# processed after the trigger already put the task back in the queue (apache/airflow#67287; the fix,
# #68741, came after 3.3.2). A job that ends within seconds of the deferral hits it, so the event is
# held until this many seconds after the trigger started: the scheduler has drained that stale
# success by then. Training jobs run minutes or hours; the hold costs a quick one a few seconds.
SETTLE_ENV = "TRAINKIT_TRIGGER_SETTLE_SECONDS"
DEFAULT_SETTLE_SECONDS = 10.0


async def _settle(started: float) -> None:
    """Wait until the trigger has run for the settle time (``$TRAINKIT_TRIGGER_SETTLE_SECONDS``, any duration)."""
    try:
        settle = parse_duration(
            os.environ.get(SETTLE_ENV, DEFAULT_SETTLE_SECONDS), field=SETTLE_ENV, allow_zero=True
        )
    except ValueError as problem:
        logging.getLogger(__name__).warning("%s; holding the event %s s", problem, DEFAULT_SETTLE_SECONDS)
        settle = DEFAULT_SETTLE_SECONDS
    await asyncio.sleep(max(0.0, started + settle - time.monotonic()))
