"""One wait policy, every user: the same fault sequences through the training trigger, the worker-side
wait, the training sensor's poke mode, the registry trigger and the registry sensor's poke mode.

Each step of a sequence is what the remote service answers to one status call:
``"throttle"`` (HTTP 429 / a throttling error), ``"denied"`` (a non-transient error), ``"pending"``
(the job runs; no matching model version yet) and ``"done"`` (the job succeeded; the version exists).
The training users talk to a scripted backend (a fake service behind the backend contract); the
registry users talk to a scripted MLflow REST endpoint on loopback through the real MLflow client.
"""

from __future__ import annotations

import asyncio
import json
import threading
from enum import StrEnum
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest
from trainkit_testing import isolated_backends, make_context

from airflow_trainkit.training.backend import JobPhase, JobStatus, TrainingBackend, register_backend

SEQUENCES = {
    # A throttling storm longer than the old give-up count, then success: never fails the wait.
    "throttling storm": (["throttle"] * 7 + ["pending", "done"], "done"),
    # Five non-transient errors in a row end the wait.
    "persistent errors": (["denied"] * 5 + ["done"], "error"),
    # An answer in between resets the count: four, an answer, four more, then success.
    "errors reset by an answer": (["denied"] * 4 + ["pending"] + ["denied"] * 4 + ["done"], "done"),
    # Throttling does not count toward the persistent errors.
    "mixed": (["denied", "throttle"] * 4 + ["done"], "done"),
}


class Throttled(Exception):
    """What a cloud SDK raises on HTTP 429."""


class Denied(Exception):
    """A non-transient answer (HTTP 403)."""


class FaultyState(StrEnum):
    RUNNING = "Running"
    DONE = "Done"


class FaultyBackend(TrainingBackend):
    """A backend whose service answers from a script, one step per status call."""

    State = FaultyState
    PHASES = {FaultyState.RUNNING: JobPhase.RUNNING, FaultyState.DONE: JobPhase.SUCCEEDED}
    poll_interval = 0.01
    script: list[str] = []
    calls = 0

    def submit(self, spec, job, identity=None):
        raise NotImplementedError

    def describe(self, job):
        type(self).calls += 1
        step = self.script.pop(0) if len(self.script) > 1 else self.script[0]
        if step == "throttle":
            raise Throttled("ThrottlingException: Rate exceeded")
        if step == "denied":
            raise Denied("AccessDenied")
        state = FaultyState.DONE if step == "done" else FaultyState.RUNNING
        return JobStatus(job_id=self.ref(job).job_name, state=state.value, phase=self.phase_of(state))

    def stop(self, job, *, reason=""):
        pass

    def is_transient(self, error):
        return isinstance(error, Throttled)


@pytest.fixture
def faulty():
    FaultyBackend.calls = 0
    with isolated_backends():  # registered for this test only
        register_backend("faulty")(FaultyBackend)
        yield FaultyBackend


class _ScriptedMlflow(BaseHTTPRequestHandler):
    script: list[str] = []
    calls = 0

    def do_GET(self) -> None:  # noqa: N802 - http.server's name
        if self.path.startswith("/health"):  # the hook's reachability check, not a status call
            self._answer(200, {})
            return
        type(self).calls += 1
        step = self.script.pop(0) if len(self.script) > 1 else self.script[0]
        if step == "throttle":
            self._answer(429, {"error_code": "REQUEST_LIMIT_EXCEEDED", "message": "slow down"})
        elif step == "denied":
            self._answer(403, {"error_code": "PERMISSION_DENIED", "message": "no"})
        elif step == "pending":
            self._answer(404, {"error_code": "RESOURCE_DOES_NOT_EXIST", "message": "no such alias"})
        else:
            version = {
                "name": "churn",
                "version": "3",
                "run_id": "r1",
                "source": "s3://m/3",
                "aliases": ["champion"],
            }
            self._answer(200, {"model_version": version})

    def _answer(self, code: int, body: dict[str, Any]) -> None:
        data = json.dumps(body).encode()
        self.send_response(code)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def log_message(self, *args: Any) -> None:
        pass


@pytest.fixture
def scripted_mlflow(monkeypatch):
    server = ThreadingHTTPServer(("127.0.0.1", 0), _ScriptedMlflow)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    monkeypatch.setenv(
        "AIRFLOW_CONN_TRAINKIT_MLFLOW_SCRIPTED",
        json.dumps({"conn_type": "trainkit_mlflow", "host": f"http://127.0.0.1:{server.server_port}"}),
    )
    # MLflow's client retries 429/5xx itself; the policy under test must do it instead.
    monkeypatch.setenv("MLFLOW_HTTP_REQUEST_MAX_RETRIES", "0")
    _ScriptedMlflow.calls = 0
    yield _ScriptedMlflow
    server.shutdown()


# -- the users, each reduced to "done" or "error" ----------------------------------------------


def training_trigger(script: list[str]) -> str:
    from airflow_trainkit.triggers.training import TrainingJobTrigger

    FaultyBackend.script = script

    async def first() -> dict[str, Any]:
        async for event in TrainingJobTrigger("faulty", "tk-job-a1", poll_interval=0.01).run():
            return event.payload
        raise AssertionError("no event")

    return "done" if asyncio.run(first())["status"] == "done" else "error"


