"""Parse time of each example DAG as a ratio to ``import airflow.sdk``, measured side by side.

Each sample is a fresh interpreter, alternating baseline and DAG so machine noise hits both alike.
The verdict uses CPU time (user + system of the child), which a busy shared machine disturbs far
less than wall time; wall-time ratios are printed too. A second baseline, a plain Airflow DAG with
no trainkit import, shows what Airflow itself costs a DAG file beyond the bare import.
Budget (PRODUCT.md): at most 1.05x. Usage: ``python benchmarks/parse_time.py [--rounds N]``.
"""

from __future__ import annotations

import argparse
import resource
import statistics
import subprocess
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
BASELINE = "import airflow.sdk"
# What a DAG processor does with a file: import it (module name unique per file).
PARSE = (
    "import importlib.util, sys; p = sys.argv[1]; "
    "s = importlib.util.spec_from_file_location('bench_dag', p); m = importlib.util.module_from_spec(s); "
    "s.loader.exec_module(m)"
)
PLAIN_DAG = (
    "from datetime import datetime\nfrom airflow.sdk import dag, task\n"
    "@dag(schedule=None, start_date=datetime(2026, 1, 1))\ndef plain():\n"
    "    @task\n    def a(): pass\n    a()\nplain()\n"
)
BUDGET = 1.05


def timed(args: list[str]) -> tuple[float, float]:
    """(wall seconds, CPU seconds) of one fresh interpreter."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    start = time.perf_counter()
    subprocess.run([sys.executable, *args], check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    wall = time.perf_counter() - start
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    return wall, (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)


def medians(samples: list[tuple[float, float]]) -> tuple[float, float]:
    return statistics.median(s[0] for s in samples), statistics.median(s[1] for s in samples)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--rounds", type=int, default=5)
    args = parser.parse_args()
    import tempfile

    plain = Path(tempfile.mkdtemp()) / "plain_dag.py"
    plain.write_text(PLAIN_DAG)
    timed(["-c", BASELINE])  # warm the file cache once
    print(f"{'DAG file':36} {'sdk cpu s':>9} {'DAG cpu s':>9} {'cpu ratio':>9} {'wall ratio':>10}")
    worst = 0.0
    for dag_file in [plain, *sorted((REPO / "example_dags").glob("*.py"))]:
        base, dag = [], []
        for _ in range(args.rounds):
            base.append(timed(["-c", BASELINE]))
            dag.append(timed(["-c", PARSE, str(dag_file)]))
        (base_wall, base_cpu), (dag_wall, dag_cpu) = medians(base), medians(dag)
        ratio = dag_cpu / base_cpu
        if dag_file != plain:
            worst = max(worst, ratio)
        name = "(plain Airflow DAG, no trainkit)" if dag_file == plain else dag_file.name
        print(f"{name:36} {base_cpu:9.2f} {dag_cpu:9.2f} {ratio:9.3f} {dag_wall / base_wall:10.3f}")
    verdict = "within" if worst <= BUDGET else "OVER"
    print(
        f"worst CPU ratio of an example DAG {worst:.3f} ({verdict} the {BUDGET}x budget; medians of {args.rounds} rounds)"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
