"""The base of the wire fakes: a cloud's training-job API served on loopback to its real SDK.

A fake for one service (SageMaker, Vertex AI, Azure ML) subclasses :class:`WireFake` and writes only
what is that service's own: routing, request validation against the SDK's model, and the bodies it
answers. The base holds what every fake shares: the HTTP server (keep-alive, connections counted),
the record of requests, the queue of job plans, injected throttling and 5xx answers, and the job
state machine (:class:`ScriptedJob`: planned states read one by one, a stop that reports its
intermediate state once, then the stopped state).

For tests against a real deployment (the live fault matrix), whose jobs run for wall-clock time and
whose cases run side by side, it also holds plans by job name (:meth:`WireFake.plan_for`), timed
plans (:meth:`WireFake.timed_plan`: pending, running, then ended by the clock, stopped by the clock
after a stop), faults by time for every caller (:meth:`WireFake.fault`: throttling, 5xx, or the
service unreachable: its listening socket closed and its kept-alive connections dropped), and a held
create (:meth:`WireFake.hold_create`: the job is made, its answer never leaves).
"""

from __future__ import annotations

import copy
import json
import select
import socket
import sys
import threading
import time
from collections import deque
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, ClassVar, Generic, Self, TypeVar

# How long a held create's answer is held at most (the test kills its caller long before).
HOLD_SECONDS = 600.0
# How long a timed job reports its stopping state after a stop was asked, before it is stopped.
STOP_SECONDS = 2.0


@dataclass
class Plan:
    """What one job does: the states successive reads of it report (the last one repeats).

    A fake's own plan subclasses this with the service's states as the default and what else it
    needs to answer (billable seconds, an error message).

    ``timeline`` makes it a timed plan (:meth:`WireFake.timed_plan`): ``(seconds after the create,
    state)`` pairs, the state reported from then on, however often the job is read; ``states`` then
    only lists the states it passes through.
    """

    states: list[str] = field(default_factory=list)
    timeline: list[tuple[float, str]] | None = None


PlanT = TypeVar("PlanT", bound=Plan)


@dataclass
class ScriptedJob(Generic[PlanT]):
    """A job's state machine. ``read()`` is what the service reports on each describe.

    A timed plan's job goes by the clock from ``born`` (its create) instead: ``state`` is its state
    now, reads only count (``step``), and a stop ends it ``STOP_SECONDS`` after it was asked."""

    plan: PlanT
    step: int = 0
    stop_requested: bool = False
    stop_reported: bool = False
    born: float = field(default_factory=time.monotonic)

    @property
    def timed(self) -> bool:
        return self.plan.timeline is not None

    @property
    def state(self) -> str:
        if self.plan.timeline is not None:
            elapsed = time.monotonic() - self.born
            current = self.plan.timeline[0][1]
            for at, state in self.plan.timeline:
                if at > elapsed:
                    break
                current = state
            return current
        return self.plan.states[min(self.step, len(self.plan.states) - 1)]

    def read(self, *, terminal: set[str], stopping: str, stopped: str) -> str:
        """The state this read reports, moving the job on: the next planned state, or, once a stop
        was asked of a job not yet ended, ``stopping`` on the first read and ``stopped`` after it.
        A timed job reports its state now."""
        if self.timed:
            self.step += 1
            return self.state
        if self.stop_requested and self.state not in terminal:
            state = stopped if self.stop_reported else stopping
            self.stop_reported = True
            if state == stopped:
                self.end_as(stopped)
            return state
        state = self.state
        self.step += 1
        return state

    def request_stop(self, *, stopping: str, stopped: str, after: float = STOP_SECONDS) -> None:
        """A stop was asked (the fake checked the job may stop): a timed job reports ``stopping``
        for ``after`` seconds, then ``stopped``; a scripted one goes on at its next reads."""
        self.stop_requested = True
        if self.plan.timeline is not None:
            elapsed = time.monotonic() - self.born
            kept = [(at, state) for at, state in self.plan.timeline if at <= elapsed]
            self.plan.timeline = [*kept, (elapsed, stopping), (elapsed + after, stopped)]

    def end_as(self, state: str) -> None:
        """From now on the job reports ``state`` (a race the test scripts, or the end of a stop)."""
        self.plan.states, self.step = [state], 0
        self.plan.timeline = None


