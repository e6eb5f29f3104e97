"""A real local Ray cluster for the Ray backend's tests, and a TCP relay that can cut the cluster off.

The cluster is ``ray start --head --block`` from the wheel in this virtualenv, on 127.0.0.1, with
ports of its own, a short temp dir of its own (Ray's socket paths are limited to about 107 bytes),
in its own process group, stopped by signalling that group. Never ``ray stop``: it stops every Ray
process on the machine, other people's included.
"""

from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from pathlib import Path
from typing import Any

from trainkit_testing import free_port, stop_process_group

CONN_ID = "trainkit_ray_test"
# Seconds each wait in the fixtures may take before it fails, saying what did not come up.
CLUSTER_START_LIMIT = 180.0
CLUSTER_STOP_LIMIT = 10.0
START_ATTEMPTS = 3
STARTED = "Ray runtime started."  # what ``ray start`` prints once its node has registered


class _NodeStartTimedOut(Exception):
    """``ray start`` gave up waiting for its own node to register (a loaded machine)."""


def free_port_range(size: int) -> int:
    """The first of ``size`` consecutive ports that are free now."""
    for _ in range(50):
        base = free_port()
        if base + size >= 65535:
            continue
        ports = []
        try:
            for port in range(base, base + size):
                sock = socket.socket()
                ports.append(sock)
                sock.bind(("127.0.0.1", port))
            return base
        except OSError:
            continue
        finally:
            for sock in ports:
                sock.close()
    raise RuntimeError(f"no {size} consecutive free ports found on 127.0.0.1")