def worker_wait(script: list[str]) -> str:
    from airflow_trainkit.training.identity import JobIdentity
    from airflow_trainkit.training.lifecycle import JobLifecycle, TaskStateRecords
    from airflow_trainkit.training.spec import TrainingJobSpec

    FaultyBackend.script = script
    lifecycle = JobLifecycle(
        FaultyBackend(),
        TrainingJobSpec.parse({"command": ["true"]}),
        JobIdentity("dag", "run", "train"),
        TaskStateRecords(None),
        poll_interval=0.01,
    )
    try:
        lifecycle.wait(FaultyBackend().ref("tk-job-a1"))
    except (Denied, Throttled):
        return "error"
    return "done"


def poke_until_done(sensor: Any, errors: tuple[type[BaseException], ...]) -> str:
    context = make_context()
    for _ in range(100):
        try:
            answer = sensor.poke(context)
        except errors:
            return "error"
        if answer:
            return "done"
    raise AssertionError("the sensor neither finished nor failed")


def training_sensor_poke(script: list[str]) -> str:
    from airflow_trainkit.sensors.training import TrainingJobSensor

    FaultyBackend.script = script
    sensor = TrainingJobSensor(task_id="wait", backend="faulty", job_id="tk-job-a1", deferrable=False)
    return poke_until_done(sensor, (Denied, Throttled))


def registry_trigger(script: list[str]) -> str:
    from airflow_trainkit.triggers.registry import ModelVersionTrigger

    _ScriptedMlflow.script = script

    async def first() -> dict[str, Any]:
        trigger = ModelVersionTrigger(
            "churn", alias="champion", mlflow_conn_id="trainkit_mlflow_scripted", poll_interval=0.01
        )
        async for event in trigger.run():
            return event.payload
        raise AssertionError("no event")

    payload = asyncio.run(first())
    return "done" if payload["status"] == "found" else "error"


def registry_sensor_poke(script: list[str]) -> str:
    from mlflow.exceptions import MlflowException

    from airflow_trainkit.sensors.registry import ModelVersionSensor

    _ScriptedMlflow.script = script
    sensor = ModelVersionSensor(
        task_id="wait",
        model_name="churn",
        alias="champion",
        mlflow_conn_id="trainkit_mlflow_scripted",
        deferrable=False,
        poke_interval=0.01,
    )
    return poke_until_done(sensor, (MlflowException,))


# user -> (how it waits, the fixture holding its fake service); the registry ones start an MLflow client.
USERS = [
    pytest.param(training_trigger, "faulty", id="training trigger"),
    pytest.param(worker_wait, "faulty", id="worker wait"),
    pytest.param(training_sensor_poke, "faulty", id="training sensor poke"),
    pytest.param(registry_trigger, "scripted_mlflow", id="registry trigger", marks=pytest.mark.integration),
    pytest.param(
        registry_sensor_poke, "scripted_mlflow", id="registry sensor poke", marks=pytest.mark.integration
    ),
]


@pytest.mark.parametrize("sequence", list(SEQUENCES))
@pytest.mark.parametrize(("wait", "service"), USERS)
def test_every_waiter_follows_one_policy(request, wait, service, sequence):
    fake = request.getfixturevalue(service)
    script, expected = SEQUENCES[sequence]
    assert wait(list(script)) == expected
    # Every answer was asked for exactly once: the waiter stopped where the policy says.
    assert fake.calls == (len(script) if expected == "done" else 5)


def test_a_not_found_right_after_submit_is_transient_later_it_ends_the_wait():
    import time

    from airflow_trainkit.exceptions import TrainingJobNotFound
    from airflow_trainkit.training.waiting import WaitPolicy

    fresh = WaitPolicy(interval=1.0, submitted_at=time.time())
    assert fresh.keeps_waiting(TrainingJobNotFound("x", "j")) is True
    old = WaitPolicy(interval=1.0, submitted_at=time.time() - 10)
    assert old.keeps_waiting(TrainingJobNotFound("x", "j")) is False
    unknown = WaitPolicy(interval=1.0)  # a job started elsewhere: not found is final
    assert unknown.keeps_waiting(TrainingJobNotFound("x", "j")) is False


def test_delays_back_off_with_jitter_but_never_below_the_interval_nor_past_the_deadline():
    import time

    from airflow_trainkit.training.waiting import WaitPolicy

    policy = WaitPolicy(interval=2.0, is_transient=lambda err: True, max_backoff=60.0)
    assert policy.delay() == 2.0
    delays = []
    for _ in range(8):
        policy.keeps_waiting(Throttled())
        delays.append(policy.delay())
    assert all(2.0 <= d <= 60.0 for d in delays) and max(delays) > 30.0
    policy.deadline = time.time() + 0.5
    assert policy.delay() <= 0.5


def test_a_passed_deadline_ends_the_worker_wait(faulty):
    import time

    from airflow_trainkit.training.waiting import WaitDeadlinePassed, WaitPolicy

    FaultyBackend.script = ["pending"]
    policy = WaitPolicy(interval=0.01, deadline=time.time() + 0.2)
    with pytest.raises(WaitDeadlinePassed):
        policy.poll(lambda: FaultyBackend().describe("j"), lambda status: status.phase.terminal)
