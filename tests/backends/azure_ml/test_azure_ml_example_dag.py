"""The Azure ML example DAG runs under dag.test() against the local Azure ML workspace."""

from __future__ import annotations

import pytest
from _azure_ml_fake import Plan
from azure_testing import CLIENT_SECRET, connection_json
from trainkit_testing import run_example_dag


@pytest.mark.integration
def test_example_dag_runs_under_dag_test(fake, tmp_path):
    fake.add_datastore("workspaceblobstore", "trainkitstorage", "azureml-blobstore")
    # The trigger's first read ends the job: one 30 s poll interval less for this slow test.
    fake.plan_next(Plan(states=["Completed"], run_seconds=1500))
    done = run_example_dag(
        "example_azure_ml_spot_training.py",
        tmp_path,
        {"AIRFLOW_CONN_AZURE_DEFAULT": connection_json(fake.endpoint_url)},
    )
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    (body,) = fake.calls("CreateJob")
    props = body["properties"]
    assert props["queueSettings"] == {"jobTier": "Spot"}
    assert props["resources"]["instanceType"] == "Standard_NC4as_T4_v3"
    assert props["outputs"]["checkpoints"]["uri"].startswith(
        "azureml://datastores/workspaceblobstore/paths/churn/checkpoints/manual__"
    )
    tags = props["tags"]
    assert tags["airflow-dag-id"] == "example_azure_ml_spot_training"
    assert tags["airflow-task-id"] == "train_churn_model"
    assert tags["airflow-run-id"].startswith("manual__")
    assert "RUN_STATE" in done.stdout
    assert CLIENT_SECRET not in done.stdout + done.stderr
