"""``trainkit demo``: run the demo DAG end to end on embedded defaults, and say where things are."""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

DEMO_DAG_ID = "trainkit_demo"


def register(subparsers: Any) -> None:
    """Add ``trainkit demo`` to the ``trainkit`` sub-commands."""
    parser = subparsers.add_parser("demo", help="run the demo pipeline with dag.test() on embedded defaults")
    parser.add_argument(
        "--home", default="demo-home", help="AIRFLOW_HOME for the demo (default: ./demo-home)"
    )
    parser.add_argument(
        "--dags-folder",
        default=str(Path(__file__).resolve().parents[2] / "example_dags"),
        help="folder holding the example DAGs (default: the repository's example_dags)",
    )
    parser.set_defaults(func=run)


# What the demo host costs, so training results carry an actual cost (see docs/costs.md);
# written once, then yours to edit.
DEMO_ONPREM_COSTS = """name,gpu_model,gpu_count,purchase_price,amortization_years,power_watts,electricity_per_kwh,utilization,yearly_other_costs,currency
workstation-t4,T4,1,4000,4,300,0.15,0.4,0,USD
workstation-cpu,,,1500,4,120,0.15,0.4,0,USD
"""


def run(args: argparse.Namespace) -> int:
    """Run the demo DAG in the ``--home`` folder (writing its on-prem cost rows the first time) and
    print its summary; the exit code is the run's."""
    from airflow_trainkit.local.runner import run_dag_file

    home = Path(args.home).resolve()
    dags_folder = Path(args.dags_folder).resolve()
    dag_file = dags_folder / f"{DEMO_DAG_ID}.py"
    if not dag_file.exists():
        raise ValueError(f"--dags-folder {str(dags_folder)!r} has no {DEMO_DAG_ID}.py")
    home.mkdir(parents=True, exist_ok=True)
    print("trainkit demo: the whole loop on this machine, a line per task", flush=True)
    summary_path = home / "trainkit" / "demo-summary.json"
    summary_path.unlink(missing_ok=True)
    costs = home / "trainkit" / "costs" / "onprem.csv"
    if not costs.exists():
        costs.parent.mkdir(parents=True, exist_ok=True)
        costs.write_text(DEMO_ONPREM_COSTS)
    result = run_dag_file(dag_file, home=home, dag_id=DEMO_DAG_ID)
    if result.code == 0 and summary_path.exists():
        summary = json.loads(summary_path.read_text())
        print("\ntrainkit demo finished:")
        for key, value in summary.items():
            print(f"  {key}: {value}")
        print(f"  full log: {result.log}")
    return result.code
