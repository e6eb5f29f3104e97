"""A hyperparameter search on the demo data in a real Airflow deployment: what tuning gains over the
trainer's defaults, what it costs, and how long the deferrable search leaves between two trials.

One deployment (api-server, scheduler, dag-processor, triggerer; LocalExecutor on sqlite, as
``tests/live/deployment.py`` starts for the live tests) and one DAG run of four tasks, one after
another so they never compete for the CPU:

- ``default``: ``TrainModelOperator`` on-prem with the trainer's defaults, on the demo table (5,000
  rows, seed 7, as the demo DAG writes it);
- ``tune``: ``TuneModelOperator`` on the same table and spec, ``--trials`` trials (default 8),
  ``--parallel`` in flight (default 2), TPE with a seed, over ``learning_rate`` (log scale),
  ``max_depth``, ``min_child_weight`` (log) and ``subsample`` (the trainer hands every
  hyperparameter it does not know itself to ``xgb.train``). Objective ``auc_roc``: both runs use the
  trainer's own split (validation 20 %, seed 42), so every AUC is on the same 1,000 validation rows.
  Trials are costed from an on-prem CPU host row (``--price`` per hour, 2 vCPUs) under ``--budget``.
  TPE draws half the trials at random (4 of 8) before it follows its model;
- ``gaps``: the same search with ``parallel=1`` (``--gap-trials`` trials), deferrable: the trials run
  one after another, so each gap between one trial's end and the next one's submit is the
  scheduling overhead alone;
- ``gaps_blocking``: the same with ``deferrable=False``, for comparison (``--no-blocking`` skips it).

The gap is read from the trials' on-prem job folders: ``state.json``'s ``ended_at`` of trial n
(written by the job's runner when its command exits) to ``submitted_at`` of trial n+1 (written by
the task just before it spawns the runner). In deferrable mode it is made of:

1. the trigger's next poll of the ended job (``poll_interval``, here ``--poll`` s: at most one interval);
2. the settle hold: the trigger holds its event until it has run ``TRAINKIT_TRIGGER_SETTLE_SECONDS``
   (10 s by default, guarding an Airflow 3.3.2 scheduler race, see ``triggers/training.py``); a trial
   that runs longer than that after the deferral pays nothing here;
3. the triggerer writing the event and the scheduler putting the task back in the queue (its loop,
   here ``scheduler_heartbeat_sec`` 2);
4. the LocalExecutor starting a worker: a fresh task-runner process that imports Airflow, parses the
   DAG file and loads the task;
5. the step itself: the task state store read, the study rebuilt from the recorded trials, the
   finished trial's result and cost recorded, the sampler asked, the next trial recorded, submitted.

The task's own log says when its worker deferred it ("Pausing task as DEFERRED") and when a
worker started it again ("Pre Execute"), so the table splits each gap into *end -> a worker has the
task* (parts 1-4) and *worker -> next submit* (part 5), and gives the least settle hold the event
waited for (the deferral plus the settle time, minus the trial's end; the trigger started a little
after the deferral, so the real hold is longer). The triggerer's per-task trigger log keeps only a
try's last trigger, so it cannot time every event. In blocking
mode the gap is one poll interval at most plus the step: no worker start, no scheduler, no hold;
but the task holds a worker slot for the whole search.

Usage: ``python benchmarks/tuning.py [--trials 8] [--parallel 2] [--gap-trials 6] [--poll 1]
[--settle SECONDS] [--keep]``. About 6-10 minutes on two cores. Wall-clock figures depend on the
machine's load; run it on a quiet one.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import time
from datetime import datetime
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "tests" / "live"))
sys.path.insert(0, str(REPO / "tests"))

DAG_ID, RUN_ID = "tuning_bench", "bench"
TASKS = ("default", "tune", "gaps", "gaps_blocking")

# The DAG the deployment runs; its settings come from tuning_bench.json beside it.
DAG_FILE = '''"""benchmarks/tuning.py's DAG (written by the script, settings in tuning_bench.json)."""

import json
from datetime import datetime
from pathlib import Path

from airflow.sdk import DAG, chain

