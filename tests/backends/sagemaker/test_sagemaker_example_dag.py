"""The SageMaker example DAG runs under dag.test() against the local SageMaker fake."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from _sagemaker_fake import Plan
from sagemaker_testing import ROLE_ARN, connection_json

REPO = Path(__file__).resolve().parents[3]
RUN = """
import sys
from airflow.sdk import DagRunState
import runpy
dag = runpy.run_path(sys.argv[1])["dag"]
run = dag.test()
print("RUN_STATE", run.state)
sys.exit(0 if run.state == DagRunState.SUCCESS else 1)
"""


@pytest.mark.integration
def test_example_dag_runs_under_dag_test(fake, moto_endpoint, tmp_path):
    fake.plan_next(Plan(states=["InProgress", "Completed"], billable_seconds=1200, training_seconds=4000))
    env = {
        **os.environ,
        "AIRFLOW_HOME": str(tmp_path),
        "AIRFLOW__CORE__DAGS_FOLDER": str(REPO / "example_dags"),
        "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
        "AIRFLOW_CONN_AWS_DEFAULT": connection_json(
            moto_endpoint, fake.endpoint_url, execution_role_arn=ROLE_ARN
        ),
        "PYTHONPATH": str(REPO),
    }
    airflow = str(Path(sys.executable).parent / "airflow")
    subprocess.run([airflow, "db", "migrate"], env=env, check=True, capture_output=True)
    done = subprocess.run(
        [sys.executable, "-c", RUN, str(REPO / "example_dags" / "example_sagemaker_spot_training.py")],
        env=env,
        capture_output=True,
        text=True,
    )
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    (request,) = fake.calls("CreateTrainingJob")
    assert request["EnableManagedSpotTraining"] is True
    assert request["CheckpointConfig"]["S3Uri"].startswith("s3://trainkit-demo/churn/checkpoints/manual__")
    tags = {t["Key"]: t["Value"] for t in request["Tags"]}
    assert tags["airflow-dag-id"] == "example_sagemaker_spot_training"
    assert tags["airflow-task-id"] == "train_churn_model"
    assert "trainkit-fake-secret" not in done.stdout + done.stderr
