"""The live fault matrix's DAGs: one per backend x scenario, from ``fault_matrix.json`` beside this
file (``tests/live/fault_matrix.py`` writes it before the deployment starts).

Each DAG has one ``train`` task; its job runs ``params.seconds`` and fails on tries up to
``params.fail_tries`` (a backend that runs our command templates its spec with both; a fake is told
by the test).
"""

from __future__ import annotations

import json
from datetime import datetime, timedelta
from pathlib import Path

from airflow.sdk import DAG

from airflow_trainkit.operators.training import TrainModelOperator

_DURATIONS = ("execution_timeout", "retry_delay")
MATRIX = Path(__file__).with_name("fault_matrix.json")

for entry in json.loads(MATRIX.read_text()) if MATRIX.exists() else []:
    task = {
        key: timedelta(seconds=value) if key in _DURATIONS else value for key, value in entry["task"].items()
    }
    with DAG(
        dag_id=entry["dag_id"],
        schedule=None,
        start_date=datetime(2026, 1, 1),
        catchup=False,
        params={"seconds": 20, "fail_tries": 0},
    ) as dag:
        TrainModelOperator(
            task_id="train",
            backend=entry["backend"],
            spec=entry["spec"],
            backend_conn_id=entry["conn_id"],
            poll_interval=entry["poll_interval"],
            **task,
        )
    globals()[entry["dag_id"]] = dag