class RayCluster:
    """One head node on 127.0.0.1; ``address`` is its Jobs API."""

    def __init__(self, num_cpus: int = 4) -> None:
        self.num_cpus = num_cpus
        self.process: subprocess.Popen[bytes] | None = None
        self._fresh()

    def _fresh(self) -> None:
        """A temp dir and a dashboard port of its own, for the next start."""
        self.temp_dir = Path(tempfile.mkdtemp(prefix="tkray", dir="/tmp"))
        self.dashboard_port = free_port()
        self.address = f"http://127.0.0.1:{self.dashboard_port}"
        self.log_path = self.temp_dir / "ray-start.log"

    def start(self) -> RayCluster:
        """Start the head node and wait until it is up: the Jobs API answers and ``ray start`` says
        the runtime started. Ray gives its node 30 s to register (not configurable); on a loaded
        machine that can pass, and ``ray start`` then exits: the cluster is started again, on fresh
        ports and a fresh temp dir, up to :data:`START_ATTEMPTS` times."""
        for attempt in range(1, START_ATTEMPTS + 1):
            try:
                return self._start_once()
            except _NodeStartTimedOut as err:
                if attempt == START_ATTEMPTS:
                    raise RuntimeError(f"ray start failed {attempt} times; the last: {err}") from None
                print(f"ray start failed ({err}); starting the cluster again", file=sys.stderr)
                self.stop()  # what the failed start left in its process group, and its temp dir
                self._fresh()
        raise AssertionError("unreachable")

    def _start_once(self) -> RayCluster:
        bin_dir = Path(sys.executable).parent
        workers = free_port_range(64)
        command = [
            str(bin_dir / "ray"),
            "start",
            "--head",
            "--block",
            "--node-ip-address=127.0.0.1",
            "--dashboard-host=127.0.0.1",
            f"--dashboard-port={self.dashboard_port}",
            f"--port={free_port()}",
            f"--ray-client-server-port={free_port()}",
            f"--dashboard-agent-listen-port={free_port()}",
            f"--dashboard-agent-grpc-port={free_port()}",
            f"--runtime-env-agent-port={free_port()}",
            f"--metrics-export-port={free_port()}",
            f"--node-manager-port={free_port()}",
            f"--object-manager-port={free_port()}",
            f"--min-worker-port={workers}",
            f"--max-worker-port={workers + 63}",
            f"--num-cpus={self.num_cpus}",
            "--num-gpus=0",
            "--object-store-memory=100000000",
            "--disable-usage-stats",
            "--include-dashboard=true",
            f"--temp-dir={self.temp_dir}",
        ]
        env = {
            **os.environ,
            # The job's `python` is this virtualenv's: the cluster's environment, as on a real cluster.
            "PATH": f"{bin_dir}{os.pathsep}{os.environ.get('PATH', '')}",
            "RAY_USAGE_STATS_ENABLED": "0",
        }
        for key in [k for k in env if k.startswith(("AIRFLOW_CONN_", "AIRFLOW__"))]:
            env.pop(key)
        log = self.log_path.open("wb")
        self.process = subprocess.Popen(
            command,
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        log.close()
        end = time.monotonic() + CLUSTER_START_LIMIT
        answers = False
        while True:
            if self.process.poll() is not None:
                tail = self._log_tail()
                if "timed out during startup" in tail:
                    raise _NodeStartTimedOut(tail.strip().splitlines()[-1])
                raise RuntimeError(f"ray start exited with {self.process.returncode}: {tail}")
            if not answers:
                try:
                    with urllib.request.urlopen(f"{self.address}/api/version", timeout=2) as answer:
                        answers = bool(json.load(answer).get("ray_version"))
                except urllib.error.HTTPError as err:
                    answers = err.code in (401, 403)  # a cluster with token authentication: it answers
                except OSError:
                    pass
            if answers and STARTED in self.log_path.read_text(errors="replace"):
                return self
            if time.monotonic() > end:
                self.stop()
                raise RuntimeError(
                    f"the Ray dashboard at {self.address} did not answer within {CLUSTER_START_LIMIT:.0f} s: "
                    f"{self._log_tail()}"
                )
            time.sleep(0.5)

    def _log_tail(self) -> str:
        try:
            return self.log_path.read_text(errors="replace")[-2000:]
        except OSError:
            return "(no log)"

    def get(self, path: str) -> Any:
        with urllib.request.urlopen(f"{self.address}{path}", timeout=30) as answer:
            return json.load(answer)

    def post(self, path: str) -> Any:
        request = urllib.request.Request(f"{self.address}{path}", method="POST", data=b"")
        with urllib.request.urlopen(request, timeout=30) as answer:
            return json.load(answer)

    def jobs_of(self, key: str, value: str) -> list[dict[str, Any]]:
        """Submitted jobs whose metadata has ``key == value`` (a test's own count, never the backend's)."""
        return [j for j in self.get("/api/jobs/") if (j.get("metadata") or {}).get(key) == value]

    def stop_all_jobs(self) -> None:
        """Stop every job still pending or running (each test's leftovers)."""
        for job in self.get("/api/jobs/"):
            if job.get("type") == "SUBMISSION" and job.get("status") in ("PENDING", "RUNNING"):
                self.post(f"/api/jobs/{job['submission_id']}/stop")

    def stop(self) -> None:
        """SIGTERM to the cluster's own process group, SIGKILL to what is left; never ``ray stop``."""
        if self.process is not None:
            stop_process_group(self.process, grace=CLUSTER_STOP_LIMIT)
        shutil.rmtree(self.temp_dir, ignore_errors=True)


REASONS = {
    429: "Too Many Requests",
    500: "Internal Server Error",
    502: "Bad Gateway",
    503: "Service Unavailable",
    504: "Gateway Timeout",
}
_RESET = b"\x01\x00\x00\x00\x00\x00\x00\x00"  # SO_LINGER on, 0 s: close() sends a reset


def _reset(sock: socket.socket, *, close: bool = True) -> None:
    """End a connection with a reset; ``close=False`` only wakes the threads reading it (they close it)."""
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, _RESET)
        if not close:
            sock.shutdown(socket.SHUT_RDWR)
    except OSError:
        pass
    if close:
        sock.close()


class _Piped:
    """One client connection relayed to the cluster, and what the relay watches on it."""

    def __init__(self, client: socket.socket, upstream: socket.socket) -> None:
        self.client = client
        self.upstream = upstream
        self.request = bytearray()  # the bytes of a job submission being sent, while one is
        self.watching = False
        self.held = False  # the cluster's answers on this connection never reach the client
        self.ended = 0  # pipes done: the second one closes both sockets


