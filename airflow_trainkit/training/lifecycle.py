"""The life of one training job for one task instance: find or submit, wait, finish, stop.

Kept outside the operators so that ``TrainModelOperator``, ``TrainingJobSensor`` and an operator
that runs many jobs per task share one implementation of the promises: re-attach, never
duplicate, stop on every exit path, never a false success.
"""

from __future__ import annotations

import logging
import time
from datetime import datetime
from typing import TYPE_CHECKING, Any, Protocol

from typing_extensions import override

from airflow_trainkit.training.backend import JobPhase, JobRef

if TYPE_CHECKING:
    from collections.abc import Callable

    from airflow_trainkit.training.backend import JobStatus, TrainingBackend
    from airflow_trainkit.training.identity import JobIdentity
    from airflow_trainkit.training.spec import TrainingJobSpec
    from airflow_trainkit.training.waiting import WaitPolicy

# Key in Airflow 3.3's task_state_store; shared by every try of the task instance.
STATE_KEY = "trainkit_training_job"
# When each try first ran execute(): its execution_timeout is counted from there.
TRY_CLOCK_KEY = "trainkit_try_clock"
# Added to the spec's own limit: time to provision, upload the model and report the end.
DEADLINE_SLACK_SECONDS = 600


class JobRecords(Protocol):
    """Where the job a task started is remembered across its tries."""

    def load(self) -> JobRef | None:
        """The record saved last, or ``None`` when this task instance has started no job."""
        ...

    def save(self, ref: JobRef) -> None:
        """Remember ``ref`` for the next try (it replaces the record before it)."""
        ...


class TaskStateRecords(JobRecords):
    """:class:`JobRecords` in Airflow 3.3's ``task_state_store`` (none on older Airflow: nothing kept)."""

    def __init__(self, store: Any, key: str = STATE_KEY) -> None:
        self.store = store
        self.key = key

    @classmethod
    def from_context(cls, context: Any, key: str = STATE_KEY) -> TaskStateRecords:
        """The records of the task instance running in ``context``."""
        return cls(context.get("task_state_store"), key)

    @override
    def load(self) -> JobRef | None:
        if self.store is None:
            return None
        value = self.store.get(self.key)
        return JobRef.from_dict(value) if isinstance(value, dict) else None

    @override
    def save(self, ref: JobRef) -> None:
        if self.store is not None:
            self.store.set(self.key, ref.to_dict())


def execution_deadline(context: Any, execution_timeout: Any) -> float | None:
    """Wall-clock end of this try's ``execution_timeout``, or ``None`` when it has none.

    Airflow 3.3 does not enforce ``execution_timeout`` while a task is deferred, so operators that
    wait for a job cap their trigger's deadline with this. It is counted from this try's first
    ``execute()``, recorded in the task state store (a resumed try keeps its clock; a retry, whose
    try number differs, starts its own), never from ``ti.start_date``.
    """
    if execution_timeout is None:
        return None
    seconds = (
        execution_timeout.total_seconds()
        if hasattr(execution_timeout, "total_seconds")
        else float(execution_timeout)
    )
    ti = context["ti"]
    try_number = int(getattr(ti, "try_number", 1) or 1)
    store = context.get("task_state_store")
    started = time.time()
    if store is not None:
        clock = store.get(TRY_CLOCK_KEY)
        if isinstance(clock, dict) and clock.get("try_number") == try_number:
            started = float(clock["started"])
        else:
            store.set(TRY_CLOCK_KEY, {"try_number": try_number, "started": started})
    return started + seconds


def sensor_deadline(context: Any, timeout: float | None, execution_timeout: Any) -> tuple[float | None, str]:
    """A deferred sensor's deadline: the earlier of its ``timeout`` and this try's
    ``execution_timeout`` (which Airflow does not enforce while deferred), and which one it is."""
    deadline = time.time() + timeout if timeout else None
    cap = execution_deadline(context, execution_timeout)
    if cap is not None and (deadline is None or cap < deadline):
        return cap, "execution_timeout"
    return deadline, "timeout"


def fail_if_execution_timed_out(context: Any, execution_timeout: Any, what: str) -> None:
    """Raise Airflow's ``AirflowTaskTimeout`` when this try's ``execution_timeout`` has passed."""
    cap = execution_deadline(context, execution_timeout)
    if cap is not None and time.time() >= cap:
        from airflow_trainkit._compat import AirflowTaskTimeout

        raise AirflowTaskTimeout(f"execution_timeout ({execution_timeout}) passed while {what}")


