"""One triggerer watching many SageMaker training jobs: memory, status calls and event-loop stalls.

Starts the SageMaker fake of the tests (``tests/backends/sagemaker/_sagemaker_fake.py``) on loopback
in a process of its own, with ``--jobs`` jobs that stay InProgress, then runs one
``TrainingJobTrigger`` per job in one event loop, as a triggerer does, polling every ``--interval``
seconds. After ``--warmup`` intervals it measures over ``--intervals`` more:

- RSS over the idle footprint (idle: the process after its imports and the fake's start, before
  any trigger), at the end and at its peak;
- status calls per job per poll interval, counted at the fake (the budget: at most 1), how many
  jobs were described at all, and the TCP connections the fake accepted;
- the event loop's longest stall: a heartbeat sleeps 10 ms again and again and records how late
  it wakes (the budget: 100 ms), in the window and while the triggers start; next to it the longest
  full garbage collection (it stops every thread; its length follows the whole heap, Airflow's
  imports included, which ``--gc-freeze`` takes out of it as a triggerer could);
- the event loop thread's CPU, per status call, and the fake's CPU (the machine is shared: its
  load average is printed too).

With ``--baseline`` the same run is repeated, side by side, with the behaviour before shared
clients: one backend object per trigger, and a new aiobotocore client (TLS context, TCP connection)
per status call. Each run is a fresh interpreter. ``--pool`` sets the connection's
``max_pool_connections`` instead of ours.

Run: ``python benchmarks/triggerer_scale.py [--jobs 1000] [--interval 2] [--baseline] [--gc-freeze]``.
The product's budget: 1,000 jobs in at most 300 MiB over idle, at most one status call per job per
interval, no stall over 100 ms.
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import json
import multiprocessing
import os
import resource
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
FAKE_DIR = REPO / "tests" / "backends" / "sagemaker"
CONN_ID = "aws_trainkit_bench"
HEARTBEAT = 0.01
# A job as CreateTrainingJob would have stored it: what the fake's DescribeTrainingJob echoes back.
REQUEST = {
    "AlgorithmSpecification": {
        "TrainingImage": "683313688378.dkr.ecr.us-east-1.amazonaws.com/sagemaker-xgboost:1.7-1",
        "TrainingInputMode": "File",
    },
    "RoleArn": "arn:aws:iam::123456789012:role/TrainkitSageMakerRole",
    "OutputDataConfig": {"S3OutputPath": "s3://trainkit-bench/models"},
    "ResourceConfig": {"InstanceType": "ml.m5.xlarge", "InstanceCount": 1, "VolumeSizeInGB": 30},
    "StoppingCondition": {"MaxRuntimeInSeconds": 86400},
}


def job_names(jobs: int) -> list[str]:
    return [f"tk-bench-{i}-a1" for i in range(jobs)]


# -- the fake, in a process of its own ---------------------------------------------------------------


def serve_fake(pipe: Any, jobs: int) -> None:
    """Run the fake with ``jobs`` InProgress jobs; answer ``("stats", t0, t1)`` on ``pipe``."""
    sys.path[:0] = [str(FAKE_DIR), str(FAKE_DIR.parents[1])]  # the fake, and the tests' helpers it uses
    from _sagemaker_fake import FakeSageMaker, Job, Plan

    described: list[tuple[float, str]] = []

    class CountingFake(FakeSageMaker):
        def _DescribeTrainingJob(self, body: dict[str, Any]) -> tuple[int, dict[str, Any]]:  # noqa: N802
            described.append((time.time(), body["TrainingJobName"]))
            return super()._DescribeTrainingJob(body)

    fake = CountingFake().start()
    now = time.time()
    for name in job_names(jobs):
        request = {**REQUEST, "TrainingJobName": name}
        fake.jobs[name] = Job(plan=Plan(states=["InProgress"]), request=request, created=now)
    pipe.send(fake.endpoint_url)
    while True:
        message = pipe.recv()
        if message[0] == "stop":
            fake.stop()
            return
        if message[0] == "connections":
            pipe.send(fake.connections)
        elif message[0] == "stats":
            _, t0, t1 = message
            with fake.lock:
                window = [name for when, name in described if t0 <= when < t1]
                ever = {name for _, name in described}
            pipe.send({"calls": len(window), "jobs_in_window": len(set(window)), "jobs_ever": len(ever)})
        elif message[0] == "cpu":
            pipe.send(time.process_time())


# -- one run: N triggers in one event loop -------------------------------------------------------------


def rss_mib() -> float:
    with open("/proc/self/statm") as statm:
        return int(statm.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2**20


def register_unshared_backend() -> str:
    """The behaviour before shared clients, as a backend of its own: an object per trigger, and a new
    aiobotocore client per status call (one aiobotocore session per object)."""
    from airflow_trainkit.backends.sagemaker.backend import SageMakerBackend, _is_not_found
    from airflow_trainkit.backends.sagemaker.status import status_from_description
    from airflow_trainkit.training.backend import register_backend

    @register_backend("sagemaker_unshared")
    class UnsharedSageMakerBackend(SageMakerBackend):
        shared_per_connection = False
        clients = 0

        async def describe_async(self, job: Any) -> Any:
            from botocore.exceptions import ClientError

            job_id = self.ref(job).job_name
            if getattr(self, "_session", None) is None:
                self._session = await asyncio.to_thread(self._sagemaker_hook.get_session, deferrable=True)
            hook = self._sagemaker_hook
            context = self._session.create_client(
                "sagemaker",
                region_name=hook.region_name,
                endpoint_url=hook.conn_config.get_service_endpoint_url(service_name="sagemaker"),
                config=hook.config,
                verify=hook.verify,
            )
            async with context as client:
                type(self).clients += 1
                try:
                    response = await client.describe_training_job(TrainingJobName=job_id)
                except ClientError as err:
                    if _is_not_found(err):
                        from airflow_trainkit.exceptions import TrainingJobNotFound

                        raise TrainingJobNotFound(self.name, job_id) from None
                    raise
                region = str(client.meta.region_name)
            return status_from_description(response, region)

    return "sagemaker_unshared"


async def watch(args: argparse.Namespace, backend: str, pipe: Any) -> dict[str, Any]:
    from airflow_trainkit.triggers.training import TrainingJobTrigger

    loop = asyncio.get_running_loop()
    gc.collect()
    idle = rss_mib()
    peak = [idle]
    # The longest stall and the stalls over 100 ms, while triggers start and in the measured window.
    stalls = {"startup": [0.0, 0], "window": [0.0, 0]}
    phase = [""]
    # The longest full garbage collection in each phase: it stops every thread, the loop's too.
    full_gc = {"startup": 0.0, "window": 0.0}
    gc_started = [0.0]

    def on_gc(event: str, info: dict[str, int]) -> None:
        if info["generation"] != 2:
            return
        if event == "start":
            gc_started[0] = time.perf_counter()
        elif phase[0]:
            full_gc[phase[0]] = max(full_gc[phase[0]], time.perf_counter() - gc_started[0])

    gc.callbacks.append(on_gc)

    async def heartbeat() -> None:
        beats = 0
        while True:
            before = loop.time()
            await asyncio.sleep(HEARTBEAT)
            late = loop.time() - before - HEARTBEAT
            if phase[0]:
                record = stalls[phase[0]]
                record[0], record[1] = max(record[0], late), record[1] + (late > 0.1)
            beats += 1
            if beats % 10 == 0:
                peak[0] = max(peak[0], rss_mib())

    async def run(trigger: TrainingJobTrigger) -> None:
        async for event in trigger.run():
            raise RuntimeError(f"a job that stays InProgress ended: {event.payload}")

    beat = asyncio.create_task(heartbeat())
    phase[0] = "startup"  # a triggerer takes jobs on while it runs others: start-up counts too
    started = time.time()
    tasks = [
        asyncio.create_task(run(TrainingJobTrigger(backend, name, CONN_ID, poll_interval=args.interval)))
        for name in job_names(args.jobs)
    ]
    await asyncio.sleep(args.warmup * args.interval)
    phase[0] = ""
    pipe.send(("connections",))
    connections = pipe.recv()
    pipe.send(("cpu",))
    fake_cpu = pipe.recv()
    phase[0], t0, loop_cpu = "window", time.time(), time.thread_time()
    await asyncio.sleep(args.intervals * args.interval)
    phase[0], t1, loop_cpu = "", time.time(), time.thread_time() - loop_cpu  # measuring blocks the loop
    pipe.send(("cpu",))
    fake_cpu = pipe.recv() - fake_cpu
    pipe.send(("connections",))
    connections = pipe.recv() - connections
    pipe.send(("stats", t0, t1))
    stats = pipe.recv()
    gc.collect()
    end = rss_mib()
    ended = [t for t in tasks if t.done()]
    first_error = repr(ended[0].exception()) if ended and not ended[0].cancelled() else None
    for task in tasks:
        task.cancel()
    await asyncio.gather(*tasks, return_exceptions=True)
    beat.cancel()
    from airflow_trainkit.training.backend import get_backend, shared_backend

    if backend == "sagemaker":
        clients = shared_backend(backend, CONN_ID).async_clients_made
    else:
        clients = get_backend(backend).clients
    return {
        "jobs": args.jobs,
        "idle_mib": round(idle, 1),
        "rss_over_idle_mib": round(end - idle, 1),
        "peak_over_idle_mib": round(max(peak[0], end) - idle, 1),
        "calls_per_job_per_interval": round(stats["calls"] / args.jobs / ((t1 - t0) / args.interval), 3),
        "jobs_described_in_window": stats["jobs_in_window"],
        "jobs_described_ever": stats["jobs_ever"],
        "tcp_connections_in_window": connections,
        "aiobotocore_clients_made": clients,
        "max_loop_stall_ms": round(stalls["window"][0] * 1000, 1),
        "stalls_over_100ms": int(stalls["window"][1]),
        "max_startup_stall_ms": round(stalls["startup"][0] * 1000, 1),
        "startup_stalls_over_100ms": int(stalls["startup"][1]),
        "max_full_gc_ms": round(full_gc["window"] * 1000, 1),
        "loop_thread_cpu_percent": round(100 * loop_cpu / (t1 - t0)),
        "loop_cpu_ms_per_call": round(1000 * loop_cpu / max(stats["calls"], 1), 2),
        "load_average": round(os.getloadavg()[0], 1),
        "fake_cpu_percent": round(100 * fake_cpu / (t1 - t0)),
        "max_startup_full_gc_ms": round(full_gc["startup"] * 1000, 1),
        "triggers_ended_early": len(ended),
        "first_error": first_error,
        "seconds": round(time.time() - started, 1),
    }


def run_child(args: argparse.Namespace) -> int:
    """One mode in this (fresh) interpreter; prints one JSON line."""
    context = multiprocessing.get_context("spawn")
    ours, theirs = context.Pipe()
    fake = context.Process(target=serve_fake, args=(theirs, args.jobs), daemon=True)
    fake.start()
    endpoint = ours.recv()
    sys.path.insert(0, str(FAKE_DIR))
    from sagemaker_testing import connection_json

    extra: dict[str, Any] = {"execution_role_arn": REQUEST["RoleArn"]}
    if args.pool:  # the connection's own pool size, as a user would set it
        retries = {"mode": "standard", "total_max_attempts": 1}
        extra["config_kwargs"] = {"retries": retries, "max_pool_connections": args.pool}
    os.environ[f"AIRFLOW_CONN_{CONN_ID.upper()}"] = connection_json("http://127.0.0.1:9", endpoint, **extra)
    os.environ["AWS_CONFIG_FILE"] = os.environ["AWS_SHARED_CREDENTIALS_FILE"] = os.devnull
    # Everything a trigger imports, before the idle footprint is taken.
    import aiobotocore.session  # noqa: F401
    import botocore.session  # noqa: F401
    from airflow.providers.amazon.aws.hooks.base_aws import AwsBaseHook  # noqa: F401

    import airflow_trainkit.backends.sagemaker  # noqa: F401
    import airflow_trainkit.triggers.training  # noqa: F401

    backend = register_unshared_backend() if args.run == "baseline" else "sagemaker"
    if args.gc_freeze:  # what a triggerer could do after start-up: full collections skip the imports
        gc.collect()
        gc.freeze()
    try:
        result = asyncio.run(watch(args, backend, ours))
    finally:
        ours.send(("stop",))
        fake.join(timeout=10)
    result["mode"] = args.run
    result["peak_rss_mib"] = round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1)
    print(json.dumps(result))
    return 0


# -- side by side ---------------------------------------------------------------------------------------


ROWS = [
    ("RSS over idle at the end (MiB)", "rss_over_idle_mib"),
    ("RSS over idle at its peak (MiB)", "peak_over_idle_mib"),
    ("status calls per job per poll interval", "calls_per_job_per_interval"),
    ("jobs described in the window", "jobs_described_in_window"),
    ("event-loop thread CPU in the window (%)", "loop_thread_cpu_percent"),
    ("event-loop CPU per status call (ms)", "loop_cpu_ms_per_call"),
    ("the fake's CPU in the window (%)", "fake_cpu_percent"),
    ("TCP connections opened in the window", "tcp_connections_in_window"),
    ("aiobotocore clients made", "aiobotocore_clients_made"),
    ("triggers that ended (none should)", "triggers_ended_early"),
    ("longest event-loop stall (ms)", "max_loop_stall_ms"),
    ("stalls over 100 ms", "stalls_over_100ms"),
    ("  longest full GC pause in the window (ms)", "max_full_gc_ms"),
    ("longest stall while triggers start (ms)", "max_startup_stall_ms"),
    ("stalls over 100 ms while triggers start", "startup_stalls_over_100ms"),
    ("  of which the longest full GC pause (ms)", "max_startup_full_gc_ms"),
]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--jobs", type=int, default=1000)
    parser.add_argument("--interval", type=float, default=2.0, help="poll interval, seconds")
    parser.add_argument("--warmup", type=int, default=2, help="poll intervals before measuring")
    parser.add_argument("--intervals", type=int, default=5, help="poll intervals measured")
    parser.add_argument(
        "--baseline", action="store_true", help="also run the behaviour before shared clients"
    )
    parser.add_argument(
        "--pool", type=int, default=0, help="max_pool_connections in the connection (default: ours, 10)"
    )
    parser.add_argument(
        "--gc-freeze", action="store_true", help="gc.freeze() after the imports, before the triggers"
    )
    parser.add_argument("--run", choices=["shared", "baseline"], help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.run:
        return run_child(args)
    results = {}
    for mode in ["shared", "baseline"] if args.baseline else ["shared"]:
        command = [sys.executable, __file__, "--run", mode]
        for flag in ("jobs", "interval", "warmup", "intervals", "pool"):
            command += [f"--{flag}", str(getattr(args, flag))]
        command += ["--gc-freeze"] if args.gc_freeze else []
        done = subprocess.run(
            command, capture_output=True, text=True, env={**os.environ, "PYTHONPATH": str(REPO)}
        )
        if done.returncode != 0:
            print(done.stderr[-4000:], file=sys.stderr)
            return done.returncode
        results[mode] = json.loads(done.stdout.strip().splitlines()[-1])
    shared = results["shared"]
    print(
        f"{args.jobs} SageMaker training triggers in one event loop, polling every {args.interval:g} s; "
        f"measured over {args.intervals} intervals after {args.warmup} (idle footprint {shared['idle_mib']:.0f} MiB)"
    )
    loads = ", ".join(f"{mode} {result['load_average']}" for mode, result in results.items())
    print(f"machine load average at the end of each run: {loads}")
    header = f"{'':42} {'shared':>10}"
    if "baseline" in results:
        header += f" {'baseline':>10} {'baseline/shared':>16}"
    print(header)
    for label, key in ROWS:
        line = f"{label:42} {shared[key]:>10}"
        if "baseline" in results:
            base = results["baseline"][key]
            ratio = f"{base / shared[key]:.1f}x" if shared[key] else "-"
            line += f" {base:>10} {ratio:>16}"
        print(line)
    for mode, result in results.items():
        if result["first_error"]:
            print(f"{mode}: first trigger that ended: {result['first_error']}")
    if shared["calls_per_job_per_interval"] < 0.9:
        print(
            "fewer calls than one per job per interval: the loop (see its CPU per call) or the machine "
            "cannot poll this many jobs this often; try a longer --interval"
        )
    ok = (
        shared["rss_over_idle_mib"] <= 300
        and shared["calls_per_job_per_interval"] <= 1
        and max(shared["max_loop_stall_ms"], shared["max_startup_stall_ms"]) <= 100
        and shared["triggers_ended_early"] == 0
    )
    print(
        f"budget (300 MiB, <= 1 call per job per interval, no stall over 100 ms): {'met' if ok else 'NOT met'}"
    )
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
