"""Imports every example DAG in this fresh interpreter and reports, per file, what parsing did.

Run by tests/example_dags/test_example_dags.py as ``python parse_probe.py DAGS_FOLDER``; prints JSON.
An audit hook records sockets opened and data files read while each DAG file is imported.
"""

from __future__ import annotations

import importlib.util
import json
import sys
from pathlib import Path

HEAVY = [
    "sagemaker",
    "boto3",
    "botocore",
    "google.cloud.aiplatform",
    "azure.ai.ml",
    "mlflow",
    "great_expectations",
    "evidently",
    "xgboost",
    "pandas",
    "numpy",
    "sklearn",
    "scipy",
    "pyarrow",
    "matplotlib",
    "asyncssh",
    "paramiko",
    "ray",
]
DATA_SUFFIXES = (".csv", ".parquet", ".pq", ".json", ".yaml", ".yml", ".db", ".sqlite")
events: list[str] = []


def audit(event: str, args: tuple) -> None:
    if event == "socket.connect":
        events.append(f"socket.connect {args[1]!r}")
    elif (
        event == "open"
        and isinstance(args[0], str)
        and args[0].endswith(DATA_SUFFIXES)
        and "site-packages" not in args[0]
    ):
        events.append(f"open {args[0]}")


def main(folder: str) -> None:
    import airflow.sdk  # noqa: F401 - Airflow itself is allowed; what the DAG adds is measured
    from airflow.sdk import BaseHook

    looked_up: list[str] = []
    original = BaseHook.get_connection

    def record_lookup(conn_id: str):  # noqa: ANN202
        looked_up.append(conn_id)
        return original(conn_id)

    BaseHook.get_connection = staticmethod(record_lookup)  # type: ignore[method-assign]
    sys.addaudithook(audit)
    report = {}
    for path in sorted(Path(folder).glob("*.py")):
        before = set(sys.modules)
        events.clear()
        looked_up.clear()
        error = None
        try:
            module_spec = importlib.util.spec_from_file_location(f"example_{path.stem}", path)
            module = importlib.util.module_from_spec(module_spec)
            module_spec.loader.exec_module(module)
        except Exception as err:  # reported, and the test fails on it
            error = repr(err)
        added = set(sys.modules) - before
        heavy = sorted(name for name in HEAVY if name in added)
        report[path.name] = {
            "error": error,
            "heavy": heavy,
            "io": list(events),
            "connections": list(looked_up),
        }
    print(json.dumps(report))


if __name__ == "__main__":
    main(sys.argv[1])
