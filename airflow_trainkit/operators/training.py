"""``TrainModelOperator``: run one training job on any backend, from one spec."""

from __future__ import annotations

import time
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

from airflow_trainkit._compat import AirflowException, BaseOperator
from airflow_trainkit.links.training import CONSOLE_URL_XCOM_KEY, TrainingJobConsoleLink

if TYPE_CHECKING:
    from collections.abc import Sequence

    from airflow.sdk import Context

    from airflow_trainkit.training.backend import JobStatus, TrainingBackend
    from airflow_trainkit.training.identity import JobIdentity
    from airflow_trainkit.training.spec import TrainingJobSpec

# Key in Airflow 3.3's task_state_store; shared by every try of the task instance.
STATE_KEY = "trainkit_training_job"
# Added to the spec's own limit: time to provision, upload the model and report the end.
DEADLINE_SLACK_SECONDS = 600


class TrainModelOperator(BaseOperator):
    """Train a model on ``backend`` as described by ``spec``; return a small JSON result.

    Deferrable by default: the job runs on its own and the task waits in the triggerer. A retry
    re-attaches to the job it started (found by a deterministic name), returns the result of one
    that already succeeded, and starts a new attempt only after a failure. The job is stopped on
    every exit path: a kill, a task marked failed while deferred, an execution or deferral timeout.

    :param backend: ``"onprem"``, ``"sagemaker"``, ``"vertex_ai"``, ``"azure_ml"``. (templated)
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
        self._job: dict[str, Any] | None = None
        self._killed = False

    # -- the lifecycle -------------------------------------------------------------------------

    def execute(self, context: Context) -> dict[str, Any]:
        from airflow_trainkit.training.identity import JobIdentity
        from airflow_trainkit.training.spec import TrainingJobSpec

        spec = TrainingJobSpec.parse(self.spec)
        backend = self._get_backend()
        backend.validate(spec)
        identity = JobIdentity.from_context(context)
        job, status = self._attach_or_submit(context, backend, spec, identity)
        return self._wait(context, backend, spec, identity, job, status)

    def execute_complete(
        self, context: Context, event: dict[str, Any], job: dict[str, Any] | None = None
    ) -> dict[str, Any]:
        """Called when the trigger fires; ``job`` is what ``execute`` deferred with.

        Airflow 3.3's ``dag.test()`` resumes with ``event`` only, so ``job`` falls back to the
        task state store.
        """
        from airflow_trainkit.exceptions import TrainingJobFailed
        from airflow_trainkit.training.backend import JobStatus
        from airflow_trainkit.training.identity import JobIdentity
        from airflow_trainkit.training.spec import TrainingJobSpec

        spec = TrainingJobSpec.parse(self.spec)
        backend = self._get_backend()
        job = job or self._stored_job(context) or _job_from_event(backend.name, event)
        self._job = job
        if event.get("status") != "done":
            self._stop(backend, job["job_id"], reason=f"trigger ended with {event.get('status')}")
            self._log_tail(backend, job["job_id"])
            raise TrainingJobFailed(
                str(event.get("message")),
                backend=backend.name,
                job_id=job["job_id"],
                state=str(event.get("status")).upper(),
            )
        status = JobStatus.from_dict(event["job"])
        return self._finish(context, backend, spec, JobIdentity.from_context(context), job, status)

    def resume_execution(self, next_method: str, next_kwargs: dict[str, Any] | None, context: Context) -> Any:
        # "__fail__" comes from a deferral timeout or a crashed trigger; no on_kill runs for
        # those, so this fresh process stops the job before the task fails.
        if next_method == "__fail__":
            job = self._stored_job(context)
            if job:
                self._stop(
                    self._get_backend(), job["job_id"], reason="deferral timed out or the trigger failed"
                )
        return super().resume_execution(next_method, next_kwargs, context)

    def on_kill(self) -> None:
        # Runs inside the SIGTERM handler, and execute() would carry on afterwards: only raise
        # the flag here; the wait loop decides whether to stop the job and then fails the task.
        self._killed = True

    # -- finding, starting and waiting ---------------------------------------------------------

    def _get_backend(self) -> TrainingBackend:
        from airflow_trainkit.training.backend import get_backend

        return get_backend(self.backend)(self.conn_id)

    def _attach_or_submit(
        self, context: Context, backend: TrainingBackend, spec: TrainingJobSpec, identity: JobIdentity
    ) -> tuple[dict[str, Any], JobStatus]:
        """Re-attach to this task instance's job, or return its success, or start a new attempt."""
        from airflow_trainkit.training.backend import JobPhase

        record = self._stored_job(context)
        attempt = 1
        if record and record.get("backend") == backend.name:
            attempt = int(record["attempt"])
            if record.get("returned"):
                # The task already returned this job's result and runs again: it was cleared,
                # and a cleared training task trains anew.
                self.log.info(
                    "Job %s already gave this task its result; starting a new attempt", record["job_id"]
                )
                attempt += 1
        while True:
            job_id = identity.job_name(attempt, max_length=backend.max_job_name_length)
            status = backend.find(job_id)
            if status is None:
                self.log.info("Submitting %s job %s", backend.name, job_id)
                deadline = time.time() + spec.deadline_seconds + DEADLINE_SLACK_SECONDS
                job = {
                    "backend": backend.name,
                    "job_id": job_id,
                    "attempt": attempt,
                    "deadline": deadline,
                    "adopted": False,
                }
                self._remember(context, job)
                status = backend.submit(spec, job_id)
                break
            if status.phase == JobPhase.SUCCEEDED or status.phase.active:
                self.log.info("Re-attaching to %s job %s (%s)", backend.name, job_id, status.state)
                deadline = _deadline_of(record, job_id, status, spec)
                job = {
                    "backend": backend.name,
                    "job_id": job_id,
                    "attempt": attempt,
                    "deadline": deadline,
                    "adopted": True,
                }
                self._remember(context, job)
                break
            self.log.info(
                "%s job %s ended %s; trying attempt %d", backend.name, job_id, status.state, attempt + 1
            )
            attempt += 1
        self._job = job
        # The console link works while the job runs; "" keeps the link quiet where there is none.
        context["ti"].xcom_push(key=CONSOLE_URL_XCOM_KEY, value=status.console_url or "")
        return job, status

    def _wait(
        self,
        context: Context,
        backend: TrainingBackend,
        spec: TrainingJobSpec,
        identity: JobIdentity,
        job: dict[str, Any],
        status: JobStatus,
    ) -> dict[str, Any]:
        from airflow_trainkit.triggers.training import TrainingJobTrigger

        if status.phase.terminal:
            return self._finish(context, backend, spec, identity, job, status)
        if self.deferrable:
            self.defer(
                trigger=TrainingJobTrigger(
                    backend=backend.name,
                    job_id=job["job_id"],
                    conn_id=self.conn_id,
                    deadline=job["deadline"],
                    poll_interval=self.poll_interval,
                    identity=identity.to_dict(),
                ),
                method_name="execute_complete",
                kwargs={"job": job},
                # A backstop behind the trigger's own deadline; resume_execution stops the job.
                timeout=timedelta(seconds=max(job["deadline"] - time.time(), 0) + DEADLINE_SLACK_SECONDS),
            )
        try:
            status = self._poll_until_done(backend, identity, job)
        except BaseException:
            # execution_timeout, a kill, or any error while waiting: the job must not run on alone.
            if not self._killed:
                self._stop(backend, job["job_id"], reason="the Airflow task stopped waiting")
            raise
        return self._finish(context, backend, spec, identity, job, status)

    def _poll_until_done(
        self, backend: TrainingBackend, identity: JobIdentity, job: dict[str, Any]
    ) -> JobStatus:
        """The non-deferrable wait: same rules as the trigger, in the worker."""
        from airflow_trainkit.exceptions import TrainingJobFailed

        interval = float(self.poll_interval or backend.poll_interval)
        errors = 0
        while True:
            if self._killed:
                self._on_killed(backend, identity, job)
            if time.time() >= job["deadline"]:
                self._stop(backend, job["job_id"], reason="deadline passed")
                raise TrainingJobFailed(
                    f"{backend.name} job {job['job_id']} passed its deadline and was asked to stop",
                    backend=backend.name,
                    job_id=job["job_id"],
                    state="TIMEOUT",
                )
            try:
                status = backend.describe(job["job_id"])
                errors = 0
            except Exception as err:
                if not backend.is_transient(err) and errors >= 4:
                    raise
                errors += 1
                self.log.warning("Status of %s failed (%r); retrying", job["job_id"], err)
                status = None
            if status is not None and status.phase.terminal:
                return status
            wake = time.monotonic() + interval * (2 ** min(errors, 6) if errors else 1)
            while time.monotonic() < wake and not self._killed:
                time.sleep(min(1.0, interval))

    def _on_killed(self, backend: TrainingBackend, identity: JobIdentity, job: dict[str, Any]) -> None:
        from airflow_trainkit._compat import task_state_now
        from airflow_trainkit.triggers.training import WILL_RUN_AGAIN

        try:
            state = task_state_now(identity.dag_id, identity.run_id, identity.task_id, identity.map_index)
        except Exception:
            state = "unknown"
        if state in WILL_RUN_AGAIN:
            self.log.info(
                "Task killed and will run again (%s): leaving job %s to re-attach to", state, job["job_id"]
            )
        else:
            self._stop(backend, job["job_id"], reason="the Airflow task was killed")
        raise AirflowException(f"Task was killed while waiting for {backend.name} job {job['job_id']}")

    def _finish(
        self,
        context: Context,
        backend: TrainingBackend,
        spec: TrainingJobSpec,
        identity: JobIdentity,
        job: dict[str, Any],
        status: JobStatus,
    ) -> dict[str, Any]:
        from airflow_trainkit.exceptions import TrainingJobFailed
        from airflow_trainkit.training.backend import JobPhase

        tail = self._log_tail(backend, job["job_id"])
        if status.phase == JobPhase.SUCCEEDED:
            result = backend.result(status, spec, attempt=job["attempt"])
            result["cost"] = self._actual_cost(result)
            context["ti"].xcom_push(key=CONSOLE_URL_XCOM_KEY, value=status.console_url or "")
            self._remember(context, {**job, "returned": True})
            self.log.info("%s job %s succeeded; output at %s", backend.name, job["job_id"], status.output_uri)
            return result
        if status.phase == JobPhase.STOPPED and job.get("adopted"):
            # This try re-attached to a job that an earlier try's kill then stopped (a clear of
            # a deferred task races with the old trigger's on_kill): train anew, do not fail.
            self.log.warning(
                "Job %s was stopped by an earlier try of this task; starting a new attempt", job["job_id"]
            )
            next_job, next_status = self._attach_or_submit(context, backend, spec, identity)
            return self._wait(context, backend, spec, identity, next_job, next_status)
        message = (
            f"{backend.name} job {job['job_id']} ended {status.state}: {status.message or 'no reason given'}"
        )
        if tail:
            message += "\nLast log lines:\n" + "\n".join(tail[-20:])
        raise TrainingJobFailed(
            message,
            backend=backend.name,
            job_id=job["job_id"],
            state=status.state,
            reason=status.message,
            log_tail=tail,
        )

    # -- small helpers -------------------------------------------------------------------------

    def _stop(self, backend: TrainingBackend, job_id: str, *, reason: str) -> None:
        try:
            backend.stop(job_id, reason=reason)
            self.log.info("Asked %s job %s to stop: %s", backend.name, job_id, reason)
        except Exception:
            self.log.exception("Could not stop %s job %s", backend.name, job_id)

    def _actual_cost(self, result: dict[str, Any]) -> dict[str, Any] | None:
        """What the run cost, from the price catalog; a missing price never fails training."""
        from airflow_trainkit.costs import actual_cost

        try:
            cost = actual_cost(result)
        except (OSError, ValueError) as err:
            self.log.warning("No cost recorded for %s: %s", result["job_id"], err)
            return None
        if cost:
            self.log.info(
                "%s job %s cost %.4f %s (%s)",
                result["backend"],
                result["job_id"],
                cost["amount"],
                cost["currency"],
                cost["pricing"],
            )
        return cost

    def _log_tail(self, backend: TrainingBackend, job_id: str) -> list[str]:
        try:
            tail = backend.log_tail(job_id, self.log_tail_lines)
        except Exception as err:
            self.log.warning("Could not read the log of %s: %r", job_id, err)
            return []
        if tail:
            self.log.info(
                "Last %d log lines of %s job %s:\n%s", len(tail), backend.name, job_id, "\n".join(tail)
            )
        return tail

    @staticmethod
    def _stored_job(context: Context) -> dict[str, Any] | None:
        store = context.get("task_state_store")  # type: ignore[misc] # Airflow >= 3.3 only
        if store is None:
            return None
        value = store.get(STATE_KEY)
        return value if isinstance(value, dict) else None

    @staticmethod
    def _remember(context: Context, job: dict[str, Any]) -> None:
        store = context.get("task_state_store")  # type: ignore[misc]
        if store is not None:
            store.set(STATE_KEY, job)


def _deadline_of(
    record: dict[str, Any] | None, job_id: str, status: JobStatus, spec: TrainingJobSpec
) -> float:
    """The deadline of a job found again: the stored one, else counted from the job's start."""
    if record and record.get("job_id") == job_id and record.get("deadline"):
        return float(record["deadline"])
    started = time.time()
    if status.started_at:
        started = datetime.fromisoformat(status.started_at).timestamp()
    return started + spec.deadline_seconds + DEADLINE_SLACK_SECONDS


def _job_from_event(backend: str, event: dict[str, Any]) -> dict[str, Any]:
    """The job record rebuilt from a trigger event, when Airflow resumed without the defer kwargs."""
    job_id = str(event.get("job_id"))
    _, _, suffix = job_id.rpartition("-a")
    return {
        "backend": backend,
        "job_id": job_id,
        "attempt": int(suffix) if suffix.isdigit() else 1,
        "deadline": time.time(),
        "adopted": False,
    }
