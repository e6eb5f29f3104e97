"""The base of the wire fakes: a cloud's training-job API served on loopback to its real SDK.

A fake for one service (SageMaker, Vertex AI, Azure ML) subclasses :class:`WireFake` and writes only
what is that service's own: routing, request validation against the SDK's model, and the bodies it
answers. The base holds what every fake shares: the HTTP server (keep-alive, connections counted),
the record of requests, the queue of job plans, injected throttling and 5xx answers, and the job
state machine (:class:`ScriptedJob`: planned states read one by one, a stop that reports its
intermediate state once, then the stopped state).
"""

from __future__ import annotations

import json
import threading
from collections import deque
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, ClassVar, Generic, Self, TypeVar


@dataclass
class Plan:
    """What one job does: the states successive reads of it report (the last one repeats).

    A fake's own plan subclasses this with the service's states as the default and what else it
    needs to answer (billable seconds, an error message).
    """

    states: list[str] = field(default_factory=list)


PlanT = TypeVar("PlanT", bound=Plan)


@dataclass
class ScriptedJob(Generic[PlanT]):
    """A job's state machine. ``read()`` is what the service reports on each describe."""

    plan: PlanT
    step: int = 0
    stop_requested: bool = False
    stop_reported: bool = False

    @property
    def state(self) -> str:
        return self.plan.states[min(self.step, len(self.plan.states) - 1)]

    def read(self, *, terminal: set[str], stopping: str, stopped: str) -> str:
        """The state this read reports, moving the job on: the next planned state, or, once a stop
        was asked of a job not yet ended, ``stopping`` on the first read and ``stopped`` after it."""
        if self.stop_requested and self.state not in terminal:
            state = stopped if self.stop_reported else stopping
            self.stop_reported = True
            if state == stopped:
                self.end_as(stopped)
            return state
        state = self.state
        self.step += 1
        return state

    def end_as(self, state: str) -> None:
        """From now on the job reports ``state`` (a race the test scripts, or the end of a stop)."""
        self.plan.states, self.step = [state], 0


@dataclass
class Answer:
    """One HTTP answer: a JSON payload (dict or list) or raw bytes, with extra headers."""

    status: int
    payload: Any = None
    headers: dict[str, str] = field(default_factory=dict)


class ServiceHandler(BaseHTTPRequestHandler):
    """Request handler of the wire fakes: keep-alive as the real services, connections counted.
    ``service`` is the fake, with a ``lock`` and a ``connections`` count."""

    service: Any
    # Keep-alive, as the services do: a client that reuses its connections is seen to.
    protocol_version = "HTTP/1.1"
    # Headers and body go out in two writes: with Nagle's algorithm on, the body would wait for the
    # client's delayed ACK of the headers, 40 ms a call on a kept-alive connection.
    disable_nagle_algorithm = True

    def setup(self) -> None:  # once per accepted connection
        super().setup()
        with self.service.lock:
            self.service.connections += 1

    def log_message(self, *args: Any) -> None:
        pass


class _WireHandler(ServiceHandler):
    def _serve(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length) if length else b""
        answer = self.service.answer(self.command, self.path, self.headers, body)
        if isinstance(answer.payload, bytes):
            data, content_type = answer.payload, "application/octet-stream"
        else:
            data, content_type = json.dumps(answer.payload).encode(), self.service.content_type
        self.send_response(answer.status)
        headers = {"Content-Type": content_type, **answer.headers, "Content-Length": str(len(data))}
        for name, value in headers.items():
            self.send_header(name, value)
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(data)

    do_GET = do_POST = do_PUT = do_PATCH = do_DELETE = do_HEAD = _serve  # noqa: N815 - http.server's naming


class WireFake(Generic[PlanT]):
    """A service on loopback. Run with ``start()``; point the SDK at ``endpoint_url``.

    A subclass sets ``plan_type`` and implements ``answer(method, path, headers, body) -> Answer``
    (called in the server's threads; take ``self.lock`` around shared state) and, when it keeps more
    state, ``_reset()``. ``requests`` records ``(operation, body)`` pairs for assertions.
    """

    plan_type: ClassVar[type[Plan]] = Plan
    content_type: ClassVar[str] = "application/json"

    def __init__(self) -> None:
        self.jobs: dict[str, Any] = {}
        self.requests: list[tuple[str, dict[str, Any]]] = []
        self.plans: deque[PlanT] = deque()
        self.throttle_next = 0  # the next N requests are throttled
        self.fail_5xx_next = 0  # the next N requests get a server error
        self.connections = 0  # TCP connections accepted since the last reset (kept alive)
        self.lock = threading.Lock()
        self._server: ThreadingHTTPServer | None = None

    # -- test controls -----------------------------------------------------------------------------

    def plan_next(self, plan: PlanT) -> None:
        """The next created job follows ``plan`` (jobs without a queued plan follow the default)."""
        self.plans.append(plan)

    def next_plan(self) -> PlanT:
        return self.plans.popleft() if self.plans else self.plan_type()  # type: ignore[return-value]

    def calls(self, operation: str, **match: Any) -> list[dict[str, Any]]:
        """Bodies of the recorded ``operation`` requests whose fields equal ``match``."""
        return [
            body
            for op, body in self.requests
            if op == operation and all(body.get(key) == value for key, value in match.items())
        ]

    def reset(self) -> None:
        with self.lock:
            self.jobs.clear()
            self.requests.clear()
            self.plans.clear()
            self.throttle_next = self.fail_5xx_next = 0
            self.connections = 0
            self._reset()

    def _reset(self) -> None:
        """Clear the subclass's own state (called under the lock)."""

    def injected_fault(self) -> str | None:
        """``"throttle"`` or ``"5xx"`` when the test asked the next request to get one (under the lock)."""
        if self.throttle_next > 0:
            self.throttle_next -= 1
            return "throttle"
        if self.fail_5xx_next > 0:
            self.fail_5xx_next -= 1
            return "5xx"
        return None

    # -- the server --------------------------------------------------------------------------------

    def answer(self, method: str, path: str, headers: Any, body: bytes) -> Answer:
        raise NotImplementedError

    def start(self) -> Self:
        handler = type(f"{type(self).__name__}Handler", (_WireHandler,), {"service": self})
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
        threading.Thread(target=self._server.serve_forever, daemon=True).start()
        return self

    def stop(self) -> None:
        if self._server:
            self._server.shutdown()
            self._server.server_close()

    @property
    def endpoint_url(self) -> str:
        if self._server is None:
            raise RuntimeError(f"{type(self).__name__} is not started")
        host, port = self._server.server_address[:2]
        return f"http://{host}:{port}"
