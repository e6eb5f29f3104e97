"""One wait policy for everything that polls a remote state: the training trigger, the non-deferrable
wait, the registry trigger and both sensors' poke mode.

The rules, in one place:

- a status call is made at most once per poll interval;
- a transient error (the caller's ``is_transient``: throttling, 5xx, timeouts, an unreachable
  transport) is retried with capped exponential backoff and jitter, never sooner than the interval,
  for as long as the deadline allows;
- ``max_errors`` non-transient errors in a row end the wait (the last one is raised);
- "not found" within ``not_found_grace`` seconds of the submit is transient (clouds answer not-found
  right after a create); later it ends the wait at once;
- the deadline is wall-clock time (epoch seconds), so it survives a triggerer restart; when it passes
  the wait raises :class:`WaitDeadlinePassed`.

The retry loop itself is tenacity's (``Retrying`` / ``AsyncRetrying``), configured here once.
Stdlib and tenacity only (tenacity comes with Airflow).
"""

from __future__ import annotations

import asyncio
import inspect
import logging
import random
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any, TypeVar

T = TypeVar("T")
log = logging.getLogger(__name__)

DEFAULT_MAX_ERRORS = 5
DEFAULT_MAX_BACKOFF = 300.0


class WaitDeadlinePassed(Exception):
    """The wait's deadline passed before the awaited state was reached."""

    def __init__(self, deadline: float, last: Any = None) -> None:
        super().__init__(f"deadline {deadline:.0f} passed")
        self.deadline = deadline
        self.last = last


class WaitInterrupted(Exception):
    """The caller asked the wait to stop (a kill flag), between two status calls."""


def default_is_transient(error: BaseException) -> bool:
    """Timeouts and connection failures; backends add their own (throttling, 5xx)."""
    return isinstance(error, (TimeoutError, ConnectionError))


