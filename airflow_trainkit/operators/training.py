"""``TrainModelOperator``: run one training job on any backend, from one spec; and the family base
that owns the training backend of the training operators and sensor."""

from __future__ import annotations

import time
from datetime import timedelta
from functools import cached_property
from typing import TYPE_CHECKING, Any

from typing_extensions import override

from airflow_trainkit._compat import AirflowException, BaseOperator, default_deferrable
from airflow_trainkit.durations import parse_duration
from airflow_trainkit.links.training import CONSOLE_URL_XCOM_KEY, TrainingJobConsoleLink
from airflow_trainkit.training.lifecycle import DEADLINE_SLACK_SECONDS, STATE_KEY
from airflow_trainkit.vocabulary import renamed_parameter

# The trigger's deadline_reason when this try's execution_timeout, not the job's limit, ends the wait.
EXECUTION_TIMEOUT = "execution_timeout"
# How long after execution_timeout the deferral's own timeout fires if the trigger has not (the
# triggerer is down): the scheduler then resumes the task with "__fail__" and the job is stopped.
EXECUTION_TIMEOUT_GRACE_SECONDS = 30.0

__all__ = ["STATE_KEY", "TrainModelOperator", "TrainingBackendMixin"]

if TYPE_CHECKING:
    from collections.abc import Sequence

    from airflow.sdk import Context

    from airflow_trainkit.training.backend import JobRef, JobStatus, TrainingBackend
    from airflow_trainkit.training.lifecycle import JobLifecycle
    from airflow_trainkit.training.spec import TrainingJobSpec
    from airflow_trainkit.triggers.training import TrainingJobEvent


class TrainingBackendMixin:
    """The family base of the training operators and sensor: it owns their training backend.

    ``backend`` names it and ``backend_conn_id`` is its connection (both templated); the backend
    object is made on first use, after rendering, and kept for the task's run, as the registry
    operators keep their MLflow hook.
    """

    backend: str
    backend_conn_id: str | None

    def _name_backend(self, backend: str, backend_conn_id: str | None, conn_id: str | None) -> None:
        """Assign ``backend`` and its connection; ``conn_id`` is the connection's deprecated name."""
        self.backend = backend
        self.backend_conn_id = renamed_parameter(
            type(self).__name__, "conn_id", "backend_conn_id", conn_id, backend_conn_id
        )

    @cached_property
    def training_backend(self) -> TrainingBackend:
        """The registered backend ``backend``, on ``backend_conn_id`` (its module imported now)."""
        from airflow_trainkit.training.backend import get_backend

        return get_backend(self.backend)(self.backend_conn_id)


def resolve_deferrable(deferrable: bool | None) -> bool:
    """``deferrable`` as given, else ``True`` unless the deployment sets ``[operators] default_deferrable``."""
    return default_deferrable() if deferrable is None else deferrable


