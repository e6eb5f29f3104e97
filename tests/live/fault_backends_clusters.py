"""The cluster rows of the live fault matrix: a real local Ray cluster, and real sshd hosts for
on-prem over SSH (see ``fault_matrix.py`` for the contract, ``fault_backends.py`` for the registry).

Both run our own command (``fault_backends.COMMAND``), so a job's behaviour comes from the templated
spec and nothing is planned per run. Each row lists its jobs from the truth on the cluster or the
host, never through the package: Ray's own job list, and the job folders and processes inside each
SSH host.
"""

from __future__ import annotations

import json
import subprocess
import sys
import threading
import time
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from itertools import cycle
from pathlib import Path
from typing import Any

from fault_backends import COMMAND, ENDED, job_prefix
from fault_matrix import LiveBackend, LiveJob

_TESTS = Path(__file__).resolve().parent.parent
for _folder in ("backends/ray", "backends/onprem_ssh"):
    if str(_TESTS / _folder) not in sys.path:
        sys.path.insert(0, str(_TESTS / _folder))

LISTING_MAX_AGE = 1.0  # seconds one listing of the jobs serves every case's thread (they poll at 5 Hz)


def _attempt(name: str) -> int:
    """The attempt at the end of one of our job names; 0 for a name that is not ours in form."""
    head, sep, tail = name.rpartition("-a")
    return int(tail) if sep and head and tail.isdigit() else 0


class _Listing:
    """One listing of every job, shared by the threads that ask within ``LISTING_MAX_AGE``."""

    def __init__(self, read: Any) -> None:
        self.read = read
        self.lock = threading.Lock()
        self.at = 0.0
        self.value: Any = None

    def get(self) -> Any:
        with self.lock:
            if self.value is None or time.monotonic() - self.at > LISTING_MAX_AGE:
                self.value = self.read()
                self.at = time.monotonic()
            return self.value


# -- Ray ---------------------------------------------------------------------------------------------


