"""The per-account status-call limit: the token bucket on an injected clock, its sharing per
(backend, connection), the connection's override, and the training trigger waiting on it."""

from __future__ import annotations

import asyncio
import json
import threading
import time
from enum import StrEnum

import pytest
from trainkit_testing import isolated_backends

from airflow_trainkit.training import ratelimit
from airflow_trainkit.training.backend import JobPhase, JobStatus, TrainingBackend, register_backend
from airflow_trainkit.training.ratelimit import TokenBucket, parse_rate, rate_limiter, status_call_limiter


class Clock:
    """Monotonic seconds that move only when the test says so."""

    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture(autouse=True)
def no_limiters():
    ratelimit.forget_limiters()
    yield
    ratelimit.forget_limiters()


# -- the bucket --------------------------------------------------------------------------------------


def test_a_full_bucket_lets_a_burst_through_then_spaces_calls_at_the_rate():
    clock = Clock()
    bucket = TokenBucket(4.0, clock=clock)
    waits = [bucket.reserve() for _ in range(7)]
    # one second's worth (4) at once, then one slot every 1/4 s, first come first served
    assert waits == [0.0, 0.0, 0.0, 0.0, 0.25, 0.5, 0.75]


def test_fewer_calls_than_the_rate_never_wait():
    """Few jobs: a job's poll is never slower than its interval."""
    clock = Clock()
    bucket = TokenBucket(10.0, clock=clock)
    for _ in range(200):  # 5 calls a second for 40 s, against a rate of 10
        assert bucket.reserve() == 0.0
        clock.now += 0.2


def test_a_sustained_overload_is_held_to_the_rate():
    clock = Clock()
    bucket = TokenBucket(5.0, clock=clock)
    # 1,000 callers every second for 10 s (as 1,000 jobs polled every second would ask)
    granted_at = []
    for second in range(10):
        clock.now = 1000.0 + second
        granted_at += [clock.now + bucket.reserve() for _ in range(1000)]
    granted_at.sort()
    # any window of one second holds at most rate + burst slots
    for i, start in enumerate(granted_at):
        later = [t for t in granted_at[i : i + 20] if t < start + 1.0]
        assert len(later) <= 5 + 5


def test_an_idle_bucket_refills_only_to_its_capacity():
    clock = Clock()
    bucket = TokenBucket(2.0, clock=clock)
    assert [bucket.reserve() for _ in range(2)] == [0.0, 0.0]
    clock.now += 3600  # an hour idle earns no more than the burst
    assert [bucket.reserve() for _ in range(3)] == [0.0, 0.0, 0.5]


def test_a_slow_rate_still_lets_one_call_through_at_once():
    clock = Clock()
    bucket = TokenBucket(0.5, clock=clock)  # one call every 2 s
    assert bucket.capacity == 1.0
    assert [bucket.reserve(), bucket.reserve(), bucket.reserve()] == [0.0, 2.0, 4.0]


