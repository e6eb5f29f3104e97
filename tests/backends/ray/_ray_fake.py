"""A small stdlib stand-in for the Ray Jobs API, for the faults a real cluster will not give on demand.

It answers ``GET /api/jobs/{id}`` with a planned run of throttling (429) and 5xx answers before the
job's real answer, and refuses every call without the right bearer token (401, or 403 for a wrong
one) as Ray's token authentication does. Everything else is the real cluster's business.
"""

from __future__ import annotations

import json
import threading
from http.server import ThreadingHTTPServer
from typing import Any

from trainkit_testing import ServiceHandler


class FakeRayJobs:
    def __init__(self, token: str | None = None) -> None:
        self.token = token
        self.lock = threading.Lock()
        self.connections = 0
        self.faults: list[int] = []
        self.answers: list[int] = []
        self.auth_headers: list[str] = []
        self.jobs: dict[str, dict[str, Any]] = {}
        handler = type("Handler", (_Handler,), {"service": self})
        self.server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
        self.address = f"http://127.0.0.1:{self.server.server_address[1]}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

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

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


class _Handler(ServiceHandler):
    service: FakeRayJobs

    def _answer(self, status: int, body: Any) -> None:
        data = (json.dumps(body) if not isinstance(body, str) else body).encode()
        with self.service.lock:
            self.service.answers.append(status)
        self.send_response(status)
        self.send_header("Content-Type", "application/json" if status < 400 else "text/plain")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def _authorized(self) -> bool:
        header = self.headers.get("Authorization", "")
        with self.service.lock:
            self.service.auth_headers.append(header)
        if self.service.token is None:
            return True
        if not header:
            self._answer(401, "Unauthorized: Missing authentication token")
            return False
        if header != f"Bearer {self.service.token}":
            self._answer(403, "Forbidden: Invalid authentication token")
            return False
        return True

    def do_GET(self) -> None:  # noqa: N802 - http.server's naming
        if not self._authorized():
            return
        with self.service.lock:
            fault = self.service.faults.pop(0) if self.service.faults else None
        if fault is not None:
            self._answer(fault, "Traceback (most recent call last):\n  ...\nRuntimeError: busy")
            return
        job_id = self.path.rstrip("/").rsplit("/", 1)[-1]
        job = self.service.jobs.get(job_id)
        if job is None:
            self._answer(404, f"Job {job_id} does not exist")
        else:
            self._answer(200, job)