class RayRow(LiveBackend):
    """A real local Ray cluster (``ray start --head``, as the Ray backend's tests start it), reached
    by the deployment through a relay in front of its dashboard, as through the proxy or ingress that
    fronts a production head node.

    The Jobs API is HTTP, so every API fault has a real meaning: ``unreachable`` is the relay
    refusing and resetting connections (a head node restarting, a network cut); ``5xx`` is the
    relay answering 500/502/503/504 (the 500 of a dashboard's own internal error, the 502/503/504
    of a proxy while the head node is away); ``throttle`` is the relay answering 429 (the rate
    limit of the ingress or API gateway in front of a shared cluster; the dashboard has none of its
    own). A lost create is real at the wire: the relay lets the job submission reach the cluster
    and never relays its answer. Submission ids are ours (the job name), not the server's.
    """

    name = "ray"
    backend = "ray"
    api_faults = frozenset({"throttle", "5xx", "unreachable"})
    conn_id = "trainkit_fm_ray"

    def __init__(self) -> None:
        self.cluster: Any = None
        self.relay: Any = None
        self.outputs: Path | None = None
        self.listing = _Listing(self._read_jobs)

    def start(self, workdir: Path) -> None:
        from ray_testing import RayCluster, Relay

        self.outputs = workdir / "outputs"
        self.outputs.mkdir(parents=True, exist_ok=True)
        self.cluster = RayCluster(num_cpus=4).start()
        self.relay = Relay(self.cluster.dashboard_port)

    def stop(self) -> None:
        if self.relay is not None:
            self.relay.close()
        if self.cluster is not None:
            self.cluster.stop()

    def deployment_env(self, home: Path) -> dict[str, str]:
        from ray_testing import connection_json

        # Calls give up after 10 s (a dropped answer is found out by the next poll, not waited on).
        return {f"AIRFLOW_CONN_{self.conn_id.upper()}": connection_json(self.relay.address, timeout=10)}

    def spec(self) -> dict[str, Any]:
        # A quarter CPU each: the matrix's jobs (sleeps) run side by side on the 4-CPU cluster.
        return {
            "command": COMMAND,
            "output_uri": str(self.outputs),
            "max_runtime": 900,
            "options": {"num_cpus": 0.25},
        }

    def _read_jobs(self) -> list[dict[str, Any]]:
        # Straight from the dashboard, never through the relay: the truth while the API is faulted.
        with urllib.request.urlopen(f"{self.cluster.address}/api/jobs/", timeout=30) as answer:
            return list(json.load(answer))

    def jobs(self, dag_id: str, run_id: str) -> list[LiveJob]:
        """The cluster's jobs whose submission id is one of this task instance's job names, or whose
        metadata names its DAG and run (a job submitted under another id would show up too)."""
        prefix = job_prefix(dag_id, run_id)
        found = []
        for job in self.listing.get():
            submission = str(job.get("submission_id") or "")
            metadata = job.get("metadata") or {}
            ours = submission.startswith(f"{prefix}-a") or (
                metadata.get("airflow_dag_id") == dag_id and metadata.get("airflow_run_id") == run_id
            )
            if not ours:
                continue
            status = str(job.get("status") or "")
            phase = ENDED.get(status, "active" if status in ("PENDING", "RUNNING") else "failed")
            found.append((job.get("start_time") or 0, LiveJob(submission, _attempt(submission), phase)))
        return [job for _, job in sorted(found, key=lambda pair: pair[0])]

    @contextmanager
    def api_fault(self, kind: str, seconds: float) -> Iterator[None]:
        end = time.monotonic() + seconds
        relay = self.relay
        if kind == "unreachable":
            relay.down.set()
        elif kind == "throttle":
            relay.answer_status = 429
        elif kind == "5xx":
            statuses = cycle([503, 500, 502, 504])
            relay.answer_status = lambda: next(statuses)
        else:
            raise NotImplementedError(f"{self.name} has no fault {kind!r}")
        relay.cut()  # kept-alive connections would go on past the fault
        try:
            yield
            time.sleep(max(0.0, end - time.monotonic()))
        finally:
            relay.down.clear()
            relay.answer_status = None

    def hold_create(self, dag_id: str, run_id: str) -> bool:
        self.relay.hold_submission(f'"{job_prefix(dag_id, run_id)}-a1"')
        return True


# -- on-prem over SSH --------------------------------------------------------------------------------

# Run inside a host (its mount and PID namespaces): every job folder under a root, each with its
# recorded state and whether its runner or its command's processes still live there.
_HOST_LISTING = r"""
import json, os, sys
from datetime import datetime, timezone
from pathlib import Path

root = Path(sys.argv[1])

def stat(pid):
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except (OSError, IndexError):
        return None
    return fields

def alive(pid, ticks=None):
    fields = stat(pid) if isinstance(pid, int) else None
    if fields is None or fields[0] == "Z":
        return False
    return ticks is None or int(fields[19]) == int(ticks)

def group_alive(pgid):
    if not isinstance(pgid, int):
        return False
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            fields = stat(entry)
            if fields and fields[0] != "Z" and int(fields[2]) == pgid:
                return True
    return False

def runners(folder):
    # Live processes started in the job's folder: its runner (the command runs in work/), and any
    # second runner a repeated spawn would start.
    count = 0
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                if os.readlink(f"/proc/{entry}/cwd") == str(folder):
                    fields = stat(entry)
                    count += bool(fields and fields[0] != "Z")
            except OSError:
                pass
    return count

def read(path):
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError):
        return None

def age(state, folder):
    try:
        since = datetime.fromisoformat(state["submitted_at"]).timestamp()
    except (KeyError, TypeError, ValueError):
        since = folder.stat().st_ctime
    return datetime.now(timezone.utc).timestamp() - since

jobs = []
for folder in sorted(root.glob("tk-*-a*")) if root.is_dir() else []:
    state = read(folder / "state.json") or {}
    runner = read(folder / "runner.json") or {}
    pid = state.get("runner_pid") or runner.get("pid")
    ticks = state.get("runner_start_ticks") or runner.get("start_ticks")
    jobs.append({
        "name": folder.name,
        "state": state.get("state"),
        "runner_pid": pid,
        "runner_alive": alive(pid, ticks),
        "command_alive": group_alive(state.get("child_pgid")),
        "runners": runners(folder),
        "age": age(state, folder),
    })
print(json.dumps(jobs))
"""
# A job folder with no runner yet is being started for at most this long (the backend's own grace).
START_GRACE_SECONDS = 60.0