class Relay:
    """A TCP relay in front of the cluster's Jobs API, as a proxy or ingress in front of a head node.

    ``down`` refuses new connections (a reset, as from a head node that is restarting); :meth:`cut`
    resets the open ones (a client's kept-alive connection would otherwise outlive an outage);
    ``answer_status`` answers every request on a new connection with that HTTP status instead of
    relaying it (a throttling or failing proxy); :meth:`hold_submission` lets one job submission
    through to the cluster and never relays its answer back (held until the client goes away).
    """

    def __init__(self, target_port: int) -> None:
        self.target_port = target_port
        self.down = threading.Event()
        self.refused = 0
        self.answered = 0
        self.held = 0
        self.answer_status: int | Callable[[], int] | None = None
        self._holds: set[bytes] = set()
        self._open: set[_Piped] = set()
        self._lock = threading.Lock()
        self._server = socket.socket()
        self._server.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self._server.bind(("127.0.0.1", 0))
        self._server.listen(64)
        self.port = int(self._server.getsockname()[1])
        self._stopped = False
        threading.Thread(target=self._accept, daemon=True).start()

    @property
    def address(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def cut(self) -> int:
        """Reset every relayed connection now open; how many there were."""
        with self._lock:
            piped, self._open = list(self._open), set()
        for conn in piped:
            for sock in (conn.client, conn.upstream):
                _reset(sock, close=False)
        return len(piped)

    def hold_submission(self, marker: str) -> None:
        """The next ``POST /api/jobs/`` whose request holds ``marker`` (e.g. its submission id) reaches
        the cluster, but its answer never reaches the client."""
        with self._lock:
            self._holds.add(marker.encode())

    def _accept(self) -> None:
        while not self._stopped:
            try:
                client, _ = self._server.accept()
            except OSError:
                return
            if self.down.is_set():
                self.refused += 1
                _reset(client)
                continue
            status = self.answer_status
            if status is not None:
                threading.Thread(
                    target=self._answer, args=(client, status() if callable(status) else status), daemon=True
                ).start()
                continue
            try:
                upstream = socket.create_connection(("127.0.0.1", self.target_port), timeout=30)
                upstream.settimeout(None)
            except OSError:
                client.close()
                continue
            conn = _Piped(client, upstream)
            with self._lock:
                self._open.add(conn)
            threading.Thread(target=self._pipe_up, args=(conn,), daemon=True).start()
            threading.Thread(target=self._pipe_down, args=(conn,), daemon=True).start()

    def _answer(self, client: socket.socket, status: int) -> None:
        """Read one request and answer it with ``status`` (and ``Connection: close``)."""
        data = b""
        try:
            client.settimeout(30)
            while b"\r\n\r\n" not in data:
                chunk = client.recv(65536)
                if not chunk:
                    return
                data += chunk
            head, _, body = data.partition(b"\r\n\r\n")
            length = 0
            for line in head.split(b"\r\n")[1:]:
                name, _, value = line.partition(b":")
                if name.strip().lower() == b"content-length":
                    length = int(value.strip())
            while len(body) < length:
                chunk = client.recv(65536)
                if not chunk:
                    return
                body += chunk
            text = (
                f"{status} {REASONS.get(status, 'Error')} (from the proxy in front of the cluster)\n".encode()
            )
            extra = "Retry-After: 1\r\n" if status == 429 else ""
            client.sendall(
                f"HTTP/1.1 {status} {REASONS.get(status, 'Error')}\r\nContent-Type: text/plain\r\n"
                f"Content-Length: {len(text)}\r\n{extra}Connection: close\r\n\r\n".encode()
                + text
            )
            self.answered += 1
        except (OSError, ValueError):
            pass
        finally:
            client.close()

    def _pipe_up(self, conn: _Piped) -> None:
        """Client to cluster; marks a held submission before the cluster can answer it."""
        try:
            while chunk := conn.client.recv(65536):
                if self._holds:
                    self._watch(conn, chunk)
                conn.upstream.sendall(chunk)
        except OSError:
            pass
        finally:
            self._close(conn)

    def _watch(self, conn: _Piped, chunk: bytes) -> None:
        if chunk.startswith(b"POST /api/jobs/ "):
            conn.request, conn.watching = bytearray(), True
        if not conn.watching:
            return
        conn.request += chunk
        with self._lock:
            marker = next((m for m in self._holds if m in conn.request), None)
            if marker is not None:
                self._holds.discard(marker)
                conn.held, conn.watching = True, False
                self.held += 1
        if len(conn.request) > 2**20:
            conn.watching = False

    def _pipe_down(self, conn: _Piped) -> None:
        """Cluster to client, unless the connection's answers are held."""
        try:
            while chunk := conn.upstream.recv(65536):
                if not conn.held:
                    conn.client.sendall(chunk)
        except OSError:
            pass
        finally:
            self._close(conn)

    def _close(self, conn: _Piped) -> None:
        with self._lock:
            self._open.discard(conn)
            conn.ended += 1
            last = conn.ended == 2
        for sock in (conn.client, conn.upstream):
            try:
                sock.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
            if last:
                sock.close()

    def close(self) -> None:
        self._stopped = True
        self._server.close()
        self.cut()


def connection_json(address: str, **extra: Any) -> str:
    return json.dumps({"conn_type": "trainkit_ray", "host": address, "extra": extra})
