"""TrainModelOperator's lifecycle against the real on-prem backend and short real commands."""

from __future__ import annotations

import json
import re
import time

import pytest
from trainkit_testing import TaskStateStore, first_trigger_event, make_context, resume, settled

from airflow_trainkit._compat import AirflowException, TaskDeferralTimeout, TaskDeferred
from airflow_trainkit.backends.onprem import OnPremBackend
from airflow_trainkit.exceptions import TrainingJobFailed
from airflow_trainkit.operators.training import STATE_KEY, TrainModelOperator
from airflow_trainkit.vocabulary import TrainkitDeprecationWarning


def operator(script: str, **spec_extra) -> TrainModelOperator:
    return TrainModelOperator(
        task_id="train",
        backend="onprem",
        spec={"command": ["sh", "-c", script], **spec_extra},
        poll_interval=0.05,
    )


def test_defers_then_returns_a_small_json_result(onprem_root):
    op = operator('echo \'{"auc_roc": 0.9}\' > "$TRAINKIT_OUTPUT_URI/metrics.json"; echo trained')
    context = make_context()
    with pytest.raises(TaskDeferred) as deferred:
        op.execute(context)
    assert deferred.value.method_name == "execute_complete"
    assert deferred.value.timeout.total_seconds() > 24 * 3600  # the spec's default limit plus slack
    result = resume(op, context, deferred.value)
    assert json.loads(json.dumps(result)) == result
    assert result["backend"] == "onprem" and result["state"] == "SUCCEEDED" and result["attempt"] == 1
    assert result["job_id"].startswith("tk-dag-train-") and result["job_id"].endswith("-a1")
    assert result["metrics"] == {"auc_roc": 0.9}
    assert result["billable_seconds"] >= 0 and result["started_at"] and result["ended_at"]
    assert context["task_state_store"].get(STATE_KEY)["returned"] is True


def test_a_retry_reattaches_to_the_running_job_instead_of_starting_another(onprem_root):
    op = operator("sleep 2; echo done")
    store = TaskStateStore()
    with pytest.raises(TaskDeferred) as first:
        op.execute(make_context(store=store, try_number=1))
    # A new try of the same task instance (a worker restart, or a retry) while the job runs:
    retry_context = make_context(store=store, try_number=2)
    with pytest.raises(TaskDeferred) as second:
        operator("sleep 2; echo done").execute(retry_context)
    assert second.value.trigger.job_id == first.value.trigger.job_id
    assert [p.name for p in onprem_root.iterdir() if p.is_dir()] == [first.value.trigger.job_id]
    assert resume(op, retry_context, second.value)["state"] == "SUCCEEDED"


def test_a_retry_without_the_store_finds_the_job_by_its_name(onprem_root):
    with pytest.raises(TaskDeferred) as first:
        operator("sleep 2").execute(make_context())
    with pytest.raises(TaskDeferred) as second:
        operator("sleep 2").execute(make_context())  # fresh store: only the name finds the job
    assert second.value.trigger.job_id == first.value.trigger.job_id


def test_a_retry_after_success_returns_that_result_and_a_clear_trains_anew(onprem_root):
    store = TaskStateStore()
    op = operator("echo once")
    context = make_context(store=store)
    with pytest.raises(TaskDeferred) as deferred:
        op.execute(context)
    job_id = deferred.value.trigger.job_id
    settled(OnPremBackend(), job_id)
    # The task died before returning (say, the worker was lost): the retry returns the result.
    store.values[STATE_KEY]["returned"] = False
    result = operator("echo once").execute(make_context(store=store, try_number=2))
    assert result["job_id"] == job_id and result["state"] == "SUCCEEDED"
    # The task returned, and the user clears it: a new attempt trains again.
    with pytest.raises(TaskDeferred) as cleared:
        operator("echo once").execute(make_context(store=store, try_number=3))
    assert cleared.value.trigger.job_id.endswith("-a2")


def test_a_failed_job_fails_the_task_with_exit_code_and_log_then_a_retry_starts_attempt_two(onprem_root):
    store = TaskStateStore()
    op = operator("echo 'CUDA out of memory' >&2; exit 7")
    context = make_context(store=store)
    with pytest.raises(TaskDeferred) as deferred:
        op.execute(context)
    with pytest.raises(TrainingJobFailed) as failed:
        resume(op, context, deferred.value)
    assert failed.value.state == "FAILED" and failed.value.reason == "exit code 7"
    assert "exit code 7" in str(failed.value) and "CUDA out of memory" in str(failed.value)
    with pytest.raises(TaskDeferred) as retry:
        operator("exit 0").execute(make_context(store=store, try_number=2))
    assert retry.value.trigger.job_id.endswith("-a2")


