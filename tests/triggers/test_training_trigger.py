"""TrainingJobTrigger: serialization, exactly one terminal event, deadlines, kills, retries."""

from __future__ import annotations

import asyncio
import importlib
import json
import time
from enum import StrEnum

import pytest
from trainkit_testing import isolated_backends

from airflow_trainkit.training.backend import JobPhase, JobStatus, TrainingBackend, register_backend
from airflow_trainkit.training.spec import TrainingJobSpec
from airflow_trainkit.triggers.training import (
    JobDone,
    JobStatusFailed,
    JobTimedOut,
    TrainingJobTrigger,
    read_event,
)


class ScriptedState(StrEnum):
    RUNNING = "Running"
    DONE = "Done"
    STOPPED = "Stopped"


class ScriptedBackend(TrainingBackend):
    """A backend whose answers a test scripts: a fake remote service, not a mock of the trigger."""

    State = ScriptedState
    PHASES = {
        ScriptedState.RUNNING: JobPhase.RUNNING,
        ScriptedState.DONE: JobPhase.SUCCEEDED,
        ScriptedState.STOPPED: JobPhase.STOPPED,
    }
    script: list = []
    stops: list = []
    calls = 0
    delay = 0.0  # seconds each status call takes

    def submit(self, spec: TrainingJobSpec, job, identity=None) -> JobStatus:
        raise NotImplementedError

    def describe(self, job) -> JobStatus:
        job_id = self.ref(job).job_name
        type(self).calls += 1
        time.sleep(self.delay)
        answer = self.script.pop(0) if len(self.script) > 1 else self.script[0]
        if isinstance(answer, BaseException):
            raise answer
        return JobStatus(job_id=job_id, state=answer, phase=self.phase_of(answer))

    def stop(self, job, *, reason: str = "") -> None:
        self.stops.append((self.ref(job).job_name, reason))

    def is_transient(self, error: BaseException) -> bool:
        return "Throttling" in str(error)


@pytest.fixture
def scripted():
    ScriptedBackend.script, ScriptedBackend.stops, ScriptedBackend.calls = [], [], 0
    ScriptedBackend.delay = 0.0
    with isolated_backends():  # registered for this test only
        register_backend("scripted")(ScriptedBackend)
        yield ScriptedBackend


async def collect(trigger: TrainingJobTrigger) -> list:
    return [event async for event in trigger.run()]


def test_serialize_round_trips_through_its_classpath():
    trigger = TrainingJobTrigger(
        "onprem",
        "job-1",
        "conn",
        deadline=123.5,
        poll_interval=2,
        stop_on_kill=False,
        identity={"dag_id": "d", "run_id": "r", "task_id": "t", "map_index": -1},
    )
    classpath, kwargs = trigger.serialize()
    module, _, name = classpath.rpartition(".")
    again = getattr(importlib.import_module(module), name)(**kwargs)
    assert again.serialize() == (classpath, kwargs)
    assert classpath == "airflow_trainkit.triggers.training.TrainingJobTrigger"


def test_exactly_one_event_when_the_job_ends(scripted):
    scripted.script = ["Running", "Running", "Done"]
    events = asyncio.run(collect(TrainingJobTrigger("scripted", "j", poll_interval=0.01)))
    assert len(events) == 1
    assert events[0].payload["status"] == "done" and events[0].payload["job"]["phase"] == "succeeded"


def test_a_job_that_ends_at_once_has_its_event_held_for_the_settle_time(scripted, monkeypatch):
    # Airflow 3.3.2 fails a task whose trigger fires before the scheduler drained the worker's
    # stale "success" for the deferral (apache/airflow#67287): the event waits the settle time.
    scripted.script = ["Done"]
    monkeypatch.setenv("TRAINKIT_TRIGGER_SETTLE_SECONDS", "0.6")
    started = time.monotonic()
    events = asyncio.run(collect(TrainingJobTrigger("scripted", "j", poll_interval=0.01)))
    assert [e.payload["status"] for e in events] == ["done"] and scripted.calls == 1
    assert time.monotonic() - started >= 0.6


def test_throttling_never_fails_a_live_job_and_there_is_no_poll_count(scripted):
    scripted.script = [RuntimeError("ThrottlingException: slow down")] * 6 + ["Running"] * 600 + ["Done"]
    trigger = TrainingJobTrigger("scripted", "j", poll_interval=0.0001)
    events = asyncio.run(collect(trigger))
    assert [e.payload["status"] for e in events] == ["done"]
    assert scripted.calls == 607


