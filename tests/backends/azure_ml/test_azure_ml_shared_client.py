"""Many triggers on one connection in one process share one MLClient; each poll is one GET, in a thread."""

from __future__ import annotations

import asyncio
import threading

from _azure_ml_fake import Plan
from azure_testing import CONN_ID, store_uri
from trainkit_testing import trigger_event

from airflow_trainkit.training.backend import shared_backend
from airflow_trainkit.training.spec import TrainingJobSpec
from airflow_trainkit.triggers.training import TrainingJobTrigger

TRIGGERS = 20
POLLS = 3  # GETs each trigger makes: Queued, Running, Completed
SPEC = TrainingJobSpec.parse(
    {"command": ["python", "train.py"], "image": "azureml:trainer:1", "output_uri": store_uri("m")}
)


def test_triggers_on_one_connection_share_one_client_and_poll_off_the_event_loop(fake):
    backend = shared_backend("azure_ml", CONN_ID)
    for i in range(TRIGGERS):
        fake.plan_next(Plan(states=["Queued", "Running", "Completed"]))
        backend.submit(SPEC, f"tk-shared-{i}-a1")
    client = backend.client
    loop_threads: set[int] = set()
    original = backend.describe

    def describe(job):  # records which thread each describe runs in
        loop_threads.add(threading.get_ident())
        return original(job)

    backend.describe = describe  # type: ignore[method-assign]
    try:

        async def watch() -> list[dict]:
            main = threading.get_ident()
            triggers = [
                TrainingJobTrigger("azure_ml", f"tk-shared-{i}-a1", CONN_ID, poll_interval=0.01)
                for i in range(TRIGGERS)
            ]
            events = await asyncio.gather(*(trigger_event(t) for t in triggers))
            assert main not in loop_threads  # no describe ran on the event loop's thread
            return events

        events = asyncio.run(watch())
    finally:
        del backend.describe
    assert [e["status"] for e in events] == ["done"] * TRIGGERS
    assert {e["job"]["state"] for e in events} == {"Completed"}
    assert len(fake.calls("GetJob")) == TRIGGERS * POLLS  # one GET per poll, nothing else
    assert backend.client is client and shared_backend("azure_ml", CONN_ID) is backend