@dataclass
class Answer:
    """One HTTP answer: a JSON payload (dict or list) or raw bytes, with extra headers."""

    status: int
    payload: Any = None
    headers: dict[str, str] = field(default_factory=dict)
    hold: bool = False  # never sent: held until the caller is gone, then the connection dropped


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
            getattr(self.service, "open_sockets", set()).add(self.connection)

    def finish(self) -> None:
        with suppress(OSError):  # a connection the fake dropped (unreachable) cannot be flushed
            super().finish()
        with self.service.lock:
            getattr(self.service, "open_sockets", set()).discard(self.connection)

    def log_message(self, *args: Any) -> None:
        pass


class _WireHandler(ServiceHandler):
    def _serve(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length) if length else b""
        answer = self.service.answer(self.command, self.path, self.headers, body)
        if answer.hold:
            self._hold()
            return
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

    def _hold(self) -> None:
        """Send nothing until the caller has closed its end (its process was killed), then drop the
        connection; at most ``HOLD_SECONDS``."""
        self.close_connection = True
        end = time.monotonic() + HOLD_SECONDS
        while time.monotonic() < end:
            readable, _, _ = select.select([self.connection], [], [], 0.5)
            if not readable:
                continue
            try:
                if not self.connection.recv(1, socket.MSG_PEEK):
                    return  # end of file: the caller is gone
            except OSError:
                return
            time.sleep(0.5)  # it sent more (nothing it may expect an answer to): hold on

    do_GET = do_POST = do_PUT = do_PATCH = do_DELETE = do_HEAD = _serve  # noqa: N815 - http.server's naming


class _Server(ThreadingHTTPServer):
    """The fake's HTTP server: rebinding its port at once after an outage, quiet about connections
    the fake itself dropped."""

    allow_reuse_address = True

    def handle_error(self, request: Any, client_address: Any) -> None:
        if isinstance(sys.exc_info()[1], OSError):
            return
        super().handle_error(request, client_address)