def test_a_job_stopped_from_outside_never_succeeds(onprem_root):
    op = operator("sleep 30")
    context = make_context()
    with pytest.raises(TaskDeferred) as deferred:
        op.execute(context)
    OnPremBackend().stop(deferred.value.trigger.job_id, reason="someone pressed stop")
    with pytest.raises(TrainingJobFailed, match="ended STOPPED: someone pressed stop"):
        resume(op, context, deferred.value)


def test_a_job_stopped_by_an_earlier_try_is_replaced_not_failed(onprem_root):
    """A clear of a deferred task races with the old trigger's on_kill: the new try trains anew."""
    store = TaskStateStore()
    with pytest.raises(TaskDeferred) as old:
        operator("sleep 30").execute(make_context(store=store, try_number=1))
    new_context = make_context(store=store, try_number=2)
    new_op = operator("sleep 30")
    with pytest.raises(TaskDeferred) as reattached:
        new_op.execute(new_context)
    assert reattached.value.kwargs["job"]["adopted"] is True
    OnPremBackend().stop(old.value.trigger.job_id, reason="Airflow task was set to failed while deferred")
    with pytest.raises(TaskDeferred) as replaced:
        resume(new_op, new_context, reattached.value)
    assert replaced.value.trigger.job_id.endswith("-a2")
    OnPremBackend().stop(replaced.value.trigger.job_id)


def test_deferral_timeout_stops_the_job(onprem_root):
    store = TaskStateStore()
    with pytest.raises(TaskDeferred) as deferred:
        operator("sleep 30").execute(make_context(store=store))
    job_id = deferred.value.trigger.job_id
    fresh = operator("sleep 30")  # the scheduler resumes the task in a new process
    with pytest.raises(TaskDeferralTimeout):
        fresh.resume_execution(
            "__fail__", {"error": "Trigger timeout"}, make_context(store=store, try_number=1)
        )
    assert settled(OnPremBackend(), job_id, timeout=20).state == "STOPPED"


def test_the_spec_deadline_stops_a_job_that_overruns(onprem_root):
    op = operator("sleep 30")
    context = make_context()
    with pytest.raises(TaskDeferred) as deferred:
        op.execute(context)
    trigger = deferred.value.trigger
    trigger.deadline = time.time()  # as if max_runtime plus slack had passed
    with pytest.raises(TrainingJobFailed, match="passed its deadline"):
        op.execute_complete(
            context, event=first_trigger_event(deferred.value.trigger), **deferred.value.kwargs
        )
    assert settled(OnPremBackend(), trigger.job_id, timeout=20).state == "STOPPED"


def test_not_deferrable_waits_in_the_worker_and_a_kill_stops_the_job(onprem_root):
    import threading

    op = TrainModelOperator(
        task_id="train", spec={"command": ["sleep", "30"]}, deferrable=False, poll_interval=0.05
    )
    threading.Timer(1.5, op.on_kill).start()  # SIGTERM's handler runs on_kill while execute() waits
    context = make_context()
    with pytest.raises(AirflowException, match="killed"):
        op.execute(context)
    job_id = context["task_state_store"].get(STATE_KEY)["job_name"]
    assert settled(OnPremBackend(), job_id, timeout=20).state == "STOPPED"


def test_not_deferrable_returns_the_result(onprem_root):
    op = TrainModelOperator(task_id="train", spec={"command": ["true"]}, deferrable=False, poll_interval=0.05)
    assert op.execute(make_context())["state"] == "SUCCEEDED"


@pytest.mark.parametrize(
    ("backend", "spec", "message"),
    [
        (
            "onprem",
            {"command": ["true"], "max_runtime": 0},
            "spec.max_runtime: must be a positive duration, got 0",
        ),
        (
            "onprem",
            {"command": ["true"], "max_runtime": -1},
            "spec.max_runtime: must be a positive duration, got -1",
        ),
        ("nosuch", {"command": ["true"]}, "backend 'nosuch' is not known"),
        (
            "onprem",
            {"command": ["true"], "accelerator": "B300:1"},
            "spec.accelerator: unknown accelerator 'B300:1'",
        ),
        (
            "onprem",
            {"command": ["true"], "spot": True},
            "spec.checkpoint_uri: required when spec.spot is true",
        ),
        (
            "onprem",
            {"command": "python train.py"},
            "spec.command: Input should be a valid list, got 'python train.py'",
        ),
        (
            "onprem",
            {"command": ["true"], "inputs": {"train": "/no/such.csv"}},
            "spec.inputs['train']: no such file",
        ),
        (
            "onprem",
            {"command": ["true"], "accelerator": "gpu:1"},
            "spec.accelerator 'gpu:1' asks for 1 GPU(s)",
        ),
    ],
)
def test_bad_input_fails_before_any_job_starts(onprem_root, backend, spec, message):
    op = TrainModelOperator(task_id="train", backend=backend, spec=spec)
    with pytest.raises(ValueError) as err:
        op.execute(make_context())
    assert message in str(err.value)
    assert not onprem_root.exists() or not any(onprem_root.iterdir())