from airflow_trainkit.operators.training import TrainModelOperator
from airflow_trainkit.operators.tuning import TuneModelOperator

CONF = json.loads(Path(__file__).with_name("tuning_bench.json").read_text())

with DAG(dag_id="tuning_bench", schedule=None, start_date=datetime(2026, 1, 1), catchup=False):
    default = TrainModelOperator(
        task_id="default", backend="onprem", spec=CONF["spec"], poll_interval=CONF["poll"]
    )
    common = {
        "backend": "onprem",
        "spec": CONF["spec"],
        "search_space": CONF["space"],
        "objective": "auc_roc",
        "sampler": "tpe",
        "seed": CONF["seed"],
        "onprem_costs": CONF["hosts"],
        "quote_options": {"vcpus": 2},
        "trial_hours": CONF["trial_hours"],
        "poll_interval": CONF["poll"],
        "track_in_mlflow": False,
    }
    tune = TuneModelOperator(
        task_id="tune", n_trials=CONF["trials"], parallel=CONF["parallel"], budget=CONF["budget"], **common
    )
    gaps = TuneModelOperator(task_id="gaps", n_trials=CONF["gap_trials"], parallel=1, **common)
    tasks = [default, tune, gaps]
    if CONF["blocking"]:
        tasks.append(
            TuneModelOperator(
                task_id="gaps_blocking", n_trials=CONF["gap_trials"], parallel=1, deferrable=False, **common
            )
        )
    chain(*tasks)
