"""One triggerer watching 100, 500 and 1,000 training jobs on three backends: memory, CPU, status calls,
event latency and event-loop stalls, against the product's budget.

What runs: Airflow's own trigger runner. Each N runs in a fresh interpreter that starts
``airflow.jobs.triggerer_job_runner.TriggerRunnerSupervisor`` as ``airflow triggerer`` does: it forks
the ``TriggerRunner`` subprocess, whose asyncio loop runs every trigger, and talks to it over Airflow's
own socket protocol (workloads in, events and "finished" out, once a second). The subclass
here replaces only the supervisor's metadata-DB side: instead of ``Trigger.assign_unassigned`` and
``Trigger.submit_event`` it hands ``RunTrigger`` workloads (the serialized ``TrainingJobTrigger``,
kwargs encrypted with ``Trigger.encrypt_kwargs``) to the runner and records the time each event
reaches the supervisor, where Airflow would write it to the DB. Why this and not N deferred task
instances in a DB: everything measured happens in the runner process (its memory, its CPU, its
loop, the status calls it sends, the once-a-second sync that carries events), and that process is
the same code either way; the DB side runs in the supervisor, a separate process. Building 1,000
deferred task instances would add minutes of scheduler work per N and measure sqlite, not the
triggers. The triggers run without a task instance (``ti=None``), so they log to the supervisor's
own logger instead of one log file per task.

The mix: a third of the jobs on the SageMaker HTTP fake (``tests/backends/sagemaker``), a third on
the Vertex AI fake (``tests/backends/vertex_ai``), both served from a helper process, and the rest
on-prem job directories (``state.json`` RUNNING; the "runner" pid they record is the helper
process, alive, with its start time, which is what describe checks; a run that ends writes
``state.json`` as the runner would). Status calls are counted at the fakes (per job, with times) and,
for on-prem, as opens of ``state.json`` seen by inotify in the helper process.

The cloud triggers poll every ``--interval`` seconds (default 10 s: the backends' default 30 s, three
times faster so a run fits in minutes); their accounts' rate limits are scaled by the same factor
through the connection extra ``status_calls_per_second`` (SageMaker 10/s -> 30/s, Vertex 8/s ->
24/s), so the limiter is as busy relative to the interval as it is in production.
``--interval 30`` runs the real rates. On-prem triggers poll at their backend's default, 2 s.
``TRAINKIT_TRIGGER_SETTLE_SECONDS`` is 0 here: the 10 s hold protects against an Airflow 3.3.2
scheduler race for jobs that end within seconds of deferring; every job here ran for minutes.

Measured per N, in the runner process:

- RSS over the runner's idle footprint (the runner started, every SDK the triggers use already
  imported in it, no trigger yet), at the end of the window and at its peak;
- CPU of the runner process (all its threads) and of its event-loop thread, in the window;
- status calls per job per poll interval (jobs still running, in the window) and the shortest gap
  between two calls for one job, in intervals (the budget: never under one);
- the latency from a job's end (10 % of the jobs end at known times in the window) to its event at
  the supervisor, in poll intervals of that job;
- event-loop stalls: a probe trigger sleeps 10 ms again and again and records how late it wakes:
  p99 and max in the window, and max while the N triggers start.

Run: ``python benchmarks/triggerer_scale.py`` (N = 100, 500, 1000; each a fresh process) or
``--jobs 1000`` for one N. ``--baseline`` was dropped: the behaviour it compared (a client per
status call) is gone from the code, and its figures stay in docs/architecture.md.
"""

from __future__ import annotations

import argparse
import ctypes
import gc
import json
import math
import os
import signal
import struct
import subprocess
import sys
import tempfile
import threading
import time
from collections import defaultdict
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
TESTS = REPO / "tests"
SM_DIR = TESTS / "backends" / "sagemaker"
VX_DIR = TESTS / "backends" / "vertex_ai"
SM_CONN, VX_CONN, OP_CONN = "aws_trainkit_bench", "gcp_trainkit_bench", "trainkit_onprem_bench"
ONPREM_INTERVAL = 2.0  # the on-prem backend's own poll_interval
PRODUCTION_INTERVAL = 30.0  # the cloud backends' own poll_interval
HEARTBEAT = 0.01
ENDED_SHARE = 0.1
BUDGET_MIB = 300.0
BUDGET_LATENCY_INTERVALS = 2.0
BUDGET_STALL_P99_MS = 100.0
# Gaps are timed where the calls arrive (the fakes' threads, the inotify reader), not where the
# trigger starts them: a call that waited in a thread pool's queue (on-prem reads, Vertex's client)
# or in a late-woken thread arrives late, and its gap to the next call looks that much shorter.
GAP_TOLERANCE = 0.95
RESULT = "RESULT "

