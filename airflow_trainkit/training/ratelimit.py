"""One status-call rate limit per account: a token bucket per (backend, connection) in the process.

A triggerer watching a thousand jobs on one cloud account would otherwise send every status call the
poll intervals ask for, and a cloud throttles an account, not a trigger. Each backend class declares
its account's sustained rate (``TrainingBackend.status_calls_per_second``, from the provider's
published limits; ``None`` for backends on your own hosts); a connection overrides it with the
extra ``status_calls_per_second`` (a positive number, or ``"unlimited"``).

How it meets the poll interval: the limiter is awaited before every status call
(:class:`~airflow_trainkit.training.waiting.WaitPolicy`'s ``before_call``), and the policy waits a
whole interval after each call returns. So the wait only ever lengthens the gap between two calls of
one job: at most one call per job per interval still holds. While the jobs on an account ask for
less than its rate, the bucket has tokens and no call waits (a job's poll is never slower than its
interval); when they ask for more (``jobs / interval > rate``), the calls are spread at the rate and
each job's effective interval becomes about ``jobs / rate`` seconds. A burst of up to one second's
worth of calls (at least one) passes at once, as after a triggerer restart, then the rate holds.

Stdlib only; safe from the triggerer's event loop and from threads (a worker's blocking wait).
"""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from airflow_trainkit.training.backend import TrainingBackend

# The connection extra that overrides a backend's declared rate.
RATE_EXTRA = "status_calls_per_second"
UNLIMITED = "unlimited"

# None: that account has no limit (remembered too, so its connection is read once).
_LIMITERS: dict[tuple[str, str | None], TokenBucket | None] = {}
_LIMITERS_LOCK = threading.Lock()


class TokenBucket:
    """At most ``rate`` calls a second on average, bursts of ``burst`` calls; each caller reserves
    its slot at once (first come, first served) and then sleeps until it.

    :param rate: sustained calls per second (positive).
    :param burst: calls that may pass at once when the bucket is full; default one second's worth,
        at least one.
    :param clock: monotonic seconds; tests inject their own.
    """

    def __init__(
        self, rate: float, burst: float | None = None, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self.rate = rate
        self.burst = burst
        self.clock = clock
        self._tokens: float | None = None  # full on first use
        self._stamp = 0.0
        self._lock = threading.Lock()

    @property
    def capacity(self) -> float:
        """The most calls that pass without waiting."""
        return self.burst if self.burst is not None else max(1.0, self.rate)

    def reserve(self) -> float:
        """Take one call's slot now: the seconds to wait before making the call (0 when a token was free)."""
        with self._lock:
            now = self.clock()
            if self._tokens is None:
                self._tokens = self.capacity
            else:
                self._tokens = min(self.capacity, self._tokens + (now - self._stamp) * self.rate)
            self._stamp = now
            self._tokens -= 1.0
            return 0.0 if self._tokens >= 0 else -self._tokens / self.rate

    def refund(self) -> None:
        """Give back a slot a caller reserved but will not use (it was cancelled while waiting)."""
        with self._lock:
            if self._tokens is not None:
                self._tokens = min(self.capacity, self._tokens + 1.0)

    async def acquire(self, sleep: Callable[[float], Awaitable[Any]] = asyncio.sleep) -> None:
        """Wait, without blocking the event loop, until a call may be made."""
        wait = self.reserve()
        if wait <= 0:
            return
        try:
            await sleep(wait)
        except BaseException:  # cancelled: the slot goes to the next caller
            self.refund()
            raise

    def acquire_blocking(self, sleep: Callable[[float], Any] = time.sleep) -> None:
        """Block this thread until a call may be made (a worker's wait; never on the event loop)."""
        wait = self.reserve()
        if wait > 0:
            sleep(wait)


def parse_rate(value: Any, *, where: str) -> float | None:
    """A rate from a backend's declaration or a connection extra: ``None`` for no limit.

    :raises ValueError: naming ``where`` and the value, unless it is a positive number,
        ``"unlimited"`` or ``None``.
    """
    if value is None or (isinstance(value, str) and value.strip().lower() == UNLIMITED):
        return None
    try:
        rate = float(value)
    except (TypeError, ValueError):
        rate = float("nan")
    if isinstance(value, bool) or not rate > 0 or rate == float("inf"):
        raise ValueError(
            f"{where} must be a positive number of calls per second or {UNLIMITED!r}, got {value!r}"
        )
    return rate


def rate_limiter(name: str, conn_id: str | None, rate: Callable[[], float | None]) -> TokenBucket | None:
    """The process's one bucket for ``name`` on ``conn_id``, or ``None`` for no limit.

    ``rate()`` is read the first time only: a changed connection takes effect in a new process
    (a restarted triggerer).
    """
    key = (name, conn_id)
    with _LIMITERS_LOCK:
        if key in _LIMITERS:
            return _LIMITERS[key]
    per_second = rate()  # may read a connection: not under the lock
    with _LIMITERS_LOCK:
        return _LIMITERS.setdefault(key, None if per_second is None else TokenBucket(per_second))


def status_call_limiter(backend: TrainingBackend) -> TokenBucket | None:
    """The bucket that ``backend``'s account shares in this process, or ``None`` for no limit.

    Reads the connection (for the override) the first time only; call it off the event loop.
    """
    return rate_limiter(backend.name, backend.conn_id, backend.status_call_rate)


def forget_limiters() -> None:
    """Drop every bucket (tests; a process that re-reads its connections)."""
    with _LIMITERS_LOCK:
        _LIMITERS.clear()
