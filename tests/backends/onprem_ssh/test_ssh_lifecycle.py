"""TrainModelOperator's lifecycle on a GPU host over SSH: defer, re-attach, fail, stop on every path."""

from __future__ import annotations

import asyncio
import threading
import time

import pytest
from ssh_testing import host_entry
from trainkit_testing import TaskStateStore, make_context, resume, settled

from airflow_trainkit._compat import AirflowException, TaskDeferralTimeout, TaskDeferred
from airflow_trainkit.exceptions import TrainingJobFailed
from airflow_trainkit.operators.training import STATE_KEY, TrainModelOperator
from airflow_trainkit.training.backend import JobRef

pytestmark = pytest.mark.integration
CONN = "trainkit_onprem_ssh"


def operator(script: str, **spec_extra) -> TrainModelOperator:
    return TrainModelOperator(
        task_id="train",
        backend="onprem",
        backend_conn_id=CONN,
        spec={"command": ["sh", "-c", script], **spec_extra},
        poll_interval=0.1,
    )


@pytest.fixture
def host_a(onprem_ssh, gpu_hosts):
    entry = host_entry(gpu_hosts["a"])
    backend = onprem_ssh([entry])
    return backend, entry, gpu_hosts["a"]


def test_defers_then_returns_the_result_with_its_host(host_a):
    backend, entry, host = host_a
    op = operator('sleep 1; echo \'{"auc_roc": 0.9}\' > "$TRAINKIT_OUTPUT_URI/metrics.json"; echo trained')
    context = make_context()
    with pytest.raises(TaskDeferred) as deferred:
        op.execute(context)
    record = context["task_state_store"].get(STATE_KEY)
    job_id = deferred.value.trigger.job_id
    # The re-attach record names the host: a retry or another triggerer asks that host directly.
    assert record["handle"] == f"gpu_a/{job_id}"
    result = resume(op, context, deferred.value)
    assert result["state"] == "SUCCEEDED" and result["metrics"] == {"auc_roc": 0.9}
    assert result["details"]["host"] == "gpu_a" and result["output_uri"].startswith(entry["root"])


def test_a_retry_reattaches_to_the_running_job_on_its_host(host_a):
    backend, entry, host = host_a
    store = TaskStateStore()
    held = 'while [ ! -e "$TRAINKIT_JOB_DIR/../release" ]; do sleep 0.1; done; echo done'
    with pytest.raises(TaskDeferred) as first:
        operator(held).execute(make_context(store=store, try_number=1))
    retry_context = make_context(store=store, try_number=2)
    retry = operator(held)
    with pytest.raises(TaskDeferred) as second:
        retry.execute(retry_context)
    assert second.value.trigger.job_id == first.value.trigger.job_id
    listed = host.run(f"ls {entry['root']}").split()
    assert [name for name in listed if name not in ("outputs", "gpu-locks")] == [first.value.trigger.job_id]
    host.run(f"touch {entry['root']}/release")
    assert resume(retry, retry_context, second.value)["state"] == "SUCCEEDED"


def test_a_failed_job_fails_the_task_with_exit_code_and_the_hosts_log(host_a):
    op = operator("sleep 1; echo 'CUDA out of memory' >&2; exit 7")
    context = make_context()
    with pytest.raises(TaskDeferred) as deferred:
        op.execute(context)
    with pytest.raises(TrainingJobFailed) as failed:
        resume(op, context, deferred.value)
    assert failed.value.reason == "exit code 7" and "CUDA out of memory" in str(failed.value)


def test_trigger_on_kill_stops_the_job_over_the_triggerers_connection(host_a):
    backend, _, _ = host_a
    with pytest.raises(TaskDeferred) as deferred:
        operator("sleep 30").execute(make_context())
    trigger = deferred.value.trigger

    async def run_then_kill():
        waiting = asyncio.ensure_future(trigger.run().__anext__())
        await asyncio.sleep(1)
        waiting.cancel()
        await trigger.on_kill()  # outside a triggerer the task state cannot be read: it stops
        await trigger.decision

    asyncio.run(run_then_kill())
    assert settled(backend, trigger.ref, timeout=20).state == "STOPPED"


def test_deferral_timeout_and_the_deadline_stop_the_job(host_a):
    backend, _, _ = host_a
    store = TaskStateStore()
    with pytest.raises(TaskDeferred) as deferred:
        operator("sleep 30").execute(make_context(store=store))
    with pytest.raises(TaskDeferralTimeout):
        operator("sleep 30").resume_execution(
            "__fail__", {"error": "Trigger timeout"}, make_context(store=store, try_number=1)
        )
    assert settled(backend, deferred.value.trigger.ref, timeout=20).state == "STOPPED"

    op = operator("sleep 30")
    context = make_context(run_id="run-deadline")
    with pytest.raises(TaskDeferred) as deferred:
        op.execute(context)
    trigger = deferred.value.trigger
    trigger.deadline = time.time()  # as if max_runtime plus slack had passed
    with pytest.raises(TrainingJobFailed, match="passed its deadline"):
        resume(op, context, deferred.value)
    assert settled(backend, trigger.ref, timeout=20).state == "STOPPED"


def test_not_deferrable_a_kill_stops_the_job(host_a):
    backend, _, _ = host_a
    op = TrainModelOperator(
        task_id="train",
        backend="onprem",
        backend_conn_id=CONN,
        spec={"command": ["sleep", "30"]},
        deferrable=False,
        poll_interval=0.1,
    )
    threading.Timer(2.0, op.on_kill).start()
    context = make_context()
    with pytest.raises(AirflowException, match="killed"):
        op.execute(context)
    assert (
        settled(backend, JobRef.from_dict(context["task_state_store"].get(STATE_KEY)), timeout=20).state
        == "STOPPED"
    )