SM_REQUEST = {
    "AlgorithmSpecification": {
        "TrainingImage": "683313688378.dkr.ecr.us-east-1.amazonaws.com/sagemaker-xgboost:1.7-1",
        "TrainingInputMode": "File",
    },
    "RoleArn": "arn:aws:iam::123456789012:role/TrainkitSageMakerRole",
    "OutputDataConfig": {"S3OutputPath": "s3://trainkit-bench/models"},
    "ResourceConfig": {"InstanceType": "ml.m5.xlarge", "InstanceCount": 1, "VolumeSizeInGB": 30},
    "StoppingCondition": {"MaxRuntimeInSeconds": 86400},
}


def plan_jobs(jobs: int) -> dict[str, list[str]]:
    """Job names per backend: a third SageMaker, a third Vertex AI, the rest on-prem."""
    third = jobs // 3
    return {
        "sagemaker": [f"tk-bench-sm-{i}-a1" for i in range(third)],
        "vertex_ai": [f"tk-bench-vx-{i}-a1" for i in range(third)],
        "onprem": [f"tk-bench-op-{i}-a1" for i in range(jobs - 2 * third)],
    }


def vertex_handle(index: int) -> str:
    return f"projects/trainkit-test-project/locations/europe-west4/customJobs/{7_000_000_000 + index}"


# -- the helper process: both fakes, the on-prem jobs, the counting and the ending ----------------------

IN_OPEN = 0x20


class OpenCounter:
    """Opens of ``state.json`` in each job directory, by inotify (what a describe of an on-prem job reads)."""

    def __init__(self, dirs: dict[str, Path]) -> None:
        self.libc = ctypes.CDLL(None, use_errno=True)
        self.fd = self.libc.inotify_init1(0)
        if self.fd < 0:
            raise OSError(ctypes.get_errno(), "inotify_init1")
        self.by_watch: dict[int, str] = {}
        for job, path in dirs.items():
            watch = self.libc.inotify_add_watch(self.fd, str(path).encode(), IN_OPEN)
            if watch < 0:
                raise OSError(ctypes.get_errno(), f"inotify_add_watch {path}")
            self.by_watch[watch] = job
        self.opens: list[tuple[float, str]] = []
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self) -> None:
        header = struct.Struct("iIII")
        while True:
            data = os.read(self.fd, 1 << 16)
            now = time.time()
            offset = 0
            while offset < len(data):
                watch, _mask, _cookie, length = header.unpack_from(data, offset)
                name = data[offset + header.size : offset + header.size + length].rstrip(b"\0")
                offset += header.size + length
                if name == b"state.json":
                    self.opens.append((now, self.by_watch[watch]))