class WireFake(Generic[PlanT]):
    """A service on loopback. Run with ``start()``; point the SDK at ``endpoint_url``.

    A subclass sets ``plan_type`` and implements ``answer(method, path, headers, body) -> Answer``
    (called in the server's threads; take ``self.lock`` around shared state) and, when it keeps more
    state, ``_reset()``. ``requests`` records ``(operation, body)`` pairs for assertions.

    A fake with timed plans names its states: ``PENDING``, ``RUNNING``, ``SUCCEEDED``, ``FAILED``.
    """

    plan_type: ClassVar[type[Plan]] = Plan
    content_type: ClassVar[str] = "application/json"
    PENDING: ClassVar[str] = ""
    RUNNING: ClassVar[str] = ""
    SUCCEEDED: ClassVar[str] = ""
    FAILED: ClassVar[str] = ""

    def __init__(self) -> None:
        self.jobs: dict[str, Any] = {}
        self.requests: list[tuple[str, dict[str, Any]]] = []
        self.plans: deque[PlanT] = deque()
        self.named_plans: dict[str, PlanT] = {}  # our job name -> its plan (copied for each create)
        self.throttle_next = 0  # the next N requests are throttled
        self.fail_5xx_next = 0  # the next N requests get a server error
        self.fault_until: dict[str, float] = {}  # "throttle" / "5xx" -> monotonic end of its window
        self.held_creates: set[str] = set()  # job names whose create answer is held (once)
        self.connections = 0  # TCP connections accepted since the last reset (kept alive)
        self.open_sockets: set[socket.socket] = set()
        self.lock = threading.Lock()
        self._server: _Server | None = None
        self._address: tuple[str, int] | None = None

    # -- test controls -----------------------------------------------------------------------------

    def plan_next(self, plan: PlanT) -> None:
        """The next created job follows ``plan`` (jobs without a queued plan follow the default)."""
        self.plans.append(plan)

    def plan_for(self, name: str, plan: PlanT) -> None:
        """Every job created under ``name`` (our job name; Vertex: the display name) follows a copy of
        ``plan``, before the queue: cases running side by side never take each other's plan."""
        with self.lock:
            self.named_plans[name] = plan

    def next_plan(self, name: str | None = None) -> PlanT:
        """The plan of a job being created: its name's, else the queue's next, else the default."""
        if name is not None and name in self.named_plans:
            return copy.deepcopy(self.named_plans[name])
        return self.plans.popleft() if self.plans else self.plan_type()  # type: ignore[return-value]

    def timed_plan(self, seconds: float, *, failed: bool = False, pending: float = 1.0) -> PlanT:
        """A plan by the clock: pending for ``pending`` seconds, running until ``seconds`` after the
        create, then failed or succeeded (a fake adds what else its answers need)."""
        end = self.FAILED if failed else self.SUCCEEDED
        return self.plan_type(  # type: ignore[return-value]
            states=[self.PENDING, self.RUNNING, end],
            timeline=[(0.0, self.PENDING), (pending, self.RUNNING), (float(seconds), end)],
        )

    def hold_create(self, name: str) -> None:
        """The next create of ``name`` is carried out (the job exists and runs) but its answer is
        held until the caller is gone, then the connection dropped: a caller killed mid-create."""
        with self.lock:
            self.held_creates.add(name)

    def take_hold(self, name: str) -> bool:
        """Whether this create's answer is to be held (once per :meth:`hold_create`); under the lock."""
        if name in self.held_creates:
            self.held_creates.discard(name)
            return True
        return False

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
            self.named_plans.clear()
            self.throttle_next = self.fail_5xx_next = 0
            self.fault_until.clear()
            self.held_creates.clear()
            self.connections = 0
            self._reset()

    def _reset(self) -> None:
        """Clear the subclass's own state (called under the lock)."""

    def window_open(self, kind: str) -> bool:
        """Whether a :meth:`fault` window of ``kind`` (``"throttle"``, ``"5xx"``) is open now."""
        return self.fault_until.get(kind, 0.0) > time.monotonic()

    def injected_fault(self) -> str | None:
        """``"throttle"`` or ``"5xx"`` when a fault window is open or the test asked the next
        request to get one (under the lock)."""
        for kind in ("throttle", "5xx"):
            if self.window_open(kind):
                return kind
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

    @contextmanager
    def fault(self, kind: str, seconds: float) -> Iterator[None]:
        """Every request meets ``kind`` for ``seconds`` from entering: ``"throttle"`` and ``"5xx"``
        (the service's own answers), or ``"unreachable"`` (no listener: new connections refused,
        kept-alive ones dropped; then the service is back on the same port). The body runs
        meanwhile; the fault has ended when the block exits."""
        end = time.monotonic() + seconds
        if kind == "unreachable":
            self.go_down()
            try:
                yield
            finally:
                time.sleep(max(0.0, end - time.monotonic()))
                self.come_back()
            return
        if kind not in ("throttle", "5xx"):
            raise ValueError(f"fault kind: one of 'throttle', '5xx', 'unreachable', got {kind!r}")
        with self.lock:
            self.fault_until[kind] = end
        try:
            yield
        finally:
            time.sleep(max(0.0, end - time.monotonic()))
            with self.lock:
                self.fault_until.pop(kind, None)

    def go_down(self) -> None:
        """Close the listening socket and drop every open connection (the service is unreachable)."""
        server, self._server = self._server, None
        if server is None:
            return
        server.shutdown()
        server.server_close()
        with self.lock:
            sockets = list(self.open_sockets)
        for sock in sockets:
            with suppress(OSError):
                sock.shutdown(socket.SHUT_RDWR)

    def come_back(self) -> None:
        """Listen again on the same address after :meth:`go_down`."""
        if self._server is None:
            self._listen(self._address)

    def _listen(self, address: tuple[str, int] | None) -> None:
        handler = type(f"{type(self).__name__}Handler", (_WireHandler,), {"service": self})
        for attempt in range(50):
            try:
                self._server = _Server(address or ("127.0.0.1", 0), handler)
                break
            except OSError:  # the old port's sockets are still closing
                if address is None or attempt == 49:
                    raise
                time.sleep(0.1)
        assert self._server is not None
        self._address = self._server.server_address[:2]  # type: ignore[assignment]
        threading.Thread(target=self._server.serve_forever, daemon=True).start()

    def start(self) -> Self:
        self._listen(None)
        return self

    def stop(self) -> None:
        self.go_down()

    @property
    def endpoint_url(self) -> str:
        if self._address is None:
            raise RuntimeError(f"{type(self).__name__} is not started")
        host, port = self._address
        return f"http://{host}:{port}"
