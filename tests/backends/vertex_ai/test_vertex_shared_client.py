"""Many triggers on one connection in one process share one JobServiceClient and its pooled connections."""

from __future__ import annotations

import asyncio

from _vertex_fake import Plan
from requests.adapters import DEFAULT_POOLSIZE
from trainkit_testing import trigger_event
from vertex_testing import BUCKET, CONN_ID, IMAGE

from airflow_trainkit.training.backend import shared_backend
from airflow_trainkit.training.spec import TrainingJobSpec
from airflow_trainkit.triggers.training import TrainingJobTrigger

TRIGGERS = 50
POLLS = 3  # GetCustomJob calls each trigger makes: PENDING, RUNNING, SUCCEEDED
SPEC = TrainingJobSpec.parse(
    {"command": ["python", "train.py"], "image": IMAGE, "output_uri": f"gs://{BUCKET}/models"}
)


def test_triggers_on_one_connection_share_one_client_and_its_pool(fake):
    backend = shared_backend("vertex_ai", CONN_ID)
    refs = []
    for i in range(TRIGGERS):
        fake.plan_next(Plan(states=["PENDING", "RUNNING", "SUCCEEDED"]))
        status = backend.submit(SPEC, f"tk-shared-{i}-a1")
        refs.append({"backend": "vertex_ai", "job_name": status.job_id, "handle": status.handle})
    client, connections = backend.client, fake.connections

    async def watch() -> list[dict]:
        triggers = [TrainingJobTrigger("vertex_ai", ref, CONN_ID, poll_interval=0.05) for ref in refs]
        return await asyncio.gather(*(trigger_event(trigger) for trigger in triggers))

    events = asyncio.run(watch())

    assert [e["status"] for e in events] == ["done"] * TRIGGERS
    assert {e["job"]["state"] for e in events} == {"JOB_STATE_SUCCEEDED"}
    assert len(fake.calls("GetCustomJob")) == TRIGGERS * POLLS
    # The fifty triggers used the one client the submits made...
    assert backend.client is client
    # ...and its requests pool: the calls all fifty made at once opened no connection it cannot keep.
    assert fake.connections - connections <= DEFAULT_POOLSIZE