def serve(pipe: Any, jobs: int, root: str) -> None:
    """The fakes with every job running, the on-prem job directories, the status-call counts and
    the scheduled ends; answers the benchmark on ``pipe``."""
    sys.path[:0] = [str(SM_DIR), str(VX_DIR), str(TESTS)]
    from datetime import UTC, datetime

    from _sagemaker_fake import FakeSageMaker
    from _sagemaker_fake import Job as SmJob
    from _sagemaker_fake import Plan as SmPlan
    from _vertex_fake import FakeVertex, _custom_job_message, _set_state
    from _vertex_fake import Job as VxJob
    from _vertex_fake import Plan as VxPlan

    from airflow_trainkit.backends.onprem import ROOT_MARKER
    from airflow_trainkit.backends.onprem.agent import op_prepare, process_start_ticks, utcnow
    from airflow_trainkit.backends.onprem.runner import write_private_atomic

    calls: dict[str, list[tuple[float, str]]] = {"sagemaker": [], "vertex_ai": []}

    class CountingSageMaker(FakeSageMaker):
        def _DescribeTrainingJob(self, body: dict[str, Any]) -> tuple[int, dict[str, Any]]:  # noqa: N802
            calls["sagemaker"].append((time.time(), body["TrainingJobName"]))
            return super()._DescribeTrainingJob(body)

    class CountingVertex(FakeVertex):
        def _get(self, name: str) -> tuple[int, dict[str, Any]]:
            calls["vertex_ai"].append((time.time(), name))
            return super()._get(name)

    names = plan_jobs(jobs)
    sagemaker, vertex = CountingSageMaker().start(), CountingVertex().start()
    now = time.time()
    for name in names["sagemaker"]:
        request = {**SM_REQUEST, "TrainingJobName": name}
        sagemaker.jobs[name] = SmJob(plan=SmPlan(states=["InProgress"]), request=request, created=now)
    created = datetime.now(UTC).replace(microsecond=0)
    for index, name in enumerate(names["vertex_ai"]):
        message = _custom_job_message()
        message.name = vertex_handle(index)
        message.display_name = name
        pool = message.job_spec.worker_pool_specs.add()
        pool.machine_spec.machine_type = "n1-standard-4"
        pool.replica_count = 1
        pool.container_spec.image_uri = "europe-docker.pkg.dev/vertex-ai/training/xgboost-cpu.2-1:latest"
        message.job_spec.base_output_directory.output_uri_prefix = f"gs://trainkit-bench/models/{name}"
        for stamp in (message.create_time, message.update_time, message.start_time):
            stamp.FromDatetime(created)
        _set_state(message, "RUNNING")
        vertex.jobs[message.name] = VxJob(plan=VxPlan(states=["RUNNING"]), message=message, created=created)
    # On-prem: real job directories as the backend's own agent makes them, with a live runner pid.
    me, ticks = os.getpid(), process_start_ticks(os.getpid())
    dirs, states = {}, {}
    for name in names["onprem"]:
        state = {
            "state": "RUNNING",
            "message": "running train.py (bench)",
            "submitted_at": utcnow(),
            "started_at": utcnow(),
            "runner_pid": me,
            "runner_start_ticks": ticks,
        }
        record = {"command": ["python", "train.py"], "output_uri": f"{root}/outputs/{name}"}
        op_prepare(root, name, json.dumps(record), json.dumps(state))
        states[name] = state  # kept here: reading state.json back would count as a status call
        dirs[name] = Path(root) / name
    assert (Path(root) / ROOT_MARKER).exists()
    opens = OpenCounter(dirs)
    ended: dict[str, float] = {}

    def end(backend: str, name: str) -> None:
        if backend == "sagemaker":
            with sagemaker.lock:
                sagemaker.jobs[name].end_as("Completed")
        elif backend == "vertex_ai":
            with vertex.lock:
                vertex.jobs[vertex_handle(names["vertex_ai"].index(name))].end_as("SUCCEEDED")
        else:
            path = dirs[name] / "state.json"
            state = states[name]
            state.update(state="SUCCEEDED", ended_at=utcnow(), exit_code=0, message="exit 0")
            write_private_atomic(path, json.dumps(state).encode())
        ended[name] = time.time()

    def ender(schedule: list[tuple[float, str, str]]) -> None:
        for when, backend, name in sorted(schedule):
            time.sleep(max(0.0, when - time.time()))
            end(backend, name)

    pipe.send({"sagemaker": sagemaker.endpoint_url, "vertex_ai": vertex.endpoint_url, "pid": me})
    while True:
        message = pipe.recv()
        if message[0] == "stop":
            sagemaker.stop()
            vertex.stop()
            return
        if message[0] == "end":
            threading.Thread(target=ender, args=(message[1],), daemon=True).start()
        elif message[0] == "cpu":
            pipe.send(time.process_time())
        elif message[0] == "calls":
            with sagemaker.lock, vertex.lock:
                pipe.send(
                    {
                        "sagemaker": list(calls["sagemaker"]),
                        "vertex_ai": [
                            (t, names["vertex_ai"][int(h.rsplit("/", 1)[1]) - 7_000_000_000])
                            for t, h in calls["vertex_ai"]
                        ],
                        "onprem": list(opens.opens),
                        "ended": dict(ended),
                    }
                )