'''

SPACE = {
    "learning_rate": {"type": "float", "low": 0.01, "high": 0.3, "log": True},
    "max_depth": {"type": "int", "low": 2, "high": 8},
    "min_child_weight": {"type": "float", "low": 0.5, "high": 20.0, "log": True},
    "subsample": {"type": "float", "low": 0.5, "high": 1.0},
}


def _when(text: str) -> float:
    return datetime.fromisoformat(text.replace("Z", "+00:00")).timestamp()


def trial_jobs(jobs_root: Path, task_id: str) -> dict[int, dict[str, Any]]:
    """trial number -> its job's ``state.json`` (with ``name``), for the search of ``task_id``."""
    from airflow_trainkit.training.identity import JobIdentity

    out: dict[int, dict[str, Any]] = {}
    number = 0
    while True:
        name = JobIdentity(DAG_ID, RUN_ID, f"{task_id}.s1.trial{number}").job_name(1)
        path = jobs_root / name / "state.json"
        if not path.exists():
            return out
        out[number] = {"name": name, **json.loads(path.read_text())}
        number += 1


def task_log_times(home: Path, task_id: str) -> tuple[list[float], list[float]]:
    """When the task's worker deferred it and when a worker started it again (epoch seconds, in
    order), from the task's own log (JSON lines)."""
    log = home / "logs" / f"dag_id={DAG_ID}" / f"run_id={RUN_ID}" / f"task_id={task_id}" / "attempt=1.log"
    deferred, started = [], []
    for line in log.read_text(errors="replace").splitlines():
        if not line.startswith("{"):
            continue
        entry = json.loads(line)
        if str(entry.get("event", "")).startswith("Pausing task as DEFERRED"):
            deferred.append(_when(entry["timestamp"]))
        elif entry.get("event") == "::group::Pre Execute":
            started.append(_when(entry["timestamp"]))
    return deferred, started


def gap_rows(
    jobs: dict[int, dict[str, Any]], deferred: list[float], started: list[float], settle: float
) -> list[dict[str, float]]:
    """Per pair of consecutive trials: the gap, split where a worker picked the task up again, and
    the settle hold it held at least (counted from the deferral; the trigger started after it)."""
    rows = []
    for n in sorted(jobs)[:-1]:
        submitted_n = _when(jobs[n]["submitted_at"])
        ended, submitted = _when(jobs[n]["ended_at"]), _when(jobs[n + 1]["submitted_at"])
        row = {"trial": n, "gap": submitted - ended, "run": ended - submitted_n}
        resumed = [t for t in started if ended <= t <= submitted]
        if resumed:
            row["to_worker"] = resumed[0] - ended
            row["to_submit"] = submitted - resumed[0]
        before = [t for t in deferred if submitted_n <= t <= ended]
        if before:
            row["hold"] = max(0.0, before[-1] + settle - ended)
        rows.append(row)
    return rows


def trial_auc(jobs_root: Path, name: str) -> float | None:
    """The AUC a trial's job wrote (``metrics.json`` in its output folder), if it wrote one."""
    output = json.loads((jobs_root / name / "job.json").read_text())["output_uri"]
    path = Path(output) / "metrics.json"
    return json.loads(path.read_text()).get("auc_roc") if path.exists() else None


def summary(values: list[float]) -> str:
    if not values:
        return "-"
    ordered = sorted(values)
    p90 = ordered[min(len(ordered) - 1, round(0.9 * (len(ordered) - 1)))]
    return f"median {statistics.median(ordered):.1f} s, p90 {p90:.1f} s, max {ordered[-1]:.1f} s"


def xcom(deployment: Any, task_id: str) -> dict[str, Any]:
    entry = deployment.get(
        f"/api/v2/dags/{DAG_ID}/dagRuns/{RUN_ID}/taskInstances/{task_id}/xcomEntries/return_value"
    )
    value = entry["value"]
    return json.loads(value) if isinstance(value, str) else value


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    parser.add_argument("--trials", type=int, default=8, help="trials of the tuned search (default 8)")
    parser.add_argument("--parallel", type=int, default=2, help="its trials in flight (default 2)")
    parser.add_argument(
        "--gap-trials", type=int, default=6, help="trials of each parallel=1 search (default 6)"
    )
    parser.add_argument("--seed", type=int, default=7, help="the sampler's seed (default 7)")
    parser.add_argument("--poll", type=float, default=1.0, help="the searches' poll_interval, s (default 1)")
    parser.add_argument(
        "--price", type=float, default=0.10, help="the CPU host's hourly price (default 0.10)"
    )
    parser.add_argument("--budget", type=float, default=0.05, help="the tuned search's budget (default 0.05)")
    parser.add_argument("--trial-hours", default="5m", help="one trial's quote basis (default 5m)")
    parser.add_argument(
        "--settle",
        type=float,
        help="TRAINKIT_TRIGGER_SETTLE_SECONDS for the deployment (default: unset, the real 10 s)",
    )
    parser.add_argument("--no-blocking", action="store_true", help="skip the deferrable=False search")
    parser.add_argument("--keep", action="store_true", help="keep the deployment's folder (its logs)")
    args = parser.parse_args()

    from deployment import Deployment

    from airflow_trainkit.demo.data import write_churn_dataset

    home = Path(tempfile.mkdtemp(prefix="tk-tuning-bench-"))
    data = home / "trainkit" / "data" / "churn_train.parquet"
    write_churn_dataset(data, rows=5000, seed=7)
    conf = {
        "spec": {
            "command": ["python", "-m", "airflow_trainkit.trainers.xgboost"],
            "inputs": {"train": str(data)},
            "hyperparameters": {"target": "churned", "drop_columns": "customer_id"},
            "max_runtime": "30m",
        },
        "space": SPACE,
        "trials": args.trials,
        "parallel": args.parallel,
        "gap_trials": args.gap_trials,
        "seed": args.seed,
        "poll": args.poll,
        "hosts": [{"name": "cpu-host", "vcpus": 2, "memory_gib": 8, "hourly_price": args.price}],
        "trial_hours": args.trial_hours,
        "budget": args.budget,
        "blocking": not args.no_blocking,
    }
    dags = home / "dag-src"
    dags.mkdir()
    (dags / "tuning_bench.py").write_text(DAG_FILE)
    (dags / "tuning_bench.json").write_text(json.dumps(conf, indent=1))
    env = {"TRAINKIT_ONPREM_GPUS": "none"}
    deployment = Deployment(home, [dags / "tuning_bench.py", dags / "tuning_bench.json"], env)
    if args.settle is not None:
        deployment.env["TRAINKIT_TRIGGER_SETTLE_SECONDS"] = str(args.settle)
    tasks = TASKS if conf["blocking"] else TASKS[:-1]
    seen: dict[str, list[str]] = {}
    began = time.monotonic()
    try:
        deployment.start()
        deployment.wait_for_dag(DAG_ID)
        deployment.trigger(DAG_ID, RUN_ID)
        for task_id in tasks:
            seen[task_id] = deployment.wait_task(
                DAG_ID, RUN_ID, task_id, {"success", "failed", "upstream_failed"}, timeout=1800
            )
            if seen[task_id][-1] != "success":
                print(
                    f"{task_id} ended {seen[task_id]}:\n{deployment.log_tail('scheduler')}", file=sys.stderr
                )
                return 1
        default, tuned = xcom(deployment, "default"), xcom(deployment, "tune")
    finally:
        deployment.stop()
    elapsed = time.monotonic() - began

    jobs_root = home / "trainkit" / "onprem-jobs"
    default_auc = default["metrics"]["auc_roc"]
    best_auc = tuned["objective"]["value"]
    trials, money = tuned["trials"], tuned["money"]
    print("## Tuning on the demo data (5,000 rows; validation: the trainer's 20 % split, seed 42)\n")
    print("| model | AUC-ROC | trials complete/pruned/failed | money spent |")
    print("|---|---|---|---|")
    print(f"| trainer defaults | {default_auc:.4f} | - | - |")
    print(
        f"| tuned ({args.trials} trials, {args.parallel} parallel, tpe seed {args.seed}) | {best_auc:.4f} | "
        f"{trials['complete']}/{trials['pruned']}/{trials['failed']} | "
        f"{money['spent']:.5f} {money['currency']} of {money['budget']} (quote {money['trial_quote']:.5f} a trial) |"
    )
    print(f"\ngain: {best_auc - default_auc:+.4f} AUC; best params: {json.dumps(tuned['params'])}")
    tune_jobs = trial_jobs(jobs_root, "tune")
    aucs = [trial_auc(jobs_root, job["name"]) for job in tune_jobs.values()]
    print("trial AUCs: " + ", ".join("-" if a is None else f"{a:.4f}" for a in aucs))
    runs = [_when(j["ended_at"]) - _when(j["submitted_at"]) for j in tune_jobs.values()]
    print(f"trial runtimes (submit -> end): {summary(runs)}")

    settle = f"{args.settle:g}" if args.settle is not None else "10 (default)"
    settle_seconds = args.settle if args.settle is not None else 10.0
    print(f"\n## Scheduling overhead per trial (parallel=1, {args.gap_trials} trials each)\n")
    print(
        f"poll_interval {args.poll:g} s, TRAINKIT_TRIGGER_SETTLE_SECONDS {settle}, scheduler heartbeat 2 s\n"
    )
    print(
        "| mode | gaps | end -> next submit | end -> a worker has the task | worker -> next submit "
        "| settle hold (at least) | trial runtime |"
    )
    print("|---|---|---|---|---|---|---|")
    deferrable_rows: list[dict[str, float]] = []
    for task_id, label in (("gaps", "deferrable"), ("gaps_blocking", "deferrable=False")):
        if task_id not in tasks:
            continue
        deferred, started = task_log_times(home, task_id)
        rows = gap_rows(trial_jobs(jobs_root, task_id), deferred, started, settle_seconds)
        if task_id == "gaps":
            deferrable_rows = rows

        def column(key: str, rows: list[dict[str, float]] = rows) -> str:
            return summary([r[key] for r in rows if key in r])

        print(
            f"| {label} | {len(rows)} | {column('gap')} | {column('to_worker')} | {column('to_submit')} "
            f"| {column('hold')} | {column('run')} |"
        )
    print("\nper gap (deferrable), s: " + ", ".join(f"{r['gap']:.1f}" for r in deferrable_rows))
    print(f"task states seen (gaps): {seen.get('gaps')}")
    print(f"\nwhole run: {elapsed:.0f} s; deployment folder: {home if args.keep else '(removed)'}")
    if not args.keep:
        import shutil

        shutil.rmtree(home, ignore_errors=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