def test_threads_each_get_a_slot_of_their_own():
    """Safe from threads (a worker's blocking waits): no two callers get the same slot."""
    clock = Clock()
    bucket = TokenBucket(10.0, clock=clock)
    waits: list[float] = []
    lock = threading.Lock()
    start = threading.Barrier(16)

    def caller() -> None:
        start.wait()
        for _ in range(25):
            wait = bucket.reserve()
            with lock:
                waits.append(wait)

    threads = [threading.Thread(target=caller) for _ in range(16)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    expected = [0.0] * 10 + [round(k / 10, 6) for k in range(1, 16 * 25 - 10 + 1)]
    assert sorted(round(w, 6) for w in waits) == expected


def test_the_blocking_acquire_sleeps_its_wait():
    clock = Clock()
    bucket = TokenBucket(1.0, clock=clock)
    slept: list[float] = []
    bucket.acquire_blocking(sleep=slept.append)
    bucket.acquire_blocking(sleep=slept.append)
    assert slept == [1.0]


def test_a_waiter_cancelled_gives_its_slot_back():
    clock = Clock()
    bucket = TokenBucket(1.0, clock=clock)

    async def scenario() -> list[float]:
        forever = asyncio.get_running_loop().create_future()

        async def sleep(_: float) -> None:
            await forever

        assert bucket.reserve() == 0.0  # the burst is used up
        waiter = asyncio.create_task(bucket.acquire(sleep=sleep))  # holds the slot at +1 s
        await asyncio.sleep(0)
        waiter.cancel()  # e.g. the trigger was cancelled while it waited
        with pytest.raises(asyncio.CancelledError):
            await waiter
        return [bucket.reserve()]

    # the next caller gets the slot the cancelled one had, not the one after it
    assert asyncio.run(scenario()) == [1.0]


# -- rates -------------------------------------------------------------------------------------------


@pytest.mark.parametrize(("value", "rate"), [(2, 2.0), ("0.5", 0.5), (None, None), ("Unlimited", None)])
def test_parse_rate_reads_numbers_and_unlimited(value, rate):
    assert parse_rate(value, where="x") == rate


@pytest.mark.parametrize("value", [0, -1, "fast", True, float("inf"), float("nan"), [3]])
def test_parse_rate_names_the_setting_and_the_bad_value(value):
    with pytest.raises(ValueError) as problem:
        parse_rate(value, where="connection 'c': extra status_calls_per_second")
    assert "extra status_calls_per_second" in str(problem.value)
    assert repr(value) in str(problem.value)


class LimitedState(StrEnum):
    RUNNING = "Running"
    DONE = "Done"


class LimitedBackend(TrainingBackend):
    """A backend whose account allows ``status_calls_per_second``; every describe answers DONE and
    is recorded (monotonic time) as the service would see it."""

    State = LimitedState
    PHASES = {LimitedState.RUNNING: JobPhase.RUNNING, LimitedState.DONE: JobPhase.SUCCEEDED}
    poll_interval = 0.01
    shared_per_connection = True
    status_calls_per_second = 20.0
    calls: list[float] = []

    def submit(self, spec, job, identity=None):
        raise NotImplementedError

    def describe(self, job):
        type(self).calls.append(time.monotonic())
        return JobStatus(
            job_id=self.ref(job).job_name, state=LimitedState.DONE.value, phase=JobPhase.SUCCEEDED
        )

    def stop(self, job, *, reason=""):
        pass


@pytest.fixture
def limited(monkeypatch):
    import airflow_trainkit.training.backend as backend_module

    LimitedBackend.calls = []
    monkeypatch.setattr(backend_module, "_SHARED", {})
    with isolated_backends():
        register_backend("limited")(LimitedBackend)
        yield LimitedBackend


def _connection(monkeypatch, conn_id: str, **extra: object) -> None:
    monkeypatch.setenv(
        f"AIRFLOW_CONN_{conn_id.upper()}", json.dumps({"conn_type": "generic", "extra": extra})
    )


def test_the_backend_declares_its_rate_and_a_connection_overrides_it(limited, monkeypatch):
    _connection(monkeypatch, "acct_slow", status_calls_per_second=2)
    _connection(monkeypatch, "acct_free", status_calls_per_second="unlimited")
    _connection(monkeypatch, "acct_plain", region="eu")
    assert LimitedBackend(None).status_call_rate() == 20.0
    assert LimitedBackend("acct_plain").status_call_rate() == 20.0
    assert LimitedBackend("acct_slow").status_call_rate() == 2.0
    assert LimitedBackend("acct_free").status_call_rate() is None
    assert LimitedBackend("acct_missing").status_call_rate() == 20.0


def test_a_bad_override_names_the_connection_the_extra_and_the_value(limited, monkeypatch):
    _connection(monkeypatch, "acct_bad", status_calls_per_second="lots")
    with pytest.raises(ValueError, match=r"connection 'acct_bad': extra status_calls_per_second .*'lots'"):
        LimitedBackend("acct_bad").status_call_rate()


def test_one_bucket_per_backend_and_connection(limited, monkeypatch):
    _connection(monkeypatch, "acct_a", status_calls_per_second=5)
    a1 = status_call_limiter(LimitedBackend("acct_a"))
    a2 = status_call_limiter(LimitedBackend("acct_a"))
    b = status_call_limiter(LimitedBackend("acct_b"))
    assert a1 is a2 and a1 is not b
    assert (a1.rate, b.rate) == (5.0, 20.0)
    # the rate is read once, when the bucket is made
    reads = []
    assert rate_limiter("limited", "acct_a", lambda: reads.append(1) or 1.0) is a1
    assert reads == []


def test_backends_on_your_own_hosts_are_not_limited(monkeypatch):
    from airflow_trainkit.training.backend import get_backend

    assert get_backend("onprem").status_calls_per_second is None
    assert get_backend("ray").status_calls_per_second is None
    for cloud in ("sagemaker", "vertex_ai", "azure_ml"):
        assert get_backend(cloud).status_calls_per_second > 0
    reads = []
    assert rate_limiter("onprem", None, lambda: reads.append(1)) is None
    assert rate_limiter("onprem", None, lambda: reads.append(1)) is None
    assert reads == [1]  # "no limit" is remembered too: the connection is read once


# -- the trigger -------------------------------------------------------------------------------------


def _run_triggers(count: int, conn_id: str) -> list[dict]:
    from airflow_trainkit.triggers.training import TrainingJobTrigger

    async def one(i: int) -> dict:
        trigger = TrainingJobTrigger("limited", f"job-{i}", conn_id)
        events = [event.payload async for event in trigger.run()]
        return events[0]

    async def all_of_them() -> list[dict]:
        return await asyncio.gather(*(one(i) for i in range(count)))

    return asyncio.run(all_of_them())


def test_triggers_on_one_account_share_its_rate(limited, monkeypatch):
    """30 jobs at once on an account allowing 20 calls a second: 20 pass, the last 10 are spread."""
    monkeypatch.setenv("TRAINKIT_TRIGGER_SETTLE_SECONDS", "0")
    _connection(monkeypatch, "acct_shared", region="eu")
    events = _run_triggers(30, "acct_shared")
    assert [e["status"] for e in events] == ["done"] * 30
    calls = sorted(limited.calls)
    assert len(calls) == 30
    # the k-th call after the burst comes no sooner than k / rate after the first (lower bounds
    # only: a slow machine can only make the gaps longer)
    for k, when in enumerate(calls[20:], start=1):
        assert when - calls[0] >= k / 20.0 - 0.01


def test_a_bad_override_ends_the_trigger_with_an_error_event(limited, monkeypatch):
    monkeypatch.setenv("TRAINKIT_TRIGGER_SETTLE_SECONDS", "0")
    _connection(monkeypatch, "acct_bad", status_calls_per_second=-3)
    (event,) = _run_triggers(1, "acct_bad")
    assert event["status"] == "error"
    assert "connection 'acct_bad': extra status_calls_per_second" in event["message"]
    assert limited.calls == []
