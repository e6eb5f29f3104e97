"""The Vertex AI example DAG runs under dag.test() against the local Vertex AI fake."""

from __future__ import annotations

import pytest
from _vertex_fake import Plan
from trainkit_testing import run_example_dag
from vertex_testing import connection_json, secret_fragments


@pytest.mark.integration
def test_example_dag_runs_under_dag_test(fake, tmp_path):
    # The trigger's first read ends the job: one 30 s poll interval less for this slow test.
    fake.plan_next(Plan(states=["SUCCEEDED"], run_seconds=1500))
    done = run_example_dag(
        "example_vertex_ai_spot_training.py",
        tmp_path,
        {"AIRFLOW_CONN_GOOGLE_CLOUD_DEFAULT": connection_json(fake.endpoint_url)},
    )
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    (body,) = fake.calls("CreateCustomJob")
    assert body["job_spec"]["scheduling"]["strategy"] == "SPOT"
    assert body["job_spec"]["worker_pool_specs"][0]["machine_spec"]["accelerator_type"] == "NVIDIA_TESLA_T4"
    env_vars = {
        e["name"]: e["value"] for e in body["job_spec"]["worker_pool_specs"][0]["container_spec"]["env"]
    }
    assert env_vars["TRAINKIT_CHECKPOINT_URI"].startswith("/gcs/trainkit-demo/churn/checkpoints/manual__")
    labels = body["labels"]
    assert labels["airflow-dag-id"] == "example_vertex_ai_spot_training"
    assert labels["airflow-task-id"] == "train_churn_model"
    assert labels["airflow-run-id"].startswith("manual__")
    assert "RUN_STATE" in done.stdout
    assert not any(s in done.stdout + done.stderr for s in secret_fragments())
