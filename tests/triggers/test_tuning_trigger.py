"""TuningTrigger: one event for many trials, at the earliest thing the search must decide."""

from __future__ import annotations

import asyncio
import importlib
import time
from enum import StrEnum

import pytest
from trainkit_testing import isolated_backends

from airflow_trainkit.training.backend import JobPhase, JobStatus, TrainingBackend, register_backend
from airflow_trainkit.training.spec import TrainingJobSpec
from airflow_trainkit.triggers.tuning import TuningTrigger, read_tuning_event


class TrialState(StrEnum):
    RUNNING = "Running"
    DONE = "Done"


class TrialsBackend(TrainingBackend):
    """A backend whose jobs' answers a test scripts per job: a fake service, not a mock of the trigger."""

    State = TrialState
    PHASES = {TrialState.RUNNING: JobPhase.RUNNING, TrialState.DONE: JobPhase.SUCCEEDED}
    reports_progress = True
    answers: dict = {}
    histories: dict = {}
    stops: list = []

    def submit(self, spec: TrainingJobSpec, job, identity=None) -> JobStatus:
        raise NotImplementedError

    def describe(self, job) -> JobStatus:
        name = self.ref(job).job_name
        script = self.answers[name]
        answer = script.pop(0) if len(script) > 1 else script[0]
        if isinstance(answer, BaseException):
            raise answer
        return JobStatus(job_id=name, state=answer, phase=self.phase_of(answer))

    def stop(self, job, *, reason: str = "") -> None:
        self.stops.append((self.ref(job).job_name, reason))

    def progress(self, status: JobStatus):
        script = self.histories.get(status.job_id, [None])
        return script.pop(0) if len(script) > 1 else script[0]

    def is_transient(self, error: BaseException) -> bool:
        return "Throttling" in str(error)


@pytest.fixture
def trials():
    TrialsBackend.answers, TrialsBackend.histories, TrialsBackend.stops = {}, {}, []
    with isolated_backends():
        register_backend("trials")(TrialsBackend)
        yield TrialsBackend


def job(name: str, **extra) -> dict:
    return {"job": {"backend": "trials", "job_name": name, **extra}, "conn_id": None, "rounds_seen": 0}


def events(trigger: TuningTrigger) -> list[dict]:
    async def collect() -> list:
        return [event.payload async for event in trigger.run()]

    return asyncio.run(collect())


def test_serialize_round_trips_through_its_classpath():
    trigger = TuningTrigger(
        [job("a"), job("b", deadline=5.0)],
        deadline=10.0,
        poll_interval=2.0,
        progress_after=3.0,
        progress_metric="validation-auc",
        identity={"dag_id": "d", "run_id": "r", "task_id": "t", "map_index": -1},
    )
    classpath, kwargs = trigger.serialize()
    module, _, name = classpath.rpartition(".")
    again = getattr(importlib.import_module(module), name)(**kwargs)
    assert again.serialize() == (classpath, kwargs)
    assert classpath == "airflow_trainkit.triggers.tuning.TuningTrigger"


def test_one_event_when_any_trial_ends(trials):
    trials.answers = {"a": ["Running"], "b": ["Running", "Running", "Done"]}
    got = events(TuningTrigger([job("a"), job("b")], poll_interval=0.01))
    assert got == [{"status": "trial_ended", "job_id": "b", "message": "Done"}]
    assert read_tuning_event(got[0]).status == "trial_ended"


def test_a_trial_past_its_deadline_is_stopped_and_named(trials):
    trials.answers = {"a": ["Running"], "b": ["Running"]}
    got = events(TuningTrigger([job("a"), job("b", deadline=time.time() - 1)], poll_interval=0.01))
    assert got[0]["status"] == "trial_deadline" and got[0]["job_id"] == "b"
    assert [name for name, _ in trials.stops] == ["b"]


def test_the_searchs_deadline_stops_every_trial(trials):
    trials.answers = {"a": ["Running"], "b": ["Running"]}
    got = events(TuningTrigger([job("a"), job("b")], deadline=time.time() + 0.2, poll_interval=0.05))
    assert got[0]["status"] == "timeout" and got[0]["reason"] == "execution_timeout"
    assert sorted(name for name, _ in trials.stops) == ["a", "b"]


def test_new_rounds_of_the_pruning_metric_wake_the_task_only_from_progress_after(trials):
    trials.answers = {"a": ["Running"]}
    trials.histories = {"a": [{"validation-auc": [0.6]}, {"validation-auc": [0.6, 0.7], "other": [1, 2, 3]}]}
    seen_one = job("a") | {"rounds_seen": 1}
    started = time.monotonic()
    got = events(
        TuningTrigger(
            [seen_one], poll_interval=0.01, progress_after=time.time() + 0.3, progress_metric="validation-auc"
        )
    )
    assert got == [{"status": "progress", "job_id": "a"}]
    assert time.monotonic() - started >= 0.3
    # Without progress_after, the same growth never wakes the task.
    trials.answers = {"a": ["Running", "Running", "Running", "Done"]}
    trials.histories = {"a": [{"validation-auc": [0.6, 0.7, 0.8]}]}
    assert events(TuningTrigger([seen_one], poll_interval=0.01))[0]["status"] == "trial_ended"


def test_throttling_is_waited_out_and_repeated_errors_end_the_wait(trials):
    trials.answers = {"a": [RuntimeError("Throttling"), RuntimeError("Throttling"), "Done"]}
    assert events(TuningTrigger([job("a")], poll_interval=0.01))[0]["status"] == "trial_ended"
    trials.answers = {"a": [RuntimeError("access denied")]}
    got = events(TuningTrigger([job("a")], poll_interval=0.01))
    assert got[0]["status"] == "error" and "access denied" in got[0]["message"]


def test_a_kill_outside_a_triggerer_stops_every_trial(trials):
    trigger = TuningTrigger([job("a"), job("b")], identity={"dag_id": "d", "run_id": "r", "task_id": "t"})

    async def kill() -> None:
        await trigger.on_kill()
        await trigger.decision

    asyncio.run(kill())
    assert sorted(name for name, _ in trials.stops) == ["a", "b"]


@pytest.mark.parametrize(
    ("event", "message"),
    [("done", r"expected a mapping"), ({"status": "finished"}, r"event\.status: .*got 'finished'")],
)
def test_a_malformed_event_is_named(event, message):
    with pytest.raises(ValueError, match=message):
        read_tuning_event(event)