# Every SSH command of the row's hosts goes through sshd's ForceCommand: while ``HOLD`` is armed (a
# file naming a job), a session whose stdin is that job's ``spawn`` (the last call of a create) runs
# it, and then keeps its answer on the host until the caller is gone: the create is carried out,
# and its answer never leaves the host. Otherwise the command runs as asked.
_FORCE_COMMAND = 'if [ -e {hold} ]; then exec /usr/bin/python3 {wrapper} {hold}; else exec /bin/sh -c "$SSH_ORIGINAL_COMMAND"; fi'
_HOLD_WRAPPER = r"""
import os, select, subprocess, sys, time

hold = sys.argv[1]
request = sys.stdin.buffer.read()
done = subprocess.run(
    ["/bin/sh", "-c", os.environ.get("SSH_ORIGINAL_COMMAND", "")], input=request, capture_output=True
)
try:
    marker = open(hold, "rb").read().strip()
except OSError:
    marker = None
if marker and b'"op": "spawn"' in request and marker in request:
    try:
        os.rename(hold, hold + ".taken")  # one create only
    except OSError:
        marker = None
if marker and b'"op": "spawn"' in request and marker in request:
    # Until the session's client is gone (its stdout hangs up), at most ten minutes.
    poller = select.poll()
    poller.register(1, select.POLLERR | select.POLLHUP)
    end = time.monotonic() + 600
    while time.monotonic() < end and not poller.poll(500):
        pass
    sys.exit(0)
sys.stdout.buffer.write(done.stdout)
sys.stderr.buffer.write(done.stderr)
sys.exit(done.returncode)
"""