def retry_left(context: Any) -> bool:
    """Whether Airflow would run this task again if this try failed now."""
    ti = context["ti"]
    return int(getattr(ti, "try_number", 1) or 1) <= int(getattr(ti, "max_tries", 0) or 0)


class JobLifecycle:
    """One task instance's job on one backend.

    :param backend: the backend object (already holding its connection).
    :param spec: the parsed spec.
    :param identity: the task instance, for the deterministic name and the job's labels.
    :param records: where the job's :class:`JobRef` is kept across tries.
    :param log: the caller's logger, so that every decision lands in the task's own log.
    :param poll_interval: seconds between status calls; ``None`` for the backend's default.
    """

    def __init__(
        self,
        backend: TrainingBackend,
        spec: TrainingJobSpec,
        identity: JobIdentity,
        records: JobRecords,
        *,
        log: Any = None,
        poll_interval: float | None = None,
    ) -> None:
        self.backend = backend
        self.spec = spec
        self.identity = identity
        self.records = records
        self.log = log or logging.getLogger(__name__)
        self.poll_interval = float(poll_interval or backend.poll_interval)

    # -- finding or starting the job -----------------------------------------------------------

    def check(self) -> None:
        """Refuse a spec the backend cannot run, before anything starts; log what it ignores."""
        for note in self.backend.check(self.spec):
            self.log.warning("%s", note)

    def find_or_submit(self, *, new_attempt_after_end: bool = True) -> tuple[JobRef, JobStatus]:
        """Re-attach to this task instance's job, return its success, or start a new attempt.

        :param new_attempt_after_end: a job that failed or was stopped is followed by a new attempt
            (a training task's retry); ``False`` returns that job as it ended (a tuning trial is
            one job: its failure is its outcome).
        """
        backend = self.backend
        record = self.records.load()
        if record is not None and record.backend != backend.name:
            record = None
        attempt = record.attempt if record else 1
        if record and record.returned:
            # The task already returned this job's result and runs again: it was cleared, and a
            # cleared training task trains anew.
            self.log.info("Job %s already gave this task its result; starting a new attempt", record.job_name)
            attempt += 1
        while True:
            name = self.identity.job_name(attempt, max_length=backend.max_job_name_length)
            recorded = record if record and record.job_name == name else None
            # With a handle, one describe; without (a first try, a crash between submit and its
            # answer, a lost record), the backend's lookup by the deterministic name: a record can
            # expire or be cleaned while its job runs, so its absence does not prove there is none.
            status = backend.find(recorded if recorded and recorded.handle else name)
            if status is None:
                return self._submit(name, attempt)
            if status.phase == JobPhase.SUCCEEDED or status.phase.active or not new_attempt_after_end:
                self.log.info("Re-attaching to %s job %s (%s)", backend.name, name, status.state)
                ref = JobRef(
                    backend=backend.name,
                    job_name=name,
                    attempt=attempt,
                    deadline=self._deadline_of(record, name, status),
                    adopted=True,
                    handle=status.handle or (record.handle if record and record.job_name == name else None),
                    submitted_at=record.submitted_at if record and record.job_name == name else None,
                )
                self.records.save(ref)
                return ref, status
            self.log.info(
                "%s job %s ended %s; trying attempt %d", backend.name, name, status.state, attempt + 1
            )
            attempt += 1

    def _submit(self, name: str, attempt: int) -> tuple[JobRef, JobStatus]:
        self.log.info("Submitting %s job %s", self.backend.name, name)
        now = time.time()
        ref = JobRef(
            backend=self.backend.name,
            job_name=name,
            attempt=attempt,
            deadline=now + self.spec.deadline_seconds + DEADLINE_SLACK_SECONDS,
            submitted_at=now,
        )
        # Recorded before the call: a crash right after it leaves the name for the next try to find.
        self.records.save(ref)
        try:
            status = self.backend.submit(self.spec, ref, self.identity)
        except Exception as err:
            found = self._find_after_failed_submit(ref, err)
            if found is None:
                raise
            status = found
        if status.handle and status.handle != ref.handle:
            ref = ref.with_(handle=status.handle)
            self.records.save(ref)
        return ref, status

    def _find_after_failed_submit(self, ref: JobRef, err: Exception) -> JobStatus | None:
        """The job a failed submit started anyway, or ``None``.

        A create whose answer was lost (the connection dropped after the server acted, a timeout, a
        5xx from a proxy) may still have started the job. Failing the task then would leave that
        job running with nobody watching on a last try, so look it up by its name first and follow
        it if it exists. A lookup that fails too leaves the submit's own error standing.
        """
        try:
            found = self.backend.find(ref.job_name)
        except Exception as lookup:
            self.log.warning(
                "Submit of %s job %s failed (%s), and looking for the job failed too (%s)",
                self.backend.name,
                ref.job_name,
                err,
                lookup,
            )
            return None
        if found is not None:
            self.log.warning(
                "Submit of %s job %s failed (%s), but the job exists (%s): following it",
                self.backend.name,
                ref.job_name,
                err,
                found.state,
            )
        return found

    def _deadline_of(self, record: JobRef | None, name: str, status: JobStatus) -> float:
        """The deadline of a job found again: the stored one, else counted from the job's start."""
        if record and record.job_name == name and record.deadline:
            return float(record.deadline)
        started = time.time()
        if status.started_at:
            started = datetime.fromisoformat(status.started_at).timestamp()
        return started + self.spec.deadline_seconds + DEADLINE_SLACK_SECONDS

    # -- waiting -------------------------------------------------------------------------------

    def policy(self, ref: JobRef, *, deadline: float | None = None) -> WaitPolicy:
        """The wait policy for ``ref``: the backend's transient errors, the job's deadline."""
        from airflow_trainkit.training.waiting import WaitPolicy

        return WaitPolicy(
            interval=self.poll_interval,
            is_transient=self.backend.is_transient,
            deadline=deadline if deadline is not None else ref.deadline,
            submitted_at=ref.submitted_at,
        )

    def wait(
        self, ref: JobRef, *, deadline: float | None = None, interrupted: Callable[[], bool] | None = None
    ) -> JobStatus:
        """Block until the job ends (the non-deferrable wait).

        :raises WaitDeadlinePassed: the deadline passed; the caller stops the job.
        :raises WaitInterrupted: ``interrupted()`` turned true.
        """
        policy = self.policy(ref, deadline=deadline)
        policy.interrupted = interrupted
        return policy.poll(lambda: self.backend.describe(ref), lambda status: status.phase.terminal)

    # -- ending --------------------------------------------------------------------------------

    def finish(self, ref: JobRef, status: JobStatus, log_tail_lines: int = 50) -> dict[str, Any] | None:
        """The task's result for a job that ended.

        :return: the result of a succeeded job; ``None`` when this try had re-attached to a job
            that an earlier try's kill then stopped (a clear racing the old trigger's ``on_kill``):
            the caller starts a new attempt instead of failing.
        :raises TrainingJobFailed: the job failed, was stopped or was lost.
        """
        from airflow_trainkit.exceptions import TrainingJobFailed

        tail = self.log_tail(ref, log_tail_lines)
        backend = self.backend
        if status.phase == JobPhase.SUCCEEDED:
            result = backend.result(status, self.spec, attempt=ref.attempt)
            result["cost"] = self.actual_cost(result)
            self.records.save(ref.with_(returned=True))
            self.log.info("%s job %s succeeded; output at %s", backend.name, ref.job_name, status.output_uri)
            return result
        if status.phase == JobPhase.STOPPED and ref.adopted:
            self.log.warning(
                "Job %s was stopped by an earlier try of this task; starting a new attempt", ref.job_name
            )
            return None
        message = (
            f"{backend.name} job {ref.job_name} ended {status.state}: {status.message or 'no reason given'}"
        )
        if tail:
            message += "\nLast log lines:\n" + "\n".join(tail[-20:])
        raise TrainingJobFailed(
            message,
            backend=backend.name,
            job_id=ref.job_name,
            state=status.state,
            reason=status.message,
            log_tail=tail,
        )

    def stop(self, ref: JobRef, *, reason: str) -> None:
        """Ask the job to stop, saying why in the task's log; a failed stop is logged, not raised."""
        try:
            self.backend.stop(ref, reason=reason)
            self.log.info("Asked %s job %s to stop: %s", self.backend.name, ref.job_name, reason)
        except Exception:
            self.log.exception("Could not stop %s job %s", self.backend.name, ref.job_name)

    def log_tail(self, ref: JobRef, lines: int = 50) -> list[str]:
        """The job's last log lines, copied into the task's log; a log that cannot be read is empty."""
        try:
            tail = self.backend.log_tail(ref, lines)
        except Exception as err:
            self.log.warning("Could not read the log of %s: %r", ref.job_name, err)
            return []
        if tail:
            self.log.info(
                "Last %d log lines of %s job %s:\n%s",
                len(tail),
                self.backend.name,
                ref.job_name,
                "\n".join(tail),
            )
        return tail

    def actual_cost(self, result: dict[str, Any]) -> dict[str, Any] | None:
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
