"""The Ray example DAG runs under dag.test() against the session's real local Ray cluster."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from ray_testing import connection_json
from trainkit_testing import run_example_dag


@pytest.mark.integration
def test_example_dag_trains_on_two_ray_workers_under_dag_test(cluster, tmp_path):
    home = tmp_path / "trainkit"
    done = run_example_dag(
        "example_ray_cluster_training.py",
        tmp_path / "airflow",
        {
            "AIRFLOW_CONN_TRAINKIT_RAY_DEFAULT": connection_json(cluster.address),
            "TRAINKIT_HOME": str(home),
        },
    )
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    (metrics_file,) = Path(home / "ray" / "models").glob("*/metrics.json")
    metrics = json.loads(metrics_file.read_text())
    assert metrics["world_size"] == 2 and metrics["auc_roc"] > 0.8
    (job,) = cluster.jobs_of("airflow_dag_id", "example_ray_cluster_training")
    assert job["status"] == "SUCCEEDED" and job["metadata"]["airflow_task_id"] == "train_churn_model"
