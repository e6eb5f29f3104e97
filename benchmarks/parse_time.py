"""Parse time of each example DAG as a ratio to ``import airflow.sdk``, measured side by side.

Each sample is a fresh interpreter, alternating baseline and DAG so machine noise hits both alike.
Budget (PRODUCT.md): at most 1.05x. Usage: ``python benchmarks/parse_time.py [--rounds N]``.
"""

from __future__ import annotations

import argparse
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
BUDGET = 1.05


def timed(args: list[str]) -> float:
    start = time.perf_counter()
    subprocess.run([sys.executable, *args], check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    return time.perf_counter() - start


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--rounds", type=int, default=5)
    args = parser.parse_args()
    timed(["-c", BASELINE])  # warm the file cache once
    print(f"{'example DAG':44} {'airflow.sdk s':>13} {'DAG parse s':>11} {'ratio':>6}")
    worst = 0.0
    for dag_file in sorted((REPO / "example_dags").glob("*.py")):
        base, dag = [], []
        for _ in range(args.rounds):
            base.append(timed(["-c", BASELINE]))
            dag.append(timed(["-c", PARSE, str(dag_file)]))
        ratio = statistics.median(dag) / statistics.median(base)
        worst = max(worst, ratio)
        print(
            f"{dag_file.name:44} {statistics.median(base):13.2f} {statistics.median(dag):11.2f} {ratio:6.3f}"
        )
    verdict = "within" if worst <= BUDGET else "OVER"
    print(f"worst ratio {worst:.3f} ({verdict} the {BUDGET}x budget; medians of {args.rounds} rounds)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
