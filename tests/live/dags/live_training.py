"""Training jobs long enough to kill, clear or time out while they run (used by the live tests).

One DAG per case, on-prem and Vertex AI (against the test's local fake, through the connection
``gcp_trainkit_test`` the deployment's environment defines).
"""

from __future__ import annotations

from datetime import datetime, timedelta

from airflow.sdk import DAG

from airflow_trainkit.operators.training import TrainModelOperator

ONPREM = {
    "command": ["sh", "-c", "echo started; sleep {{ params.seconds }}; echo finished"],
    "max_runtime": 600,
}
VERTEX = {
    "command": ["python", "-m", "trainer.task"],
    "image": "europe-docker.pkg.dev/vertex-ai/training/xgboost-cpu.2-1:latest",
    "output_uri": "gs://trainkit-vertex-tests/models",
    "max_runtime": 600,
}
# dag_id: (backend, spec, task arguments)
CASES = {
    "live_training": ("onprem", ONPREM, {}),
    "live_exec_timeout": ("onprem", ONPREM, {"execution_timeout": timedelta(seconds=25)}),
    "live_hard_kill_last": ("onprem", ONPREM, {"deferrable": False, "retries": 0}),
    "live_hard_kill_retry": (
        "onprem",
        ONPREM,
        {"deferrable": False, "retries": 1, "retry_delay": timedelta(seconds=5)},
    ),
    "live_vertex_exec_timeout": ("vertex_ai", VERTEX, {"execution_timeout": timedelta(seconds=25)}),
    "live_vertex_hard_kill_last": ("vertex_ai", VERTEX, {"deferrable": False, "retries": 0}),
    "live_vertex_hard_kill_retry": (
        "vertex_ai",
        VERTEX,
        {"deferrable": False, "retries": 1, "retry_delay": timedelta(seconds=5)},
    ),
}

for dag_id, (backend, spec, task_args) in CASES.items():
    with DAG(
        dag_id=dag_id,
        schedule=None,
        start_date=datetime(2026, 1, 1),
        catchup=False,
        params={"seconds": 20},
    ) as dag:
        TrainModelOperator(
            task_id="train",
            backend=backend,
            spec=spec,
            backend_conn_id="gcp_trainkit_test" if backend == "vertex_ai" else None,
            poll_interval=1,
            **task_args,
        )
    globals()[dag_id] = dag