@dataclass
class WaitPolicy:
    """How one waiter polls. One object per wait: it counts errors in a row.

    :param interval: seconds between status calls (also the shortest retry delay).
    :param is_transient: whether an error is worth retrying without counting toward ``max_errors``.
    :param deadline: wall-clock epoch seconds after which the wait ends; ``None`` for none.
    :param max_errors: non-transient errors in a row that end the wait.
    :param max_backoff: the longest delay after transient errors.
    :param submitted_at: epoch seconds of the submit; with ``not_found_grace`` makes an early
        not-found transient.
    :param not_found_grace: seconds after ``submitted_at`` during which not-found is transient;
        ``None`` for two poll intervals.
    :param before_call: a per-connection rate limiter: called (and awaited, if it returns an
        awaitable) before every status call.
    :param interrupted: polled between calls; when it returns true the wait raises
        :class:`WaitInterrupted` (the non-deferrable wait's kill flag).
    """

    interval: float
    is_transient: Callable[[BaseException], bool] = default_is_transient
    deadline: float | None = None
    max_errors: int = DEFAULT_MAX_ERRORS
    max_backoff: float = DEFAULT_MAX_BACKOFF
    submitted_at: float | None = None
    not_found_grace: float | None = None
    before_call: Callable[[], Any] | None = None
    interrupted: Callable[[], bool] | None = None
    transient_errors: int = field(default=0, init=False)
    persistent_errors: int = field(default=0, init=False)

    def __post_init__(self) -> None:
        if self.interval <= 0:
            raise ValueError(f"poll_interval must be positive, got {self.interval!r}")

    # -- the rules -----------------------------------------------------------------------------

    def keeps_waiting(self, error: BaseException) -> bool:
        """Count ``error`` and say whether the wait goes on after it."""
        from airflow_trainkit.exceptions import TrainingJobNotFound, TrainingJobUnreachable

        if isinstance(error, TrainingJobNotFound):
            grace = self.not_found_grace if self.not_found_grace is not None else 2 * self.interval
            transient = self.submitted_at is not None and time.time() < self.submitted_at + grace
        elif isinstance(error, TrainingJobUnreachable):
            transient = error.transient
        else:
            transient = self.is_transient(error)
        if transient:
            self.transient_errors += 1
            return True
        self.transient_errors = 0
        self.persistent_errors += 1
        if isinstance(error, (TrainingJobNotFound, TrainingJobUnreachable)):
            return False
        return self.persistent_errors < self.max_errors

    def succeeded(self) -> None:
        """A status call answered: the error counts start again."""
        self.transient_errors = self.persistent_errors = 0

    def delay(self) -> float:
        """Seconds until the next call: the interval, or a jittered backoff after transient errors,
        never past the deadline (so the deadline is checked on time)."""
        delay = self.interval
        if self.transient_errors:
            backoff = min(self.interval * 2 ** min(self.transient_errors, 16), self.max_backoff)
            delay = max(self.interval, random.uniform(backoff / 2, backoff))
        if self.deadline is not None:
            delay = min(delay, max(self.deadline - time.time(), 0.0))
        return delay

    def passed(self) -> bool:
        """Whether the deadline (if any) has passed by the wall clock."""
        return self.deadline is not None and time.time() >= self.deadline

    # -- the two drivers -----------------------------------------------------------------------

    def poll(
        self,
        call: Callable[[], T],
        done: Callable[[T], bool],
        *,
        sleep: Callable[[float], None] | None = None,
    ) -> T:
        """Call ``call`` until ``done(result)``; the worker-side (blocking) wait.

        :raises WaitDeadlinePassed: the deadline passed first.
        :raises WaitInterrupted: ``interrupted()`` became true.
        :raises Exception: the status call's own error, once the rules end the wait.
        """
        import tenacity

        retrying = tenacity.Retrying(sleep=sleep or self._sleep, **self._tenacity_rules(done))
        return self._unwrap(lambda: retrying(self._guarded(call)))

    async def apoll(self, call: Callable[[], Awaitable[T]], done: Callable[[T], bool]) -> T:
        """``poll`` for the triggerer: ``call`` is a coroutine function; sleeping never blocks the loop."""
        import tenacity

        retrying = tenacity.AsyncRetrying(sleep=asyncio.sleep, **self._tenacity_rules(done))

        async def guarded() -> T:
            self._check_before_call()
            if self.before_call is not None:
                waited = self.before_call()
                if inspect.isawaitable(waited):
                    await waited
            return await call()

        try:
            return await retrying(guarded)
        except tenacity.RetryError as err:
            raise self._deadline_error(err) from None

    def once(self, call: Callable[[], T]) -> T | None:
        """One status call under the rules, for a sensor's poke: ``None`` when the error is worth
        another poke, the error itself once the rules end the wait."""
        try:
            value = call()
        except Exception as err:
            if not self.keeps_waiting(err):
                raise
            log.warning("Status call failed (%s: %s); trying again at the next poke", type(err).__name__, err)
            return None
        self.succeeded()
        return value

    # -- tenacity plumbing ---------------------------------------------------------------------

    def _tenacity_rules(self, done: Callable[[Any], bool]) -> dict[str, Any]:
        def retry(state: Any) -> bool:  # a tenacity.RetryCallState
            outcome = state.outcome
            if outcome is None:
                return False
            if outcome.failed:
                error = outcome.exception()
                # tenacity catches BaseException: a cancelled trigger (CancelledError) or an
                # interrupted worker is not a failed status call, and ends the wait at once.
                if not isinstance(error, Exception) or isinstance(error, WaitInterrupted):
                    return False
                keep = self.keeps_waiting(error)
                if keep:
                    log.warning(
                        "Status call failed (%s: %s); %d transient, %d other error(s) in a row",
                        type(error).__name__,
                        error,
                        self.transient_errors,
                        self.persistent_errors,
                    )
                return keep
            self.succeeded()
            return not done(outcome.result())

        return {
            "retry": retry,
            "wait": lambda state: self.delay(),
            "stop": lambda state: self.passed(),
            "reraise": False,  # a passed deadline is RetryError, turned into WaitDeadlinePassed
        }

    def _check_before_call(self) -> None:
        if self.interrupted is not None and self.interrupted():
            raise WaitInterrupted("the wait was interrupted")

    def _guarded(self, call: Callable[[], T]) -> Callable[[], T]:
        def guarded() -> T:
            self._check_before_call()
            if self.before_call is not None:
                self.before_call()
            return call()

        return guarded

    def _sleep(self, seconds: float) -> None:
        """Sleep in slices of at most a second, so an interrupt is seen promptly."""
        end = time.monotonic() + seconds
        while True:
            self._check_before_call()
            left = end - time.monotonic()
            if left <= 0:
                return
            time.sleep(min(left, 1.0))

    def _unwrap(self, run: Callable[[], T]) -> T:
        import tenacity

        try:
            return run()
        except tenacity.RetryError as err:
            raise self._deadline_error(err) from None

    def _deadline_error(self, err: Any) -> WaitDeadlinePassed:
        last = err.last_attempt
        value = None if last.failed else last.result()
        return WaitDeadlinePassed(self.deadline or time.time(), value)
