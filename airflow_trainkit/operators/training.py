"""``TrainModelOperator``: run one training job on any backend, from one spec."""

from __future__ import annotations

import time
from datetime import timedelta
from typing import TYPE_CHECKING, Any

from airflow_trainkit._compat import AirflowException, BaseOperator
from airflow_trainkit.links.training import CONSOLE_URL_XCOM_KEY, TrainingJobConsoleLink
from airflow_trainkit.training.lifecycle import DEADLINE_SLACK_SECONDS, STATE_KEY

# The trigger's deadline_reason when this try's execution_timeout, not the job's limit, ends the wait.
EXECUTION_TIMEOUT = "execution_timeout"
# How long after execution_timeout the deferral's own timeout fires if the trigger has not (the
# triggerer is down): the scheduler then resumes the task with "__fail__" and the job is stopped.
EXECUTION_TIMEOUT_GRACE_SECONDS = 30.0

__all__ = ["STATE_KEY", "TrainModelOperator"]

if TYPE_CHECKING:
    from collections.abc import Sequence

    from airflow.sdk import Context

    from airflow_trainkit.training.backend import JobRef, JobStatus
    from airflow_trainkit.training.lifecycle import JobLifecycle
    from airflow_trainkit.training.spec import TrainingJobSpec


class TrainModelOperator(BaseOperator):
    """Train a model on ``backend`` as described by ``spec``; return a small JSON result.

    Deferrable by default: the job runs on its own and the task waits in the triggerer. A retry
    re-attaches to the job it started (found by a deterministic name), returns the result of one
    that already succeeded, and starts a new attempt only after a failure. The job is stopped on
    every exit path: a kill, a task marked failed while deferred, an execution or deferral timeout.

    :param backend: a registered backend name: ``"onprem"``, ``"sagemaker"``, ``"vertex_ai"``. (templated)
    :param spec: a :class:`~airflow_trainkit.training.spec.TrainingJobSpec` or the same as a dict. (templated)
    :param conn_id: the backend's connection; ``None`` for its default. (templated)
    :param deferrable: wait in the triggerer (default) instead of holding a worker slot.
    :param poll_interval: seconds between status calls; ``None`` for the backend's default.
    :param log_tail_lines: how many of the job's last log lines to copy into the task log.
    """

    template_fields: Sequence[str] = ("backend", "spec", "conn_id")
    template_fields_renderers = {"spec": "json"}
    ui_color = "#d5f5e3"
    operator_extra_links = (TrainingJobConsoleLink(),)

    def __init__(
        self,
        *,
        backend: str = "onprem",
        spec: TrainingJobSpec | dict[str, Any],
        conn_id: str | None = None,
        deferrable: bool = True,
        poll_interval: float | None = None,
        log_tail_lines: int = 50,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.backend = backend
        self.spec = spec.to_dict() if hasattr(spec, "to_dict") else spec
        self.conn_id = conn_id
        self.deferrable = deferrable
        self.poll_interval = poll_interval
        self.log_tail_lines = log_tail_lines
        self._killed = False

    # -- the lifecycle -------------------------------------------------------------------------

    def execute(self, context: Context) -> dict[str, Any]:
        lifecycle = self._lifecycle(context)
        lifecycle.check()
        return self._start(context, lifecycle)

    def execute_complete(
        self, context: Context, event: dict[str, Any], job: dict[str, Any] | None = None
    ) -> dict[str, Any]:
        """Called when the trigger fires; ``job`` is the :class:`JobRef` ``execute`` deferred with.

        Airflow 3.3's ``dag.test()`` resumes with ``event`` only, so ``job`` falls back to the
        record the event carries.
        """
        from airflow_trainkit.exceptions import TrainingJobFailed
        from airflow_trainkit.training.backend import JobRef, JobStatus

        lifecycle = self._lifecycle(context)
        stored = lifecycle.records.load()
        record = job or event.get("ref") or (stored.to_dict() if stored else None)
        ref = JobRef.from_dict(record or {"backend": lifecycle.backend.name, "job_name": event.get("job_id")})
        if event.get("status") == "timeout" and event.get("reason") == EXECUTION_TIMEOUT:
            self._fail_on_execution_timeout(lifecycle, ref)
        if event.get("status") != "done":
            lifecycle.stop(ref, reason=f"trigger ended with {event.get('status')}: {event.get('message')}")
            lifecycle.log_tail(ref, self.log_tail_lines)
            raise TrainingJobFailed(
                str(event.get("message")),
                backend=lifecycle.backend.name,
                job_id=ref.job_name,
                state=str(event.get("status")).upper(),
            )
        return self._finish(context, lifecycle, ref, JobStatus.from_dict(event["job"]))

    def resume_execution(self, next_method: str, next_kwargs: dict[str, Any] | None, context: Context) -> Any:
        # "__fail__" comes from a deferral timeout or a crashed trigger; no on_kill runs for
        # those, so this fresh process stops the job before the task fails.
        if next_method == "__fail__":
            from airflow_trainkit.training.lifecycle import execution_deadline

            lifecycle = self._lifecycle(context)
            ref = lifecycle.records.load()
            cap = execution_deadline(context, self.execution_timeout)
            if ref and cap is not None and time.time() >= cap:
                self._fail_on_execution_timeout(lifecycle, ref)
            if ref:
                lifecycle.stop(ref, reason="deferral timed out or the trigger failed")
        return super().resume_execution(next_method, next_kwargs, context)

    def _fail_on_execution_timeout(self, lifecycle: JobLifecycle, ref: JobRef) -> None:
        """Stop the job and fail the try as Airflow fails a running task that ran out of time."""
        from airflow_trainkit._compat import AirflowTaskTimeout

        message = (
            f"execution_timeout ({self.execution_timeout}) passed while the task was deferred; "
            f"{ref.backend} job {ref.job_name} was asked to stop"
        )
        lifecycle.stop(ref, reason=f"execution_timeout ({self.execution_timeout}) passed")
        self.log.error("%s", message)
        raise AirflowTaskTimeout(message)

    def on_kill(self) -> None:
        # Runs inside the SIGTERM handler, and execute() would carry on afterwards: only raise
        # the flag here; the wait loop decides whether to stop the job and then fails the task.
        self._killed = True

    # -- starting and waiting ------------------------------------------------------------------

    def _lifecycle(self, context: Context) -> JobLifecycle:
        from airflow_trainkit.training.backend import get_backend
        from airflow_trainkit.training.identity import JobIdentity
        from airflow_trainkit.training.lifecycle import JobLifecycle, TaskStateRecords
        from airflow_trainkit.training.spec import TrainingJobSpec

        return JobLifecycle(
            get_backend(self.backend)(self.conn_id),
            TrainingJobSpec.parse(self.spec),
            JobIdentity.from_context(context),
            TaskStateRecords.from_context(context),
            log=self.log,
            poll_interval=self.poll_interval,
        )

    def _start(self, context: Context, lifecycle: JobLifecycle) -> dict[str, Any]:
        ref, status = lifecycle.find_or_submit()
        # The console link works while the job runs; "" keeps the link quiet where there is none.
        context["ti"].xcom_push(key=CONSOLE_URL_XCOM_KEY, value=status.console_url or "")
        if status.phase.terminal:
            return self._finish(context, lifecycle, ref, status)
        if self.deferrable:
            self._defer(context, lifecycle, ref)
        return self._finish(context, lifecycle, ref, self._wait_here(context, lifecycle, ref))

    def _defer(self, context: Context, lifecycle: JobLifecycle, ref: JobRef) -> None:
        from airflow_trainkit.training.lifecycle import execution_deadline
        from airflow_trainkit.triggers.training import TrainingJobTrigger

        deadline = float(ref.deadline or time.time())
        slack = float(DEADLINE_SLACK_SECONDS)
        reason = "deadline"
        # Airflow does not enforce execution_timeout while deferred: this try's own limit caps the
        # trigger's deadline (never the job's record, so a retry gets its own execution_timeout).
        cap = execution_deadline(context, self.execution_timeout)
        if cap is not None and cap < deadline:
            deadline, reason = cap, EXECUTION_TIMEOUT
            slack = 2 * lifecycle.poll_interval + EXECUTION_TIMEOUT_GRACE_SECONDS
        self.defer(
            trigger=TrainingJobTrigger(
                backend=ref.backend,
                job=ref.to_dict(),
                conn_id=self.conn_id,
                deadline=deadline,
                poll_interval=self.poll_interval,
                identity=lifecycle.identity.to_dict(),
                deadline_reason=reason,
            ),
            method_name="execute_complete",
            kwargs={"job": ref.to_dict()},
            # A backstop behind the trigger's own deadline; resume_execution stops the job.
            timeout=timedelta(seconds=max(deadline - time.time(), 0) + slack),
        )

    def _wait_here(self, context: Context, lifecycle: JobLifecycle, ref: JobRef) -> JobStatus:
        """The non-deferrable wait, in the worker, under the same wait policy as the trigger.

        A watchdog process stops the job if this process dies without a word (SIGKILL) on its
        last try; every other way out of the wait is handled here.
        """
        from airflow_trainkit.exceptions import TrainingJobFailed
        from airflow_trainkit.home import trainkit_home
        from airflow_trainkit.training import watchdog
        from airflow_trainkit.training.lifecycle import retry_left
        from airflow_trainkit.training.waiting import WaitDeadlinePassed, WaitInterrupted

        guard = watchdog.arm(
            ref,
            conn_id=self.conn_id,
            retry_left=retry_left(context),
            log_dir=str(trainkit_home() / "watchdog"),
        )
        try:
            return lifecycle.wait(ref, interrupted=lambda: self._killed)
        except WaitInterrupted:
            self._on_killed(lifecycle, ref)
            raise
        except WaitDeadlinePassed:
            lifecycle.stop(ref, reason="deadline passed")
            raise TrainingJobFailed(
                f"{ref.backend} job {ref.job_name} passed its deadline and was asked to stop",
                backend=ref.backend,
                job_id=ref.job_name,
                state="TIMEOUT",
            ) from None
        except BaseException:
            # execution_timeout, or an error the wait policy gave up on: the job must not run on alone.
            if not self._killed:
                lifecycle.stop(ref, reason="the Airflow task stopped waiting")
            raise
        finally:
            if guard is not None:
                guard.disarm()

    def _on_killed(self, lifecycle: JobLifecycle, ref: JobRef) -> None:
        from airflow_trainkit._compat import task_state_now
        from airflow_trainkit.triggers.training import WILL_RUN_AGAIN

        ident = lifecycle.identity
        try:
            state = task_state_now(ident.dag_id, ident.run_id, ident.task_id, ident.map_index)
        except Exception:
            state = "unknown"
        if state in WILL_RUN_AGAIN:
            self.log.info(
                "Task killed and will run again (%s): leaving job %s to re-attach to", state, ref.job_name
            )
        else:
            lifecycle.stop(ref, reason="the Airflow task was killed")
        raise AirflowException(f"Task was killed while waiting for {ref.backend} job {ref.job_name}")

    def _finish(
        self, context: Context, lifecycle: JobLifecycle, ref: JobRef, status: JobStatus
    ) -> dict[str, Any]:
        result = lifecycle.finish(ref, status, self.log_tail_lines)
        if result is None:  # the job this try adopted was stopped by an earlier try: train anew
            return self._start(context, lifecycle)
        context["ti"].xcom_push(key=CONSOLE_URL_XCOM_KEY, value=status.console_url or "")
        return result
