"""A small stdlib stand-in for the Ray Jobs API, for the faults a real cluster will not give on demand.

It answers ``GET /api/jobs/{id}`` with a planned run of throttling (429) and 5xx answers before the
job's real answer, and refuses every call without the right bearer token (401, or 403 for a wrong
one) as Ray's token authentication does. Everything else is the real cluster's business.
"""

from __future__ import annotations

from typing import Any

from wire_fake import Answer, WireFake


class FakeRayJobs(WireFake):
    """Run with ``start()``; ``endpoint_url`` is the Jobs API address. ``faults`` is the planned run of
    status codes the next GETs answer before the job's real answer."""

    def __init__(self, token: str | None = None) -> None:
        super().__init__()
        self.token = token
        self.faults: list[int] = []
        self.answers: list[int] = []
        self.auth_headers: list[str] = []

    def add_job(self, submission_id: str, status: str = "SUCCEEDED") -> None:
        self.jobs[submission_id] = {
            "type": "SUBMISSION",
            "submission_id": submission_id,
            "job_id": "02000000",
            "status": status,
            "message": "Job finished successfully.",
            "start_time": 1_796_000_000_000,
            "end_time": 1_796_000_060_000,
            "metadata": {"trainkit_output_uri": "/nowhere"},
            "runtime_env": {"env_vars": {"SECRET_ENV": "s3cr3t-in-runtime-env"}},
            "driver_exit_code": 0,
        }

    def _reset(self) -> None:
        self.faults.clear()
        self.answers.clear()
        self.auth_headers.clear()

    def answer(self, method: str, path: str, headers: Any, body: bytes) -> Answer:
        with self.lock:
            answer = self._answer(method, path, headers.get("Authorization", ""))
            self.answers.append(answer.status)
        return answer

    def _answer(self, method: str, path: str, header: str) -> Answer:
        self.auth_headers.append(header)
        if self.token is not None and not header:
            return _text(401, "Unauthorized: Missing authentication token")
        if self.token is not None and header != f"Bearer {self.token}":
            return _text(403, "Forbidden: Invalid authentication token")
        if method != "GET":
            return _text(405, f"{method} is not served by this fake")
        if self.faults:
            return _text(self.faults.pop(0), "Traceback (most recent call last):\n  ...\nRuntimeError: busy")
        job_id = path.rstrip("/").rsplit("/", 1)[-1]
        job = self.jobs.get(job_id)
        return Answer(200, job) if job is not None else _text(404, f"Job {job_id} does not exist")


def _text(status: int, message: str) -> Answer:
    """Ray's dashboard answers errors as plain text."""
    return Answer(status, message.encode(), {"Content-Type": "text/plain"})
