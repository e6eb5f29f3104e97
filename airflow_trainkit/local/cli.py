"""``trainkit dag test DAG_FILE``: run your own DAG on this machine, as the demo runs its own."""

from __future__ import annotations

from pathlib import Path
from typing import Any


def register(subparsers: Any) -> None:
    """Add ``trainkit dag test`` to the ``trainkit`` sub-commands."""
    parser = subparsers.add_parser("dag", help="run a DAG file locally")
    commands = parser.add_subparsers(dest="dag_command", required=True)
    test = commands.add_parser(
        "test",
        help="run one DAG with dag.test() in a local Airflow home (migrated sqlite database)",
        description=(
            "Run the DAG in DAG_FILE once with dag.test(): sets AIRFLOW_HOME (a sqlite database in "
            "it, never another one), makes the file's folder the DAGs folder, runs 'airflow db "
            "migrate', then the DAG. Prints a line per task and where the full log is. Exit codes: "
            "0 the run succeeded, 1 it did not, 2 the file or the DAG id is wrong."
        ),
    )
    test.add_argument("dag_file", help="the Python file holding the DAG")
    test.add_argument("--dag-id", help="the DAG to run, when the file holds several")
    test.add_argument(
        "--home", default="airflow-home", help="AIRFLOW_HOME for the run (default: ./airflow-home)"
    )
    test.set_defaults(func=_test)


def _test(args: Any) -> int:
    from airflow_trainkit.local.runner import run_dag_file

    return run_dag_file(Path(args.dag_file), home=Path(args.home), dag_id=args.dag_id).code
