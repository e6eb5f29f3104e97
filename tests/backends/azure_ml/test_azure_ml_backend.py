"""The Azure ML backend against the local workspace: the real azure-ai-ml client builds every request."""

from __future__ import annotations

import json

import pytest
from _azure_ml_fake import Plan
from azure_testing import ACCOUNT, ARTIFACT_ACCOUNT, ARTIFACT_CONTAINER, CLIENT_SECRET, CONTAINER, IMAGE, store_uri

from airflow_trainkit.exceptions import TrainingJobNotFound
from airflow_trainkit.training.backend import JobPhase
from airflow_trainkit.training.identity import JobIdentity
from airflow_trainkit.training.spec import TrainingJobSpec

IDENTITY = JobIdentity("azure_dag", "manual__2026-01-05T10:00:00+00:00", "train", 3)
BASE = {
    "command": ["python", "-m", "airflow_trainkit.trainers.xgboost", "--verbose"],
    "image": IMAGE,
    "output_uri": store_uri("models/churn"),
    "inputs": {
        "train": store_uri("data/train/"),
        "validation": f"https://{ACCOUNT}.blob.core.windows.net/{CONTAINER}/data/validation.csv",
        "extra": f"abfss://{CONTAINER}@{ACCOUNT}.dfs.core.windows.net/data/extra/",
    },
    "hyperparameters": {"target": "churned", "max_depth": 5},
    "env": {"LOG_LEVEL": "debug"},
    "max_runtime": "2h",
    "tags": {"team": "churn"},
}


def spec(**changes: object) -> TrainingJobSpec:
    return TrainingJobSpec.parse({**BASE, **changes})


def created(fake, name: str) -> dict:
    (body,) = fake.calls("CreateJob", name=name)
    return body["properties"]


def test_serverless_spot_job_maps_every_spec_field(fake, backend):
    status = backend.submit(
        spec(accelerator="T4:1", spot=True, checkpoint_uri=store_uri("ckpt/churn"), instance_count=2),
        "tk-map-a1",
        IDENTITY,
    )
    assert status.state == "NotStarted" and status.phase == JobPhase.PENDING
    props = created(fake, "tk-map-a1")
    assert props["jobType"] == "Command" and props["displayName"] == "tk-map-a1"
    assert props["resources"] == {"instanceCount": 2, "instanceType": "Standard_NC4as_T4_v3", "properties": {}}
    assert props["queueSettings"] == {"jobTier": "Spot"}
    assert "computeId" not in props
    assert props["distribution"] == {"distributionType": "PyTorch", "processCountPerInstance": 1}
    assert props["limits"] == {"jobLimitsType": "Command", "timeout": "PT2H"}
    assert props["inputs"]["train"] == {"jobInputType": "uri_folder", "mode": "ReadOnlyMount", "uri": store_uri("data/train/")}
    assert props["inputs"]["validation"]["jobInputType"] == "uri_file"
    assert props["inputs"]["extra"]["uri"].startswith("abfss://")
    assert props["outputs"]["model"] == {
        "jobOutputType": "uri_folder",
        "mode": "ReadWriteMount",
        "uri": store_uri("models/churn/tk-map-a1/model"),
    }
    assert props["outputs"]["checkpoints"]["uri"] == store_uri("ckpt/churn/")
    assert props["outputs"]["checkpoints"]["mode"] == "ReadWriteMount"
    assert props["command"] == (
        "env TRAINKIT_OUTPUT_URI=${{outputs.model}} TRAINKIT_CHECKPOINT_URI=${{outputs.checkpoints}} "
        "TRAINKIT_INPUT_TRAIN=${{inputs.train}} TRAINKIT_INPUT_VALIDATION=${{inputs.validation}} "
        "TRAINKIT_INPUT_EXTRA=${{inputs.extra}} python -m airflow_trainkit.trainers.xgboost --verbose"
    )
    env = props["environmentVariables"]
    assert json.loads(env["TRAINKIT_HYPERPARAMETERS"]) == {"target": "churned", "max_depth": 5}
    assert env["TRAINKIT_JOB_ID"] == "tk-map-a1" and env["TRAINKIT_GPU_COUNT"] == "1"
    assert env["LOG_LEVEL"] == "debug"
    assert props["tags"] == {
        "team": "churn",
        "airflow-dag-id": "azure_dag",
        "airflow-run-id": "manual__2026-01-05T10:00:00+00:00",
        "airflow-task-id": "train",
        "airflow-map-index": "3",
        "airflow-attempt": "1",
        "trainkit-job-id": "tk-map-a1",
        "trainkit-spot": "true",
        "trainkit-instance-type": "Standard_NC4as_T4_v3",
    }
    (environment,) = fake.calls("CreateEnvironment")
    assert environment["properties"]["image"] == IMAGE
    assert props["environmentId"].endswith(f"/environments/CliV2AnonymousEnvironment/versions/{environment['version']}")
    assert CLIENT_SECRET not in json.dumps(fake.requests)


def test_describe_is_one_get_by_name(fake, backend):
    fake.plan_next(Plan(states=["Queued", "Running", "Completed"], run_seconds=1234))
    backend.submit(spec(), "tk-describe-a1")
    before = len(fake.requests)
    states = [backend.describe("tk-describe-a1") for _ in range(3)]
    assert [s.state for s in states] == ["Queued", "Running", "Completed"]
    assert fake.requests[before:] == [("GetJob", {"name": "tk-describe-a1"})] * 3
    done = states[-1]
    assert done.phase == JobPhase.SUCCEEDED and done.billable_seconds == 1234.0
    assert done.instance_type == "Standard_D4s_v3" and done.region == "eastus"
    assert done.output_uri == store_uri("models/churn/tk-describe-a1/model")
    assert done.console_url.startswith("https://ml.azure.com/runs/tk-describe-a1?wsid=")


def test_unknown_job_is_not_found(fake, backend):
    with pytest.raises(TrainingJobNotFound):
        backend.describe("tk-nobody-a1")
    assert backend.find("tk-nobody-a1") is None
