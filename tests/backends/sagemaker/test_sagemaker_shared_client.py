"""Many triggers on one connection in one process share one aiobotocore client and a few connections."""

from __future__ import annotations

import asyncio

from _sagemaker_fake import Plan
from sagemaker_testing import BUCKET, CONN_ID, IMAGE
from trainkit_testing import trigger_event

from airflow_trainkit.backends.sagemaker.backend import MAX_POOL_CONNECTIONS
from airflow_trainkit.training.backend import shared_backend
from airflow_trainkit.training.spec import TrainingJobSpec
from airflow_trainkit.triggers.training import TrainingJobTrigger

TRIGGERS = 50
POLLS = 3  # describes each trigger makes: InProgress, InProgress, Completed
SPEC = TrainingJobSpec.parse(
    {
        "command": ["python", "train.py"],
        "image": IMAGE,
        "output_uri": f"s3://{BUCKET}/models",
        "max_runtime": "1h",
    }
)


def start_jobs(fake, prefix: str) -> list[str]:
    """Fifty jobs from one built request (building checks the instance type, at 0.1 s a request)."""
    backend = shared_backend("sagemaker", CONN_ID)
    names = [f"tk-{prefix}-{i}-a1" for i in range(TRIGGERS)]
    request = backend.build_request(SPEC, names[0])
    for name in names:
        fake.plan_next(Plan(states=["InProgress"] * (POLLS - 1) + ["Completed"]))
        backend.client.create_training_job(**{**request, "TrainingJobName": name})
    return names


async def watch(names: list[str]) -> list[dict]:
    """Every job's trigger at once in this event loop, as a triggerer runs them."""
    triggers = [TrainingJobTrigger("sagemaker", name, CONN_ID, poll_interval=0.05) for name in names]
    return await asyncio.gather(*(trigger_event(trigger) for trigger in triggers))


def test_triggers_on_one_connection_share_one_client_and_a_bounded_pool(fake):
    names = start_jobs(fake, "shared")
    backend = shared_backend("sagemaker", CONN_ID)
    made, connections = backend.async_clients_made, fake.connections
    described = len(fake.calls("DescribeTrainingJob"))

    events = asyncio.run(watch(names))

    assert [e["status"] for e in events] == ["done"] * TRIGGERS
    assert {e["job"]["state"] for e in events} == {"Completed"}
    assert len(fake.calls("DescribeTrainingJob")) - described == TRIGGERS * POLLS
    # One aiobotocore client for the fifty triggers...
    assert backend.async_clients_made == made + 1
    # ...whose pool opened at most its size in TCP connections, although all fifty polled at once.
    opened = fake.connections - connections
    assert 1 <= opened <= MAX_POOL_CONNECTIONS


def test_each_event_loop_gets_its_own_client_and_closes_it(fake):
    names = start_jobs(fake, "loops")
    backend = shared_backend("sagemaker", CONN_ID)
    made = backend.async_clients_made

    first = asyncio.run(watch(names[:25]))
    assert backend.async_clients_open == 0  # asyncio.run's shutdown closed the loop's client
    second = asyncio.run(watch(names[25:]))

    assert [e["status"] for e in first + second] == ["done"] * TRIGGERS
    assert backend.async_clients_made == made + 2
    assert backend.async_clients_open == 0


def test_client_keeps_the_connections_settings_and_bounds_its_pool(aws_env):
    backend = shared_backend("sagemaker", CONN_ID)
    _, kwargs = backend._async_client_args()
    assert kwargs["config"].max_pool_connections == MAX_POOL_CONNECTIONS
    # config_kwargs of the connection survive the merge (the tests' connection turns retries off).
    assert kwargs["config"].retries == {"mode": "standard", "total_max_attempts": 1}
