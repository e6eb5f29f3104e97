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
from pathlib import Path
from typing import Any

from trainkit_testing import free_port, stop_process_group

CONN_ID = "trainkit_ray_test"
# Seconds each wait in the fixtures may take before it fails, saying what did not come up.
CLUSTER_START_LIMIT = 180.0
CLUSTER_STOP_LIMIT = 10.0


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
        self.temp_dir = Path(tempfile.mkdtemp(prefix="tkray", dir="/tmp"))
        self.dashboard_port = free_port()
        self.address = f"http://127.0.0.1:{self.dashboard_port}"
        self.process: subprocess.Popen[bytes] | None = None
        self.log_path = self.temp_dir / "ray-start.log"

    def start(self) -> RayCluster:
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
        while True:
            if self.process.poll() is not None:
                raise RuntimeError(f"ray start exited with {self.process.returncode}: {self._log_tail()}")
            try:
                with urllib.request.urlopen(f"{self.address}/api/version", timeout=2) as answer:
                    if json.load(answer).get("ray_version"):
                        return self
            except urllib.error.HTTPError as err:
                if err.code in (401, 403):  # a cluster with token authentication: it answers
                    return self
            except OSError:
                pass
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


class Relay:
    """A TCP relay in front of the cluster's Jobs API that can refuse connections for a while."""

    def __init__(self, target_port: int) -> None:
        self.target_port = target_port
        self.down = threading.Event()
        self.refused = 0
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

    def _accept(self) -> None:
        while not self._stopped:
            try:
                client, _ = self._server.accept()
            except OSError:
                return
            if self.down.is_set():
                self.refused += 1
                client.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, b"\x01\x00\x00\x00\x00\x00\x00\x00")
                client.close()  # a reset, as from a head node that is restarting
                continue
            try:
                upstream = socket.create_connection(("127.0.0.1", self.target_port), timeout=30)
            except OSError:
                client.close()
                continue
            for a, b in ((client, upstream), (upstream, client)):
                threading.Thread(target=self._pipe, args=(a, b), daemon=True).start()

    @staticmethod
    def _pipe(source: socket.socket, sink: socket.socket) -> None:
        try:
            while chunk := source.recv(65536):
                sink.sendall(chunk)
        except OSError:
            pass
        finally:
            for sock in (source, sink):
                try:
                    sock.shutdown(socket.SHUT_RDWR)
                except OSError:
                    pass

    def close(self) -> None:
        self._stopped = True
        self._server.close()


def connection_json(address: str, **extra: Any) -> str:
    return json.dumps({"conn_type": "trainkit_ray", "host": address, "extra": extra})
