"""One trigger for a search's trials in flight: fires when the search has something to decide."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any, Literal

from pydantic import BaseModel, ConfigDict
from typing_extensions import override

from airflow_trainkit._compat import BaseTrigger, TriggerEvent
from airflow_trainkit.config_model import build
from airflow_trainkit.triggers.training import WILL_RUN_AGAIN, _settle, task_state_of

if TYPE_CHECKING:
    from collections.abc import AsyncIterator

log = logging.getLogger(__name__)

# Non-transient status errors in a row, on one trial, that end the wait.
MAX_ERRORS = 5
_DECISIONS: set[asyncio.Task[None]] = set()


class TuningEvent(BaseModel):
    """What the trigger fired for.

    ``trial_ended``: a trial's job reached a terminal state; ``trial_deadline``: a trial passed its
    deadline and was asked to stop; ``progress``: a trial wrote new per-round metrics worth a pruning
    decision; ``timeout``: the search's own time limit passed and every trial was asked to stop;
    ``error``: status calls failed in a way the trigger gave up on.
    """

    model_config = ConfigDict(extra="ignore", frozen=True)

    status: Literal["trial_ended", "trial_deadline", "progress", "timeout", "error"]
    job_id: str | None = None
    reason: str | None = None
    message: str = ""


def read_tuning_event(event: Any) -> TuningEvent:
    """The event a resumed tuning task got, checked in shape.

    :raises ValueError: naming what is wrong (``event.status``, ...).
    """
    if not isinstance(event, Mapping):
        raise ValueError(f"tuning trigger event: expected a mapping, got {event!r}")
    try:
        return build(TuningEvent, event, prefix="event")
    except ValueError as problem:
        raise ValueError(f"tuning trigger event: {problem}") from None


class TuningTrigger(BaseTrigger):
    """Watch every trial in flight of one search; yield one event at the earliest thing to decide.

    Polls each trial's job once per interval (through the account's rate limit), and fires at the
    first of: a trial ending, a trial's deadline (it is asked to stop first), the search's deadline
    (every trial is asked to stop), or, from ``progress_after`` on, a trial's per-round metrics
    growing past what the task has seen (one pruning decision costs one resume).

    :param trials: ``{"job": <JobRef dict>, "conn_id": <id or None>, "rounds_seen": <int>}`` per trial.
    :param deadline: epoch seconds of the search's own limit (this try's ``execution_timeout``), or ``None``.
    :param deadline_reason: what that deadline is, for the event (``"execution_timeout"``).
    :param poll_interval: seconds between rounds of status calls.
    :param progress_after: epoch seconds from which progress is worth a resume; ``None``: never.
    :param progress_metric: the history key the pruning reads; other keys do not count.
    :param identity: dag_id, run_id, task_id and map_index of the waiting task.
    """

    def __init__(
        self,
        trials: list[dict[str, Any]],
        deadline: float | None = None,
        deadline_reason: str = "execution_timeout",
        poll_interval: float = 30.0,
        progress_after: float | None = None,
        progress_metric: str | None = None,
        identity: dict[str, Any] | None = None,
    ) -> None:
        super().__init__()
        self.trials = trials
        self.deadline = deadline
        self.deadline_reason = deadline_reason
        self.poll_interval = poll_interval
        self.progress_after = progress_after
        self.progress_metric = progress_metric
        self.identity = identity or {}
        self.decision: asyncio.Task[None] | None = None

    @override
    def serialize(self) -> tuple[str, dict[str, Any]]:
        return (
            f"{type(self).__module__}.{type(self).__qualname__}",
            {
                "trials": self.trials,
                "deadline": self.deadline,
                "deadline_reason": self.deadline_reason,
                "poll_interval": self.poll_interval,
                "progress_after": self.progress_after,
                "progress_metric": self.progress_metric,
                "identity": self.identity,
            },
        )

    def _watched(self) -> list[tuple[Any, Any, Any]]:
        """(ref, backend, limiter) per trial; blocking (connections are read): call it in a thread."""
        from airflow_trainkit.training.backend import JobRef, shared_backend
        from airflow_trainkit.training.ratelimit import status_call_limiter

        out = []
        for trial in self.trials:
            ref = JobRef.from_dict(trial["job"])
            backend = shared_backend(ref.backend, trial.get("conn_id"))
            out.append((ref, backend, status_call_limiter(backend)))
        return out

    @override
    async def run(self) -> AsyncIterator[TriggerEvent]:
        started = time.monotonic()
        try:
            watched = await asyncio.to_thread(self._watched)
        except ValueError as problem:
            yield TriggerEvent({"status": "error", "message": str(problem)})
            return
        errors: dict[str, int] = {}
        while True:
            event = await self._look(watched, errors)
            if event is not None:
                await _settle(started)
                yield TriggerEvent(event)
                return
            await asyncio.sleep(self.poll_interval)

    async def _look(
        self, watched: list[tuple[Any, Any, Any]], errors: dict[str, int]
    ) -> dict[str, Any] | None:
        """One round of status calls; the event to fire, or ``None`` to wait another interval."""
        now = time.time()
        if self.deadline is not None and now >= self.deadline:
            for ref, backend, _ in watched:
                await self._stop(backend, ref, f"{self.deadline_reason} passed")
            return {
                "status": "timeout",
                "reason": self.deadline_reason,
                "message": f"the search's {self.deadline_reason} passed; {len(watched)} trial(s) asked to stop",
            }
        for (ref, backend, limiter), trial in zip(watched, self.trials, strict=True):
            if ref.deadline and now >= ref.deadline:
                await self._stop(backend, ref, "the trial passed its deadline")
                return {"status": "trial_deadline", "job_id": ref.job_name, "message": "passed its deadline"}
            if limiter is not None:
                await limiter.acquire()
            try:
                status = await backend.describe_async(ref)
            except Exception as err:
                if not self._count_error(backend, ref, err, errors):
                    continue
                return {
                    "status": "error",
                    "job_id": ref.job_name,
                    "message": f"status of {ref.backend} job {ref.job_name} failed: {type(err).__name__}: {err}",
                }
            errors.pop(ref.job_name, None)
            if status.phase.terminal:
                return {"status": "trial_ended", "job_id": ref.job_name, "message": status.state}
            if await self._has_new_rounds(backend, status, int(trial.get("rounds_seen") or 0), now):
                return {"status": "progress", "job_id": ref.job_name}
        return None

    def _count_error(self, backend: Any, ref: Any, err: Exception, errors: dict[str, int]) -> bool:
        """Count a failed status call; ``True`` when it is the one that ends the wait."""
        from airflow_trainkit.exceptions import TrainingJobNotFound

        fresh = ref.submitted_at is not None and time.time() - ref.submitted_at < 2 * self.poll_interval + 60
        if backend.is_transient(err) or (isinstance(err, TrainingJobNotFound) and fresh):
            log.warning("Status of %s job %s failed, trying again: %r", ref.backend, ref.job_name, err)
            return False
        errors[ref.job_name] = errors.get(ref.job_name, 0) + 1
        log.warning(
            "Status of %s job %s failed (%d in a row): %r",
            ref.backend,
            ref.job_name,
            errors[ref.job_name],
            err,
        )
        return errors[ref.job_name] >= MAX_ERRORS

    async def _has_new_rounds(self, backend: Any, status: Any, seen: int, now: float) -> bool:
        if self.progress_after is None or now < self.progress_after or not backend.reports_progress:
            return False
        try:
            history = await backend.progress_async(status) or {}
        except Exception as err:
            log.warning("Progress of job %s could not be read: %r", status.job_id, err)
            return False
        values = history.get(self.progress_metric) if self.progress_metric else None
        return isinstance(values, list) and len(values) > seen

    async def _stop(self, backend: Any, ref: Any, reason: str) -> None:
        try:
            await backend.stop_async(ref, reason=reason)
            log.info("Asked %s job %s to stop: %s", ref.backend, ref.job_name, reason)
        except Exception:
            log.exception("Could not stop %s job %s", ref.backend, ref.job_name)

    async def on_kill(self) -> None:
        """Stop every trial unless the task will run again (cleared, rather than marked failed or success).

        As :meth:`TrainingJobTrigger.on_kill`: the decision runs in a task of its own, because the
        triggerer answers the task-state query only seconds after the cancel.
        """
        self.decision = asyncio.get_running_loop().create_task(self._stop_unless_task_runs_again())
        _DECISIONS.add(self.decision)
        self.decision.add_done_callback(_DECISIONS.discard)

    async def _stop_unless_task_runs_again(self) -> None:
        state = await task_state_of(self.identity)
        if state in WILL_RUN_AGAIN:
            log.info(
                "Task is %s and will run again: leaving %d trial(s) for it",
                state or "cleared",
                len(self.trials),
            )
            return
        log.info("Task is %s: stopping %d trial(s)", state, len(self.trials))
        try:
            watched = await asyncio.to_thread(self._watched)
        except Exception:
            log.exception("Could not reach the trials' backends to stop them")
            return
        for ref, backend, _ in watched:
            await self._stop(backend, ref, f"Airflow task was set to {state} while deferred")