# -- the stall probe: a trigger in the runner's own loop ---------------------------------------------------

from airflow.triggers.base import BaseTrigger, TriggerEvent  # noqa: E402 - only the probe needs it


class StallProbe(BaseTrigger):
    """Sleeps 10 ms again and again in the trigger runner's loop and records how late it wakes: while the
    triggers start (until ``window_start``) and in the window; yields the figures at ``window_end``."""

    def __init__(self, window_start: float, window_end: float, profile: str | None = None) -> None:
        super().__init__()
        self.window_start = window_start
        self.window_end = window_end
        self.profile = profile

    def serialize(self) -> tuple[str, dict[str, Any]]:
        return (
            f"{StallProbe.__module__}.StallProbe",
            {"window_start": self.window_start, "window_end": self.window_end, "profile": self.profile},
        )

    async def run(self) -> Any:
        import asyncio

        loop = asyncio.get_running_loop()
        late: dict[str, list[float]] = {"startup": [], "window": []}
        full_gc = {"startup": 0.0, "window": 0.0}
        gc_started = [0.0]

        def phase() -> str | None:
            now = time.time()
            return "startup" if now < self.window_start else "window" if now < self.window_end else None

        def on_gc(event: str, info: dict[str, int]) -> None:
            if info["generation"] != 2:
                return
            if event == "start":
                gc_started[0] = time.perf_counter()
            elif (name := phase()) is not None:
                full_gc[name] = max(full_gc[name], time.perf_counter() - gc_started[0])

        gc.callbacks.append(on_gc)
        loop_cpu = None
        profiler = None
        try:
            while time.time() < self.window_end:
                name = phase()
                if name == "window" and loop_cpu is None:
                    loop_cpu = time.thread_time()
                    if self.profile:  # the loop thread's time by function, in the window
                        import cProfile

                        profiler = cProfile.Profile()
                        profiler.enable()
                before = loop.time()
                await asyncio.sleep(HEARTBEAT)
                if name is not None:
                    late[name].append(loop.time() - before - HEARTBEAT)
        finally:
            gc.callbacks.remove(on_gc)
            if profiler is not None:
                profiler.disable()
                profiler.dump_stats(str(self.profile))
        cpu = time.thread_time() - (loop_cpu or time.thread_time())
        window = self.window_end - self.window_start

        def p(values: list[float], q: float) -> float:
            return 1000 * sorted(values)[min(len(values) - 1, int(q * len(values)))] if values else 0.0

        yield TriggerEvent(
            {
                "probe": {
                    "stall_p99_ms": round(p(late["window"], 0.99), 1),
                    "stall_max_ms": round(1000 * max(late["window"], default=0.0), 1),
                    "stalls_over_100ms": sum(v > 0.1 for v in late["window"]),
                    "startup_stall_max_ms": round(1000 * max(late["startup"], default=0.0), 1),
                    "startup_stall_p99_ms": round(p(late["startup"], 0.99), 1),
                    "full_gc_max_ms": round(1000 * full_gc["window"], 1),
                    "startup_full_gc_max_ms": round(1000 * full_gc["startup"], 1),
                    "loop_thread_cpu_percent": round(100 * cpu / window),
                }
            }
        )


# The machine's own stalls in the same window: a lone event loop doing the probe's 10 ms sleeps in a
# process of its own (the machine is shared: other processes' load shows up in the probe too).
CONTROL = """
import asyncio, json, sys, time
async def main(start, end):
    loop, late = asyncio.get_running_loop(), []
    while time.time() < end:
        before = loop.time()
        await asyncio.sleep(0.01)
        if time.time() >= start:
            late.append(loop.time() - before - 0.01)
    late.sort()
    print(json.dumps({"p99": 1000 * late[int(0.99 * (len(late) - 1))], "max": 1000 * late[-1]}))
asyncio.run(main(float(sys.argv[1]), float(sys.argv[2])))
"""


# -- one N in this (fresh) interpreter ----------------------------------------------------------------