def test_persistent_errors_end_with_one_error_event(scripted):
    scripted.script = [PermissionError("AccessDenied")]
    events = asyncio.run(collect(TrainingJobTrigger("scripted", "j", poll_interval=0.0001)))
    assert [e.payload["status"] for e in events] == ["error"]
    assert "AccessDenied" in events[0].payload["message"]


def test_a_trigger_cancelled_during_a_status_call_ends(scripted):
    """The triggerer cancels a trigger's task (reassigned, task cleared, shutdown); the cancel must
    not count as a failed status call after which polling goes on."""
    scripted.script, scripted.delay = ["Running", "Done"], 0.2

    async def cancel_mid_call() -> asyncio.Task:
        task = asyncio.create_task(collect(TrainingJobTrigger("scripted", "j", poll_interval=0.01)))
        await asyncio.sleep(0.1)  # in the first status call
        task.cancel()
        await asyncio.wait({task})
        return task

    task = asyncio.run(cancel_mid_call())
    assert task.cancelled()  # not: polled on after the cancel and saw the job end
    assert scripted.calls == 1


def test_a_passed_deadline_stops_the_job(scripted):
    scripted.script = ["Running"]
    events = asyncio.run(collect(TrainingJobTrigger("scripted", "j", deadline=time.time() - 1)))
    assert [e.payload["status"] for e in events] == ["timeout"]
    assert scripted.stops == [("j", "deadline passed")]


async def kill(trigger: TrainingJobTrigger) -> None:
    """on_kill as the triggerer calls it, then its detached decision to the end."""
    await trigger.on_kill()
    if trigger.decision is not None:
        await trigger.decision


def test_on_kill_stops_the_job_when_the_task_state_cannot_be_read(scripted):
    identity = {"dag_id": "d", "run_id": "r", "task_id": "t", "map_index": -1}
    asyncio.run(kill(TrainingJobTrigger("scripted", "j", identity=identity)))  # no triggerer to ask
    assert scripted.stops and scripted.stops[0][0] == "j"


def test_on_kill_leaves_jobs_it_only_watches(scripted):
    asyncio.run(kill(TrainingJobTrigger("scripted", "j", stop_on_kill=False)))
    assert scripted.stops == []


def test_on_kill_leaves_the_job_to_a_task_that_will_run_again(scripted, monkeypatch):
    """The real answer comes from the triggerer's supervisor (shown by the live test); here the
    question is answered as the supervisor would, after a few failed tries."""
    import airflow_trainkit._compat as compat
    import airflow_trainkit.triggers.training as module

    monkeypatch.setattr(module, "TASK_STATE_TIMEOUT_SECONDS", 0.05)
    identity = {"dag_id": "d", "run_id": "r", "task_id": "t", "map_index": -1}
    for state, stopped in (
        (None, False),
        ("queued", False),
        ("deferred", False),
        ("failed", True),
        ("success", True),
    ):
        scripted.stops = []
        answers = [TimeoutError(), TimeoutError(), state]

        async def answer(*args, answers=answers):
            reply = answers.pop(0)
            if isinstance(reply, BaseException):
                raise reply
            return reply

        monkeypatch.setattr(compat, "atask_state_now", answer)
        monkeypatch.setattr(module.asyncio, "sleep", _no_sleep)
        asyncio.run(kill(TrainingJobTrigger("scripted", "j", identity=identity)))
        assert bool(scripted.stops) is stopped, state


_real_sleep = asyncio.sleep


async def _no_sleep(seconds):
    await _real_sleep(0)


@pytest.mark.parametrize(
    ("script", "deadline", "kind"),
    [
        (["Done"], None, JobDone),
        (["Running"], -1.0, JobTimedOut),
        ([PermissionError("AccessDenied")], None, JobStatusFailed),
    ],
)
def test_every_event_the_trigger_yields_is_one_the_resumed_task_reads(scripted, script, deadline, kind):
    scripted.script = script
    trigger = TrainingJobTrigger(
        "scripted", "j", poll_interval=0.0001, deadline=None if deadline is None else time.time() + deadline
    )
    (event,) = asyncio.run(collect(trigger))
    read = read_event(json.loads(json.dumps(event.payload)))  # as stored by the triggerer
    assert isinstance(read, kind) and read.job_id == "j"
