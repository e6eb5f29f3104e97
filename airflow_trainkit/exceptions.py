"""Errors for remote and data failures, each carrying structured context.

Bad arguments raise the standard ``ValueError`` naming the field and the value; the classes here
are for what goes wrong outside the caller's input: a job that failed, data that broke its contract.
"""

from __future__ import annotations

from typing import Any


class TrainkitError(Exception):
    """Base class of every airflow-trainkit error."""


class TrainingJobFailed(TrainkitError):
    """A training job ended in a state that is not success.

    :param job_id: the backend's id of the job.
    :param state: the backend's own state name, e.g. ``FAILED`` or ``STOPPED``.
    :param reason: what the backend said, e.g. an exit code or a failure reason.
    :param log_tail: the last lines of the job's log, when the backend has them.
    """

    def __init__(
        self,
        message: str,
        *,
        backend: str,
        job_id: str,
        state: str,
        reason: str | None = None,
        log_tail: list[str] | None = None,
    ) -> None:
        super().__init__(message)
        self.backend = backend
        self.job_id = job_id
        self.state = state
        self.reason = reason
        self.log_tail = log_tail or []


class TrainingJobNotFound(TrainkitError):
    """The backend has no job with this id."""

    def __init__(self, backend: str, job_id: str) -> None:
        super().__init__(f"{backend} has no training job {job_id!r}")
        self.backend = backend
        self.job_id = job_id


class TrainingJobUnreachable(TrainkitError):
    """The backend could not be asked about a job (the job itself may be fine).

    :param where: what cannot be reached, e.g. a job directory the triggerer cannot see.
    :param transient: ``True`` when asking again may work (a remote host that does not answer now);
        ``False`` when it cannot (an on-prem job root this host does not see).
    """

    def __init__(self, message: str, *, where: str | None = None, transient: bool = False) -> None:
        super().__init__(message)
        self.where = where
        self.transient = transient


class DataValidationFailed(TrainkitError):
    """Data broke its contract. ``failed_checks`` holds one dict per failed check."""

    def __init__(
        self, message: str, *, failed_checks: list[dict[str, Any]], report_uri: str | None = None
    ) -> None:
        super().__init__(message)
        self.failed_checks = failed_checks
        self.report_uri = report_uri


class DriftDetected(TrainkitError):
    """Drift was found and the task was asked to fail on it."""

    def __init__(
        self, message: str, *, drifted_columns: list[dict[str, Any]], report_uri: str | None = None
    ) -> None:
        super().__init__(message)
        self.drifted_columns = drifted_columns
        self.report_uri = report_uri


class ModelRejected(TrainkitError):
    """A challenger model did not pass the promotion gate."""

    def __init__(self, message: str, *, reasons: list[str], version: str | None = None) -> None:
        super().__init__(message)
        self.reasons = reasons
        self.version = version