def proc_rss_mib(pid: int) -> float:
    with open(f"/proc/{pid}/statm") as statm:
        return int(statm.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2**20


def proc_cpu_seconds(pid: int) -> float:
    with open(f"/proc/{pid}/stat") as stat:
        fields = stat.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def run_one(args: argparse.Namespace) -> dict[str, Any]:
    import multiprocessing

    jobs, interval = args.jobs, args.interval
    scale = PRODUCTION_INTERVAL / interval
    home = Path(tempfile.mkdtemp(prefix="tk-triggerer-scale-"))
    root = home / "onprem-jobs"
    os.environ.update(
        AIRFLOW_HOME=str(home / "airflow"),
        TRAINKIT_TRIGGER_SETTLE_SECONDS="0",
        TRAINKIT_ONPREM_GPUS="none",
        AWS_CONFIG_FILE=os.devnull,
        AWS_SHARED_CREDENTIALS_FILE=os.devnull,
    )
    context = multiprocessing.get_context("spawn")
    ours, theirs = context.Pipe()
    helper = context.Process(target=serve, args=(theirs, jobs, str(root)), daemon=True)
    helper.start()
    endpoints = ours.recv()
    sys.path[:0] = [str(SM_DIR), str(VX_DIR)]
    import sagemaker_testing
    import vertex_testing

    from airflow_trainkit.backends.sagemaker.backend import SageMakerBackend
    from airflow_trainkit.backends.vertex_ai.backend import VertexAIBackend

    # The accounts' limits, scaled with the interval (see the module docstring).
    sm_rate = SageMakerBackend.status_calls_per_second * scale
    vx_rate = VertexAIBackend.status_calls_per_second * scale
    os.environ[f"AIRFLOW_CONN_{SM_CONN.upper()}"] = sagemaker_testing.connection_json(
        "http://127.0.0.1:9",
        endpoints["sagemaker"],
        execution_role_arn=SM_REQUEST["RoleArn"],
        status_calls_per_second=sm_rate,
    )
    os.environ[f"AIRFLOW_CONN_{VX_CONN.upper()}"] = vertex_testing.connection_json(
        endpoints["vertex_ai"], status_calls_per_second=vx_rate
    )
    os.environ[f"AIRFLOW_CONN_{OP_CONN.upper()}"] = json.dumps(
        {"conn_type": "trainkit_onprem", "extra": {"root": str(root)}}
    )
    # Everything the triggers import, before the runner forks: its idle footprint has the SDKs.
    import aiobotocore.session  # noqa: F401
    import botocore.session  # noqa: F401
    import google.auth.transport.requests  # noqa: F401
    from airflow.executors.workloads import RunTrigger
    from airflow.jobs.triggerer_job_runner import TriggerRunnerSupervisor
    from airflow.models.trigger import Trigger
    from airflow.providers.amazon.aws.hooks.base_aws import AwsBaseHook  # noqa: F401
    from google.cloud.aiplatform_v1 import JobServiceClient  # noqa: F401

    import airflow_trainkit.backends.onprem  # noqa: F401
    import airflow_trainkit.hooks.onprem  # noqa: F401
    from airflow_trainkit.triggers.training import TrainingJobTrigger

    events: dict[int, tuple[float, dict[str, Any]]] = {}
    failures: dict[int, Any] = {}

    class BenchSupervisor(TriggerRunnerSupervisor):
        """Airflow's supervisor with the metadata DB replaced by this benchmark (see the docstring)."""

        def load_triggers(self) -> None:
            pass

        def heartbeat(self) -> None:
            pass

        def clean_unused(self) -> None:
            pass

        def metric_tags(self) -> dict[str, str]:
            return {"hostname": "triggerer-scale"}

        def on_trigger_event(self, trigger_id: int, event: Any) -> None:
            events[trigger_id] = (time.time(), event.payload)

        def on_trigger_failure(self, trigger_id: int, exc: Any) -> None:
            failures[trigger_id] = exc

    def workload(trigger_id: int, trigger: BaseTrigger) -> Any:
        classpath, kwargs = trigger.serialize()
        return RunTrigger(id=trigger_id, classpath=classpath, encrypted_kwargs=Trigger.encrypt_kwargs(kwargs))

    names = plan_jobs(jobs)
    os.environ["_AIRFLOW_PROCESS_CONTEXT"] = "server"
    gc.collect()
    supervisor = BenchSupervisor.start(job=None, capacity=jobs + 10)
    runner_pid = supervisor.pid
    # The idle footprint: the runner's first syncs done, no trigger yet.
    settle_until = time.time() + 3
    while time.time() < settle_until:
        supervisor.run_once()
    idle = proc_rss_mib(runner_pid)

    started = time.time()
    window_start = started + args.warmup * interval
    window_end = window_start + args.intervals * interval
    triggers: dict[int, tuple[str, str]] = {}
    supervisor.creating_triggers.append(workload(0, StallProbe(window_start, window_end, args.profile)))
    control = subprocess.Popen(
        [sys.executable, "-c", CONTROL, str(window_start), str(window_end)], stdout=subprocess.PIPE, text=True
    )
    conns = {"sagemaker": SM_CONN, "vertex_ai": VX_CONN, "onprem": OP_CONN}
    next_id = 1
    for backend, backend_names in names.items():
        for index, name in enumerate(backend_names):
            ref = {"backend": backend, "job_name": name}
            if backend == "vertex_ai":
                ref["handle"] = vertex_handle(index)
            trigger = TrainingJobTrigger(
                backend,
                ref,
                conns[backend],
                poll_interval=None if backend == "onprem" else interval,
                stop_on_kill=False,
            )
            supervisor.creating_triggers.append(workload(next_id, trigger))
            triggers[next_id] = (backend, name)
            next_id += 1
    # A share of each backend's jobs ends at known times in the window's first interval (every one
    # then has at least args.intervals - 1 intervals to report before the window closes).
    schedule = []
    for backend, backend_names in names.items():
        chosen = backend_names[:: round(1 / ENDED_SHARE)]
        for k, name in enumerate(chosen):
            schedule.append((window_start + interval * (k + 0.5) / len(chosen), backend, name))
    ours.send(("end", schedule))
    ended_names = {name for _, _, name in schedule}

    peak = idle
    at_start: tuple[float, float, float] | None = None  # runner CPU, time, helper CPU
    at_end: dict[str, float] | None = None
    waited_for = [i for i, (_, n) in triggers.items() if n in ended_names] + [0]
    while True:
        supervisor.run_once()
        now = time.time()
        peak = max(peak, proc_rss_mib(runner_pid))
        if at_start is None and now >= window_start:
            ours.send(("cpu",))
            at_start = proc_cpu_seconds(runner_pid), now, ours.recv()
        if at_end is None and at_start is not None and now >= window_end:
            ours.send(("cpu",))
            helper_cpu = ours.recv()
            at_end = {
                "runner_cpu": (proc_cpu_seconds(runner_pid) - at_start[0]) / (now - at_start[1]),
                "helper_cpu": (helper_cpu - at_start[2]) / (now - at_start[1]),
                "rss": proc_rss_mib(runner_pid),
            }
        if at_end is not None and (all(i in events for i in waited_for) or now >= window_end + 2 * interval):
            break
    runner_cpu, helper_cpu, end_rss = at_end["runner_cpu"], at_end["helper_cpu"], at_end["rss"]
    machine = json.loads(control.communicate(timeout=30)[0])
    ours.send(("calls",))
    seen = ours.recv()
    supervisor.kill(signal.SIGTERM, escalation_delay=10, force=True)
    ours.send(("stop",))
    helper.join(timeout=10)

    # -- the figures -------------------------------------------------------------------------------
    probe = events.get(0, (0, {"probe": {}}))[1]["probe"]
    by_name = {name: (backend, i) for i, (backend, name) in triggers.items()}
    per_backend = {}
    intervals = {"sagemaker": interval, "vertex_ai": interval, "onprem": ONPREM_INTERVAL}
    all_latencies = []
    worst_gap = math.inf
    for backend, backend_names in names.items():
        every = interval_of = intervals[backend]
        times = defaultdict(list)
        for when, name in seen[backend]:
            times[name].append(when)
        running = [n for n in backend_names if n not in ended_names]
        in_window = sum(1 for n in running for t in times[n] if window_start <= t < window_end)
        gaps = [
            b - a for n in backend_names for a, b in zip(sorted(times[n]), sorted(times[n])[1:], strict=False)
        ]
        min_gap = min(gaps, default=math.inf) / every
        worst_gap = min(worst_gap, min_gap)
        latencies = []
        for name in backend_names:
            if name in ended_names:
                trigger_id = by_name[name][1]
                if trigger_id in events and name in seen["ended"]:
                    latencies.append((events[trigger_id][0] - seen["ended"][name]) / interval_of)
                else:
                    latencies.append(math.inf)
        all_latencies += latencies
        per_backend[backend] = {
            "jobs": len(backend_names),
            "interval_s": every,
            "calls_per_job_per_interval": round(
                in_window / max(len(running), 1) / (args.intervals * interval / every), 2
            ),
            "min_gap_intervals": round(min_gap, 2),
            "never_called": sum(1 for n in backend_names if not times[n]),
            "latency_p95_intervals": round(sorted(latencies)[int(0.95 * (len(latencies) - 1))], 2)
            if latencies
            else None,
        }
    early = [i for i, (_, n) in triggers.items() if i in events and n not in ended_names]
    wrong = [
        i
        for i, (_, n) in triggers.items()
        if i in events and n in ended_names and events[i][1].get("status") != "done"
    ]
    all_latencies.sort()
    return {
        "jobs": jobs,
        "interval": interval,
        "idle_mib": round(idle, 1),
        "rss_over_idle_mib": round(end_rss - idle, 1),
        "peak_over_idle_mib": round(peak - idle, 1),
        "runner_cpu_percent": round(100 * runner_cpu),
        "helper_cpu_percent": round(100 * helper_cpu),
        "calls_per_job_per_interval": max(b["calls_per_job_per_interval"] for b in per_backend.values()),
        "min_gap_intervals": round(worst_gap, 2),
        "latency_p95_intervals": round(all_latencies[int(0.95 * (len(all_latencies) - 1))], 2),
        "latency_max_intervals": round(all_latencies[-1], 2),
        "ended_jobs": len(all_latencies),
        "events_early": len(early),
        "events_not_done": len(wrong),
        "failures": len(failures),
        "load_average": round(os.getloadavg()[0], 1),
        "machine_stall_p99_ms": round(machine["p99"], 1),
        "machine_stall_max_ms": round(machine["max"], 1),
        "backends": per_backend,
        "limits_per_second": {"sagemaker": sm_rate, "vertex_ai": vx_rate, "onprem": None},
        **probe,
        "seconds": round(time.time() - started, 1),
    }


# -- the table ----------------------------------------------------------------------------------------------

COLUMNS = [
    ("N", "jobs", "{:>5}"),
    ("RSS+ MiB", "rss_over_idle_mib", "{:>8}"),
    ("peak+", "peak_over_idle_mib", "{:>6}"),
    ("CPU %", "runner_cpu_percent", "{:>5}"),
    ("loop %", "loop_thread_cpu_percent", "{:>6}"),
    ("calls/job/int", "calls_per_job_per_interval", "{:>13}"),
    ("min gap (int)", "min_gap_intervals", "{:>13}"),
    ("lat p95 (int)", "latency_p95_intervals", "{:>13}"),
    ("lat max", "latency_max_intervals", "{:>7}"),
    ("stall p99 ms", "stall_p99_ms", "{:>12}"),
    ("stall max", "stall_max_ms", "{:>9}"),
    ("start max", "startup_stall_max_ms", "{:>9}"),
    ("start GC", "startup_full_gc_max_ms", "{:>8}"),
    ("full GC ms", "full_gc_max_ms", "{:>10}"),
    ("machine p99/max", "machine_stalls", "{:>15}"),
]


def budget(result: dict[str, Any]) -> list[tuple[str, bool]]:
    """The product's budget, one line each."""
    return [
        (
            f"RSS over idle <= {BUDGET_MIB:.0f} MiB (peak {result['peak_over_idle_mib']} MiB)",
            result["rss_over_idle_mib"] <= BUDGET_MIB,
        ),
        (
            f"at most one status call per job per interval (shortest gap >= {GAP_TOLERANCE:g} interval, timed at the fakes)",
            result["min_gap_intervals"] >= GAP_TOLERANCE and result["calls_per_job_per_interval"] <= 1.0,
        ),
        (
            f"event latency p95 <= {BUDGET_LATENCY_INTERVALS:g} poll intervals",
            result["latency_p95_intervals"] <= BUDGET_LATENCY_INTERVALS,
        ),
        (
            f"event-loop stalls p99 < {BUDGET_STALL_P99_MS:.0f} ms",
            result.get("stall_p99_ms", math.inf) < BUDGET_STALL_P99_MS,
        ),
        (
            "every ended job got a done event, no other job an event, no trigger failed",
            result["events_early"] == 0
            and result["events_not_done"] == 0
            and result["failures"] == 0
            and not math.isinf(result["latency_max_intervals"]),
        ),
    ]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--jobs", type=int, help="one N only (default: 100, 500 and 1000, each in a fresh process)"
    )
    parser.add_argument(
        "--interval", type=float, default=10.0, help="cloud triggers' poll interval, s (default 10)"
    )
    parser.add_argument(
        "--warmup", type=float, default=1.5, help="poll intervals before the window (default 1.5)"
    )
    parser.add_argument("--intervals", type=int, default=3, help="poll intervals measured (default 3)")
    parser.add_argument("--profile", help="write a cProfile of the runner's loop thread in the window here")
    parser.add_argument("--run", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.run:
        print(RESULT + json.dumps(run_one(args)), flush=True)
        return 0
    results = []
    for jobs in [args.jobs] if args.jobs else [100, 500, 1000]:
        command = [sys.executable, __file__, "--run", "--jobs", str(jobs)]
        for flag in ("interval", "warmup", "intervals"):
            command += [f"--{flag}", str(getattr(args, flag))]
        command += ["--profile", f"{args.profile}.{jobs}"] if args.profile else []
        with tempfile.TemporaryFile("w+") as log:
            done = subprocess.run(
                command,
                stdout=subprocess.PIPE,
                stderr=log,
                text=True,
                env={**os.environ, "PYTHONPATH": str(REPO)},
            )
            lines = [line for line in done.stdout.splitlines() if line.startswith(RESULT)]
            if done.returncode != 0 or not lines:
                log.seek(0)
                print(log.read()[-4000:], file=sys.stderr)
                return done.returncode or 1
        results.append(json.loads(lines[-1][len(RESULT) :]))
        results[-1]["machine_stalls"] = (
            f"{results[-1]['machine_stall_p99_ms']:.0f}/{results[-1]['machine_stall_max_ms']:.0f}"
        )
        print(f"N={jobs} done in {results[-1]['seconds']} s", file=sys.stderr)
    first = results[0]
    print(
        f"TrainingJobTriggers in one Airflow trigger runner: 1/3 SageMaker fake, 1/3 Vertex AI fake, 1/3 on-prem job dirs; "
        f"cloud poll interval {first['interval']:g} s (limits {first['limits_per_second']['sagemaker']:g}/s and "
        f"{first['limits_per_second']['vertex_ai']:g}/s per account), on-prem {ONPREM_INTERVAL:g} s; "
        f"idle runner footprint {first['idle_mib']:.0f} MiB; 10 % of the jobs end in the window"
    )
    print(" ".join(fmt.format(title) for title, _, fmt in COLUMNS))
    for result in results:
        print(" ".join(fmt.format(result.get(key, "-")) for _, key, fmt in COLUMNS))
    print("per backend (calls/job/interval, min gap, latency p95 in intervals):")
    for result in results:
        parts = [
            f"{name} {b['calls_per_job_per_interval']}/{b['min_gap_intervals']}/{b['latency_p95_intervals']}"
            for name, b in result["backends"].items()
        ]
        print(f"  N={result['jobs']}: " + ", ".join(parts) + f"; load average {result['load_average']}")
    ok = True
    for result in results:
        print(f"budget at N={result['jobs']}:")
        for line, passed in budget(result):
            ok &= passed
            print(f"  {'PASS' if passed else 'FAIL'}  {line}")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
