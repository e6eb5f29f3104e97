"""``trainkit demo``: run the demo DAG end to end on embedded defaults, and say where things are."""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

DEMO_DAG_ID = "trainkit_demo"


def register(subparsers: Any) -> None:
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


def demo_environment(home: Path, dags_folder: Path) -> dict[str, str]:
    """The environment the demo runs in: its own Airflow home, sqlite, no example DAGs."""
    return {
        "AIRFLOW_HOME": str(home),
        "AIRFLOW__CORE__DAGS_FOLDER": str(dags_folder),
        "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
        "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": f"sqlite:///{home / 'airflow.db'}",
        "AIRFLOW__CORE__UNIT_TEST_MODE": "False",
        "GX_ANALYTICS_ENABLED": "False",
        "MLFLOW_ENABLE_TELEMETRY": "false",
    }


# What the demo host costs, so training results carry an actual cost (see docs/costs.md);
# written once, then yours to edit.
DEMO_ONPREM_COSTS = """name,gpu_model,gpu_count,purchase_price,amortization_years,power_watts,electricity_per_kwh,utilization,yearly_other_costs,currency
workstation-t4,T4,1,4000,4,300,0.15,0.4,0,USD
workstation-cpu,,,1500,4,120,0.15,0.4,0,USD
"""


def run(args: argparse.Namespace) -> int:
    home = Path(args.home).resolve()
    dags_folder = Path(args.dags_folder).resolve()
    if not (dags_folder / f"{DEMO_DAG_ID}.py").exists():
        raise ValueError(f"--dags-folder {str(dags_folder)!r} has no {DEMO_DAG_ID}.py")
    home.mkdir(parents=True, exist_ok=True)
    env = {**os.environ, **demo_environment(home, dags_folder)}
    print(f"trainkit demo: AIRFLOW_HOME={home}", flush=True)
    summary_path = home / "trainkit" / "demo-summary.json"
    summary_path.unlink(missing_ok=True)
    costs = home / "trainkit" / "costs" / "onprem.csv"
    if not costs.exists():
        costs.parent.mkdir(parents=True, exist_ok=True)
        costs.write_text(DEMO_ONPREM_COSTS)
    subprocess.run(
        [sys.executable, "-m", "airflow", "db", "migrate"], env=env, check=True, stdout=subprocess.DEVNULL
    )
    # dag.test() in a fresh interpreter, so Airflow reads the demo's settings from the start.
    code = subprocess.run(
        [sys.executable, "-m", "airflow_trainkit.demo.run_dag", DEMO_DAG_ID], env=env
    ).returncode
    if code != 0:
        print(f"trainkit demo: the DAG run failed; task logs are under {home / 'logs'}", file=sys.stderr)
    elif summary_path.exists():
        summary = json.loads(summary_path.read_text())
        print("\ntrainkit demo finished:")
        for key, value in summary.items():
            print(f"  {key}: {value}")
    return code
