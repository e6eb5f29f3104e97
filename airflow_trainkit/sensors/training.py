"""``TrainingJobSensor``: wait for a training job that something else started."""

from __future__ import annotations

import time
from collections.abc import Sequence
from datetime import timedelta
from typing import TYPE_CHECKING, Any

from typing_extensions import override

from airflow_trainkit._compat import BaseSensorOperator
from airflow_trainkit.operators.training import TrainingBackendMixin, resolve_deferrable

if TYPE_CHECKING:
    from airflow.sdk import Context

    from airflow_trainkit.training.backend import JobStatus, TrainingBackend
    from airflow_trainkit.training.waiting import WaitPolicy


class TrainingJobSensor(TrainingBackendMixin, BaseSensorOperator):
    """Wait until a training job, found by backend and job id, ends; fail unless it succeeded.

    The sensor never stops the job it watches: the job belongs to whoever started it.

    :param backend: backend name, e.g. ``"sagemaker"``. (templated)
    :param job_id: the backend's id of the job. (templated)
    :param backend_conn_id: the backend's connection; ``None`` for its default. (templated)
    :param deferrable: wait in the triggerer instead of poking from a worker. ``None`` (default):
        ``True``, unless the deployment sets Airflow's ``[operators] default_deferrable``.
    :param conn_id: deprecated name of ``backend_conn_id``.
    """

    template_fields: Sequence[str] = ("backend", "job_id", "backend_conn_id")

    def __init__(
        self,
        *,
        backend: str,
        job_id: str,
        backend_conn_id: str | None = None,
        deferrable: bool | None = None,
        conn_id: str | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self._name_backend(backend, backend_conn_id, conn_id)
        self.job_id = job_id
        self.deferrable = resolve_deferrable(deferrable)
        self._policy: WaitPolicy | None = None

    @override
    def execute(self, context: Context) -> Any:
        if not self.deferrable:
            return super().execute(context)
        from airflow_trainkit.training.identity import JobIdentity
        from airflow_trainkit.training.lifecycle import sensor_deadline
        from airflow_trainkit.triggers.training import TrainingJobTrigger

        backend = self.training_backend
        status = backend.describe(self.job_id)
        if status.phase.terminal:
            return self._result(backend, status)
        # The job the user named, with the handle the describe found (no second lookup in the trigger).
        ref = backend.ref(self.job_id).with_(handle=status.handle)
        deadline, reason = sensor_deadline(
            context, float(self.timeout) if self.timeout else None, self.execution_timeout
        )
        self.defer(
            trigger=TrainingJobTrigger(
                backend=backend.name,
                job=ref.to_dict(),
                conn_id=self.backend_conn_id,
                deadline=deadline,
                poll_interval=float(self.poke_interval),
                stop_on_kill=False,
                identity=JobIdentity.from_context(context).to_dict(),
                deadline_reason=reason,
            ),
            method_name="execute_complete",
            timeout=timedelta(seconds=max(deadline - time.time(), 0) + 60) if deadline else None,
        )

    @override
    def poke(self, context: Context) -> Any:
        from airflow_trainkit._compat import PokeReturnValue
        from airflow_trainkit.training.waiting import WaitPolicy

        backend = self.training_backend
        if self._policy is None:  # one per sensor object: it counts failed pokes in a row
            self._policy = WaitPolicy(interval=float(self.poke_interval), is_transient=backend.is_transient)
        status = self._policy.once(lambda: backend.describe(self.job_id))
        if status is None:
            return False
        if not status.phase.terminal:
            self.log.info("%s job %s is %s", backend.name, self.job_id, status.state)
            return False
        return PokeReturnValue(is_done=True, xcom_value=self._result(backend, status))

    def execute_complete(self, context: Context, event: dict[str, Any]) -> dict[str, Any]:
        """Called when the trigger fires: the job's result, or the failure the event reports.

        :raises ValueError: the event is malformed (naming what is missing or wrong).
        """
        from airflow_trainkit.exceptions import TrainingJobFailed
        from airflow_trainkit.training.backend import JobStatus
        from airflow_trainkit.training.lifecycle import fail_if_execution_timed_out
        from airflow_trainkit.triggers.training import JobDone, read_event

        outcome = read_event(event)
        backend = self.training_backend
        if isinstance(outcome, JobDone):
            return self._result(backend, JobStatus.from_dict(outcome.job_status()))
        if outcome.status == "timeout" and outcome.reason == "execution_timeout":
            fail_if_execution_timed_out(context, self.execution_timeout, f"waiting for job {self.job_id}")
        raise TrainingJobFailed(
            outcome.message, backend=backend.name, job_id=self.job_id, state=outcome.status.upper()
        )

    def _result(self, backend: TrainingBackend, status: JobStatus) -> dict[str, Any]:
        from airflow_trainkit.exceptions import TrainingJobFailed
        from airflow_trainkit.training.backend import JobPhase

        if status.phase != JobPhase.SUCCEEDED:
            tail = backend.log_tail(self.job_id, 20)
            raise TrainingJobFailed(
                f"{backend.name} job {self.job_id} ended {status.state}: {status.message or 'no reason given'}"
                + ("\nLast log lines:\n" + "\n".join(tail) if tail else ""),
                backend=backend.name,
                job_id=self.job_id,
                state=status.state,
                reason=status.message,
                log_tail=tail,
            )
        return backend.result(status)
