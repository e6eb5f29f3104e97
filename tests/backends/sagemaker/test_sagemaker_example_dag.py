"""The SageMaker example DAG runs under dag.test() against the local SageMaker fake."""

from __future__ import annotations

import pytest
from _sagemaker_fake import Plan
from sagemaker_testing import ROLE_ARN, connection_json
from trainkit_testing import run_example_dag


@pytest.mark.integration
def test_example_dag_runs_under_dag_test(fake, moto_endpoint, tmp_path):
    fake.plan_next(Plan(states=["InProgress", "Completed"], billable_seconds=1200, training_seconds=4000))
    done = run_example_dag(
        "example_sagemaker_spot_training.py",
        tmp_path,
        {
            "AIRFLOW_CONN_AWS_DEFAULT": connection_json(
                moto_endpoint, fake.endpoint_url, execution_role_arn=ROLE_ARN
            )
        },
    )
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    (request,) = fake.calls("CreateTrainingJob")
    assert request["EnableManagedSpotTraining"] is True
    assert request["CheckpointConfig"]["S3Uri"].startswith("s3://trainkit-demo/churn/checkpoints/manual__")
    tags = {t["Key"]: t["Value"] for t in request["Tags"]}
    assert tags["airflow-dag-id"] == "example_sagemaker_spot_training"
    assert tags["airflow-task-id"] == "train_churn_model"
    assert "trainkit-fake-secret" not in done.stdout + done.stderr