def test_constructor_only_assigns():
    op = TrainModelOperator(task_id="t", backend="{{ params.backend }}", spec={"command": "{{ not a list }}"})
    assert op.backend == "{{ params.backend }}"


# -- parameters: the backend's connection, deferrable, templating ------------------------------

DEFERRABLE_ENV = "AIRFLOW__OPERATORS__DEFAULT_DEFERRABLE"


def test_backend_conn_id_names_the_backends_connection_and_the_backend_is_made_once():
    op = TrainModelOperator(
        task_id="t", backend="onprem", backend_conn_id="trainkit_onprem_x", spec={"command": ["x"]}
    )
    assert op.backend_conn_id == "trainkit_onprem_x"
    assert op.training_backend.conn_id == "trainkit_onprem_x"
    assert op.training_backend is op.training_backend


def test_conn_id_still_works_with_a_deprecation_warning():
    with pytest.warns(
        TrainkitDeprecationWarning,
        match=r"TrainModelOperator\(conn_id=\.\.\.\) is deprecated; use backend_conn_id",
    ):
        op = TrainModelOperator(task_id="t", conn_id="trainkit_onprem_x", spec={"command": ["x"]})
    assert op.backend_conn_id == "trainkit_onprem_x"
    with pytest.raises(ValueError, match="pass backend_conn_id only"):
        TrainModelOperator(task_id="t", conn_id="a", backend_conn_id="b", spec={"command": ["x"]})


def test_deferrable_by_default_unless_the_deployment_says_otherwise(monkeypatch):
    for tail in ("", "_CMD", "_SECRET"):
        monkeypatch.delenv(DEFERRABLE_ENV + tail, raising=False)
    assert TrainModelOperator(task_id="t", spec={"command": ["x"]}).deferrable is True
    monkeypatch.setenv(DEFERRABLE_ENV, "false")
    assert TrainModelOperator(task_id="t", spec={"command": ["x"]}).deferrable is False
    assert TrainModelOperator(task_id="t", spec={"command": ["x"]}, deferrable=True).deferrable is True


def test_rendered_poll_interval_and_log_tail_lines_are_read_as_a_duration_and_a_count(onprem_root):
    op = TrainModelOperator(
        task_id="train",
        spec={"command": ["echo", "hi"]},
        deferrable=False,
        poll_interval="0.05",
        log_tail_lines="5",
    )
    assert op.execute(make_context())["state"] == "SUCCEEDED"


@pytest.mark.parametrize(
    ("params", "message"),
    [
        ({"poll_interval": "soon"}, "poll_interval must be seconds or a duration such as"),
        ({"log_tail_lines": "many"}, "log_tail_lines must be a whole number of lines, 0 or more, got 'many'"),
    ],
)
def test_bad_rendered_settings_fail_before_any_job_starts(onprem_root, params, message):
    op = TrainModelOperator(task_id="train", spec={"command": ["true"]}, **params)
    with pytest.raises(ValueError, match=re.escape(message)):
        op.execute(make_context())
    assert not onprem_root.exists() or not any(onprem_root.iterdir())


@pytest.mark.parametrize(
    ("event", "message"),
    [
        ({}, "trigger event: event.status must be one of 'done', 'timeout', 'error', got None"),
        ({"status": "finished"}, "event.status must be one of 'done', 'timeout', 'error', got 'finished'"),
        ({"status": "done"}, "trigger event: event.job: required, missing"),
        (
            {"status": "done", "job": {"job_id": "j", "state": "Completed"}},
            "event.job.phase: required, missing",
        ),
        ({"status": "timeout", "reason": "deadline"}, "event.message: required, missing"),
    ],
)
def test_a_malformed_event_stops_the_job_and_names_what_is_wrong(onprem_root, event, message):
    op = operator("sleep 30")
    context = make_context()
    with pytest.raises(TaskDeferred) as deferred:
        op.execute(context)
    with pytest.raises(ValueError, match=re.escape(message)):
        op.execute_complete(context, event, **deferred.value.kwargs)
    assert settled(OnPremBackend(), deferred.value.trigger.job_id, timeout=20).state == "STOPPED"
