"""Parse time of each example DAG as a ratio to ``import airflow.sdk``, measured side by side.

Each sample is a fresh interpreter that first imports ``airflow.sdk`` and then imports the DAG file,
as a DAG processor does, reading its own CPU time (user + system) before, between and after. The
ratio ``(import + parse) / import`` is taken within one process, so the machine's noise, which moves
a whole interpreter's time by 10 % and more from one run to the next on a shared 2-core machine,
hits both parts alike. A plain Airflow DAG with no trainkit import shows what Airflow itself costs a
DAG file beyond the bare import.
Budget: a DAG file that uses trainkit costs at most 1.05x the bare import (our modules import no heavy
SDK at parse time). Usage: ``python benchmarks/parse_time.py [--rounds N]``.
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
# Import airflow.sdk, then import the DAG file under a module name of its own, timing both.
PROBE = """
import json, resource, sys, time
def cpu():
    r = resource.getrusage(resource.RUSAGE_SELF)
    return r.ru_utime + r.ru_stime
c0, w0 = cpu(), time.perf_counter()
import airflow.sdk
c1, w1 = cpu(), time.perf_counter()
import importlib.util
spec = importlib.util.spec_from_file_location("bench_dag", sys.argv[1])
module = importlib.util.module_from_spec(spec)
spec.loader.exec_module(module)
c2, w2 = cpu(), time.perf_counter()
print(json.dumps({"sdk_cpu": c1 - c0, "dag_cpu": c2 - c1, "sdk_wall": w1 - w0, "dag_wall": w2 - w1}))
"""
PLAIN_DAG = (
    "from datetime import datetime\nfrom airflow.sdk import dag, task\n"
    "@dag(schedule=None, start_date=datetime(2026, 1, 1))\ndef plain():\n"
    "    @task\n    def a(): pass\n    a()\nplain()\n"
)
BUDGET = 1.05


def probe(dag_file: Path) -> dict[str, float]:
    out = subprocess.run(
        [sys.executable, "-c", PROBE, str(dag_file)], check=True, capture_output=True, text=True
    ).stdout
    return json.loads(out.strip().splitlines()[-1])


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--rounds", type=int, default=5)
    args = parser.parse_args()
    plain = Path(tempfile.mkdtemp()) / "plain_dag.py"
    plain.write_text(PLAIN_DAG)
    files = [plain, *sorted((REPO / "example_dags").glob("*.py"))]
    probe(plain)  # warm the file cache once
    samples: dict[Path, list[dict[str, float]]] = {f: [] for f in files}
    for _ in range(args.rounds):  # round-robin, so a noisy minute hits every file alike
        for dag_file in files:
            samples[dag_file].append(probe(dag_file))
    print(f"{'DAG file':36} {'sdk cpu s':>9} {'parse cpu s':>11} {'cpu ratio':>9} {'wall ratio':>10}")
    worst = 0.0
    for dag_file in files:
        runs = samples[dag_file]
        ratio = statistics.median((r["sdk_cpu"] + r["dag_cpu"]) / r["sdk_cpu"] for r in runs)
        wall = statistics.median((r["sdk_wall"] + r["dag_wall"]) / r["sdk_wall"] for r in runs)
        sdk = statistics.median(r["sdk_cpu"] for r in runs)
        parse = statistics.median(r["dag_cpu"] for r in runs)
        if dag_file != plain:
            worst = max(worst, ratio)
        name = "(plain Airflow DAG, no trainkit)" if dag_file == plain else dag_file.name
        print(f"{name:36} {sdk:9.2f} {parse:11.3f} {ratio:9.3f} {wall:10.3f}")
    verdict = "within" if worst <= BUDGET else "OVER"
    print(
        f"worst CPU ratio of an example DAG {worst:.3f} ({verdict} the {BUDGET}x budget; "
        f"medians of {args.rounds} rounds)"
    )
    return 0 if worst <= BUDGET else 1


if __name__ == "__main__":
    sys.exit(main())