class SshOnPrem(LiveBackend):
    """On-prem over SSH to two GPU hosts (``a``, ``b``): each a real OpenSSH sshd in namespaces of its
    own (mount, host name, PIDs), as the SSH transport's tests start them. They share this machine's
    network namespace, so their sshd on 127.0.0.1 is reached by the deployment's workers and
    triggerer as by the test; their job folders are on a tmpfs only the host sees, so this row reads
    them inside the host (``nsenter``), with the processes that live there.

    API faults: only ``unreachable`` has a meaning here: every sshd of both hosts killed and none
    started (connections refused, open sessions dropped) for the fault's length, then sshd back;
    the jobs run on meanwhile. sshd neither throttles nor answers 5xx: an SSH server has no
    status codes and no rate limit a poll could trip (``MaxStartups`` drops connections, which is
    ``unreachable`` again), so those columns are n/a.

    A lost create is held at the host's end of the wire (the channel is encrypted, so not in
    between): sshd's ``ForceCommand`` runs the create's last call (``spawn``, which starts the job's
    runner) and keeps its answer until the caller is gone. A job exists here once its runner was
    started; a folder still without one is a create under way (or, past the backend's start grace,
    a lost job).
    """

    name = "onprem_ssh"
    backend = "onprem"
    api_faults = frozenset({"unreachable"})
    conn_id = "trainkit_fm_ssh"

    def __init__(self) -> None:
        self.hosts: dict[str, Any] = {}
        self.roots: dict[str, str] = {}
        self.holds: dict[str, Path] = {}
        self.listing = _Listing(self._read_jobs)

    def start(self, workdir: Path) -> None:
        import shutil

        from sshd_hosts import FakeGpuHost, SshKeys

        for tool in ("/usr/sbin/sshd", "ssh-keygen", "unshare", "nsenter"):
            if not shutil.which(tool):
                raise RuntimeError(
                    f"{tool} is missing: the onprem_ssh row needs openssh-server and util-linux"
                )
        keys = SshKeys.make(workdir / "keys")
        wrapper = workdir / "hold_wrapper.py"
        wrapper.write_text(_HOLD_WRAPPER)
        for name in ("a", "b"):
            hold = workdir / f"hold-{name}"
            self.holds[name] = hold
            command = _FORCE_COMMAND.format(hold=hold, wrapper=wrapper)
            self.hosts[name] = FakeGpuHost(name, workdir, keys, force_command=command).start()

    def stop(self) -> None:
        for host in self.hosts.values():
            host.stop()

    def deployment_env(self, home: Path) -> dict[str, str]:
        from ssh_testing import host_entry, onprem_ssh_connection

        entries = [host_entry(host) for host in self.hosts.values()]
        self.roots = {entry["ssh_conn_id"]: entry["root"] for entry in entries}
        env = {f"AIRFLOW_CONN_GPU_{name.upper()}": host.connection() for name, host in self.hosts.items()}
        env[f"AIRFLOW_CONN_{self.conn_id.upper()}"] = onprem_ssh_connection(entries, grace_seconds=1)
        return env

    def spec(self) -> dict[str, Any]:
        return {"command": COMMAND, "max_runtime": 900}

    def _read_jobs(self) -> list[dict[str, Any]]:
        found = []
        for name, host in self.hosts.items():
            answer = subprocess.run(
                ["nsenter", "-t", str(host.init_pid), "-m", "-u", "-p", "--"]
                + ["/usr/bin/python3", "-c", _HOST_LISTING, self.roots[f"gpu_{name}"]],
                check=True,
                capture_output=True,
                text=True,
                timeout=60,
            )
            found += [{**job, "host": name} for job in json.loads(answer.stdout)]
        return found

    def jobs(self, dag_id: str, run_id: str) -> list[LiveJob]:
        """This task instance's jobs on every host. A job is active while its state is not final and
        its runner lives, or while any process of its command's group lives (whatever the state
        says); a folder whose runner never started is a create under way for the backend's start
        grace (not yet a job), then a lost (failed) job."""
        prefix = job_prefix(dag_id, run_id)
        found = []
        for job in self.listing.get():
            if not job["name"].startswith(f"{prefix}-a"):
                continue
            state = job["state"] or "PENDING"
            phase = ENDED.get(state, "active")
            if phase == "active" and not job["runner_alive"]:
                if job["runner_pid"] is None and job["age"] < START_GRACE_SECONDS:
                    continue  # being created: no job yet
                phase = "failed"
            if job["command_alive"]:
                phase = "active"
            # One name on two hosts, or two runners in one folder: the job runs twice, a duplicate.
            for _ in range(max(1, job["runners"])):
                found.append(LiveJob(job["name"], _attempt(job["name"]), phase))
        return sorted(found, key=lambda j: j.attempt)

    @contextmanager
    def api_fault(self, kind: str, seconds: float) -> Iterator[None]:
        if kind != "unreachable":
            raise NotImplementedError(
                f"{self.name} has no fault {kind!r}: sshd neither throttles nor answers 5xx"
            )
        end = time.monotonic() + seconds
        for host in self.hosts.values():
            host.sshd_down()
        try:
            yield
            time.sleep(max(0.0, end - time.monotonic()))
        finally:
            for host in self.hosts.values():
                host.restart_sshd()

    def hold_create(self, dag_id: str, run_id: str) -> bool:
        for hold in self.holds.values():  # the job may be placed on either host
            hold.write_text(f"/{job_prefix(dag_id, run_id)}-a1")
        return True