class TrainModelOperator(TrainingBackendMixin, BaseOperator):
    """Train a model on ``backend`` as described by ``spec``; return a small JSON result.

    Deferrable by default: the job runs on its own and the task waits in the triggerer. A retry
    re-attaches to the job it started (found by a deterministic name), returns the result of one
    that already succeeded, and starts a new attempt only after a failure. The job is stopped on
    every exit path: a kill, a task marked failed while deferred, an execution or deferral timeout.

    :param backend: a registered backend name: ``"onprem"``, ``"sagemaker"``, ``"vertex_ai"``. (templated)
    :param spec: a :class:`~airflow_trainkit.training.spec.TrainingJobSpec` or the same as a dict. (templated)
    :param backend_conn_id: the backend's connection; ``None`` for its default. (templated)
    :param deferrable: wait in the triggerer instead of holding a worker slot. ``None`` (default):
        ``True``, unless the deployment sets Airflow's ``[operators] default_deferrable``.
    :param poll_interval: time between status calls, as seconds or a duration such as ``"1m"``;
        ``None`` for the backend's default. (templated)
    :param log_tail_lines: how many of the job's last log lines to copy into the task log. (templated)
    :param conn_id: deprecated name of ``backend_conn_id``.
    """

    template_fields: Sequence[str] = ("backend", "spec", "backend_conn_id", "poll_interval", "log_tail_lines")
    template_fields_renderers = {"spec": "json"}
    ui_color = "#d5f5e3"
    operator_extra_links = (TrainingJobConsoleLink(),)

    def __init__(
        self,
        *,
        backend: str = "onprem",
        spec: TrainingJobSpec | dict[str, Any],
        backend_conn_id: str | None = None,
        deferrable: bool | None = None,
        poll_interval: float | str | None = None,
        log_tail_lines: int | str = 50,
        conn_id: str | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self._name_backend(backend, backend_conn_id, conn_id)
        self.spec = spec.to_dict() if hasattr(spec, "to_dict") else spec
        self.deferrable = resolve_deferrable(deferrable)
        self.poll_interval = poll_interval
        self.log_tail_lines = log_tail_lines
        self._killed = False

    # -- the lifecycle -------------------------------------------------------------------------

    @override
    def execute(self, context: Context) -> dict[str, Any]:
        lifecycle = self._lifecycle(context)
        lifecycle.check()
        return self._start(context, lifecycle)

    def execute_complete(
        self, context: Context, event: dict[str, Any], job: dict[str, Any] | None = None
    ) -> dict[str, Any]:
        """Called when the trigger fires; ``job`` is the :class:`JobRef` ``execute`` deferred with.

        Airflow 3.3's ``dag.test()`` resumes with ``event`` only, so ``job`` falls back to the
        record the event carries. A malformed event stops the job and fails the task with a
        ``ValueError`` naming what is wrong.
        """
        from airflow_trainkit.exceptions import TrainingJobFailed
        from airflow_trainkit.training.backend import JobStatus
        from airflow_trainkit.triggers.training import JobDone

        lifecycle = self._lifecycle(context)
        ref = self._ref_of(lifecycle, event, job)
        outcome = self._read_event(lifecycle, ref, event)
        if isinstance(outcome, JobDone):
            return self._finish(context, lifecycle, ref, JobStatus.from_dict(outcome.job_status()))
        if outcome.status == "timeout" and outcome.reason == EXECUTION_TIMEOUT:
            self._fail_on_execution_timeout(lifecycle, ref)
        lifecycle.stop(ref, reason=f"trigger ended with {outcome.status}: {outcome.message}")
        lifecycle.log_tail(ref, self._tail_lines())
        raise TrainingJobFailed(
            outcome.message,
            backend=lifecycle.backend.name,
            job_id=ref.job_name,
            state=outcome.status.upper(),
        )

    @staticmethod
    def _ref_of(lifecycle: JobLifecycle, event: Any, job: dict[str, Any] | None) -> JobRef:
        """The job the trigger waited for: the deferral's record, else the event's, else the stored one."""
        from airflow_trainkit.training.backend import JobRef

        sent = event if isinstance(event, dict) else {}
        stored = lifecycle.records.load()
        record = job or sent.get("ref") or (stored.to_dict() if stored else None)
        return JobRef.from_dict(record or {"backend": lifecycle.backend.name, "job_name": sent.get("job_id")})

    @staticmethod
    def _read_event(lifecycle: JobLifecycle, ref: JobRef, event: Any) -> TrainingJobEvent:
        """The trigger's event checked in shape; a malformed one stops the job, which nobody watches then."""
        from airflow_trainkit.triggers.training import read_event

        try:
            return read_event(event)
        except ValueError as problem:
            lifecycle.stop(ref, reason=f"the trigger's event was malformed: {problem}")
            raise

    @override
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

    @override
    def on_kill(self) -> None:
        # Runs inside the SIGTERM handler, and execute() would carry on afterwards: only raise
        # the flag here; the wait loop decides whether to stop the job and then fails the task.
        self._killed = True

    # -- starting and waiting ------------------------------------------------------------------

    def _lifecycle(self, context: Context) -> JobLifecycle:
        from airflow_trainkit.training.identity import JobIdentity
        from airflow_trainkit.training.lifecycle import JobLifecycle, TaskStateRecords
        from airflow_trainkit.training.spec import TrainingJobSpec

        spec = TrainingJobSpec.parse(self.spec)
        poll_interval = self._poll_seconds()
        self._tail_lines()  # refuse a bad value before anything starts
        return JobLifecycle(
            self.training_backend,
            spec,
            JobIdentity.from_context(context),
            TaskStateRecords.from_context(context),
            log=self.log,
            poll_interval=poll_interval,
        )

    def _poll_seconds(self) -> float | None:
        """``poll_interval`` (rendered) in seconds; ``None`` for the backend's default."""
        if self.poll_interval is None or self.poll_interval == "":
            return None
        return parse_duration(self.poll_interval, field="poll_interval")

    def _tail_lines(self) -> int:
        """``log_tail_lines`` (rendered) as a count of lines."""
        value = self.log_tail_lines
        if isinstance(value, str) and value.strip().isdigit():
            return int(value)
        if isinstance(value, bool) or not isinstance(value, int) or value < 0:
            raise ValueError(f"log_tail_lines must be a whole number of lines, 0 or more, got {value!r}")
        return value

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
                conn_id=self.backend_conn_id,
                deadline=deadline,
                poll_interval=self._poll_seconds(),
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
            conn_id=self.backend_conn_id,
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
        result = lifecycle.finish(ref, status, self._tail_lines())
        if result is None:  # the job this try adopted was stopped by an earlier try: train anew
            return self._start(context, lifecycle)
        context["ti"].xcom_push(key=CONSOLE_URL_XCOM_KEY, value=status.console_url or "")
        return result
