"""The Azure ML backend against the local workspace: the real azure-ai-ml client builds every request."""

from __future__ import annotations

import json

import pytest
from _azure_ml_fake import Plan
from azure_testing import (
    ACCOUNT,
    ARTIFACT_ACCOUNT,
    ARTIFACT_CONTAINER,
    CLIENT_SECRET,
    CONTAINER,
    IMAGE,
    run_as_azure_ml,
    store_uri,
)

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
    # Submit is two calls: the anonymous environment of the image, then the job (no lookup, no list).
    assert [op for op, _ in fake.requests] == ["CreateEnvironment", "CreateJob"]
    props = created(fake, "tk-map-a1")
    assert props["jobType"] == "Command" and props["displayName"] == "tk-map-a1"
    assert props["resources"] == {
        "instanceCount": 2,
        "instanceType": "Standard_NC4as_T4_v3",
        "properties": {},
    }
    assert props["queueSettings"] == {"jobTier": "Spot"}
    assert "computeId" not in props
    assert props["distribution"] == {"distributionType": "PyTorch", "processCountPerInstance": 1}
    assert props["limits"] == {"jobLimitsType": "Command", "timeout": "PT2H"}
    assert props["inputs"]["train"] == {
        "jobInputType": "uri_folder",
        "mode": "ReadOnlyMount",
        "uri": store_uri("data/train/"),
    }
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
    assert props["environmentId"].endswith(
        f"/environments/CliV2AnonymousEnvironment/versions/{environment['version']}"
    )
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


def test_named_cluster_from_spec_options_runs_there_with_its_vm_size_in_the_tags(fake, backend):
    fake.add_cluster("gpu-lowpri", "Standard_NC6s_v3", low_priority=True, max_nodes=4)
    backend.submit(
        spec(
            spot=True, checkpoint_uri=store_uri("ckpt"), instance_count=4, options={"compute": "gpu-lowpri"}
        ),
        "tk-cluster-a1",
    )
    assert fake.calls("GetCompute") == [{"name": "gpu-lowpri"}]
    props = created(fake, "tk-cluster-a1")
    assert props["computeId"].endswith("/computes/gpu-lowpri")
    # Low priority is the cluster's own tier: the job carries no queue settings, and no VM size.
    assert "queueSettings" not in props
    assert props["resources"] == {"instanceCount": 4, "properties": {}}
    assert props["tags"]["trainkit-instance-type"] == "Standard_NC6s_v3"
    status = backend.describe("tk-cluster-a1")
    assert status.instance_type == "Standard_NC6s_v3" and status.instance_count == 4
    assert status.details["compute"].endswith("gpu-lowpri")


def test_cluster_from_the_connection_and_serverless_override(fake, azure_server, monkeypatch):
    from azure_testing import CONN_ID, connection_json

    from airflow_trainkit.backends.azure_ml import AzureMLBackend

    monkeypatch.setenv(
        f"AIRFLOW_CONN_{CONN_ID.upper()}", connection_json(azure_server.endpoint_url, compute="cpu-cluster")
    )
    fake.add_cluster("cpu-cluster", "Standard_D4s_v3", low_priority=False)
    backend = AzureMLBackend(CONN_ID)
    backend.submit(spec(), "tk-conn-cluster-a1")
    assert created(fake, "tk-conn-cluster-a1")["computeId"].endswith("/computes/cpu-cluster")
    backend.submit(spec(options={"compute": "serverless"}), "tk-serverless-a1")
    props = created(fake, "tk-serverless-a1")
    assert "computeId" not in props and props["resources"]["instanceType"] == "Standard_D4s_v3"


@pytest.mark.parametrize(
    ("changes", "cluster", "match"),
    [
        ({"options": {"compute": "bad name!"}}, None, r"spec\.options\['compute'\]: 'bad name!'"),
        (
            {"options": {"compute": "gpu", "instance_count": 2}},
            None,
            r"spec\.options: unknown Azure ML option\(s\) 'instance_count'",
        ),
        (
            {"inputs": {"train": "s3://bucket/train/"}},
            None,
            r"spec\.inputs\['train'\]: Azure ML cannot mount 's3://bucket/train/'",
        ),
        (
            {"inputs": {"train": "/mnt/local/train"}},
            None,
            r"spec\.inputs\['train'\]: Azure ML cannot mount '/mnt/local/train'",
        ),
        (
            {"output_uri": "abfss://c@acct.dfs.core.windows.net/m"},
            None,
            r"spec\.output_uri must be an Azure ML datastore URI",
        ),
        ({"image": None}, None, r"spec\.image is required"),
        ({"image": "azureml:only-a-name"}, None, r"spec\.image: 'azureml:only-a-name'"),
        ({"instance_type": "n1-standard-4"}, None, r"spec\.instance_type: 'n1-standard-4'"),
        ({"accelerator": "L4:1"}, None, r"spec\.accelerator"),
        ({"env": {"BAD-NAME": "x"}}, None, r"spec\.env: .*'BAD-NAME'"),
        (
            {"instance_count": 5, "options": {"compute": "small"}},
            ("small", False, 4),
            r"spec\.instance_count: cluster 'small' runs at most 4 node\(s\), got 5",
        ),
        (
            {"spot": True, "checkpoint_uri": store_uri("c"), "options": {"compute": "dedicated"}},
            ("dedicated", False, 4),
            r"spec\.spot: cluster 'dedicated' is 'dedicated', not low priority",
        ),
        ({"options": {"compute": "missing"}}, None, r"compute: no Azure ML compute named 'missing'"),
    ],
)
def test_bad_input_is_refused_naming_field_and_value_before_any_job_is_created(
    fake, backend, changes, cluster, match
):
    if cluster:
        fake.add_cluster(cluster[0], "Standard_D4s_v3", low_priority=cluster[1], max_nodes=cluster[2])
    with pytest.raises(ValueError, match=match):
        raw = {**BASE, **changes}
        backend.check(TrainingJobSpec.parse(raw))
        backend.submit(TrainingJobSpec.parse(raw), "tk-bad-a1")
    assert fake.calls("CreateJob") == [] and fake.calls("CreateEnvironment") == []


def test_spot_without_checkpoint_is_refused_unless_opted_out(fake, backend):
    with pytest.raises(ValueError, match=r"spec\.checkpoint_uri: required when spec\.spot is true"):
        backend.check(TrainingJobSpec(**{**spec().to_dict(), "spot": True}))
    backend.submit(spec(spot=True, allow_spot_without_checkpoint=True), "tk-spot-nockpt-a1")
    props = created(fake, "tk-spot-nockpt-a1")
    assert props["queueSettings"] == {"jobTier": "Spot"} and "checkpoints" not in props["outputs"]


def test_missing_workspace_in_the_connection_is_refused_before_any_call(fake, azure_server, monkeypatch):
    from azure_testing import CONN_ID, connection_json

    from airflow_trainkit.backends.azure_ml import AzureMLBackend

    raw = json.loads(connection_json(azure_server.endpoint_url))
    del raw["extra"]["workspace_name"]
    monkeypatch.setenv(f"AIRFLOW_CONN_{CONN_ID.upper()}", json.dumps(raw))
    with pytest.raises(ValueError, match=r"connection 'azure_trainkit_test' extra 'workspace_name': missing"):
        AzureMLBackend(CONN_ID).submit(spec(), "tk-no-ws-a1")
    assert fake.requests == []


def test_registered_environment_is_referenced_without_an_environment_call(fake, backend):
    backend.submit(spec(image="azureml:churn-xgboost:3"), "tk-env-ref-a1")
    assert fake.calls("CreateEnvironment") == []
    assert created(fake, "tk-env-ref-a1")["environmentId"].endswith("/environments/churn-xgboost/versions/3")


def test_the_fake_refuses_a_body_the_rest_model_does_not_allow(fake):
    from _azure_ml_fake import model_problems

    good = {
        "properties": {
            "jobType": "Command",
            "command": "python",
            "environmentId": "x",
            "limits": {"jobLimitsType": "Command", "timeout": "PT1H"},
        }
    }
    assert model_problems("JobBase", good) == []
    bad = {"properties": {**good["properties"], "resources": {"instanceCount": "2"}, "spotPolicy": "yes"}}
    assert model_problems("JobBase", bad) == [
        "body.properties.resources.instanceCount: expected an integer, got '2'",
        "body.properties.spotPolicy: not a field of CommandJob",
    ]


def test_log_tail_metrics_and_a_readable_output_uri(fake, backend):
    fake.plan_next(Plan(states=["Completed"], run_seconds=90))
    backend.submit(spec(), "tk-files-a1")
    fake.put_blob(
        ARTIFACT_ACCOUNT,
        ARTIFACT_CONTAINER,
        "ExperimentRun/dcid.tk-files-a1/user_logs/std_log.txt",
        "\n".join(f"line {i}" for i in range(100)).encode(),
    )
    fake.put_blob(ACCOUNT, CONTAINER, "models/churn/tk-files-a1/model/metrics.json", b'{"rmse": 1.5}')
    assert backend.log_tail("tk-files-a1", 3) == ["line 97", "line 98", "line 99"]
    status = backend.describe("tk-files-a1")
    result = backend.result(status, spec())
    assert result["metrics"] == {"rmse": 1.5}
    assert (
        result["output_uri"]
        == f"abfss://{CONTAINER}@{ACCOUNT}.dfs.core.windows.net/models/churn/tk-files-a1/model"
    )
    # One GET per datastore, then cached; the blobs were read with a bearer token from the credential.
    assert len(fake.calls("GetDatastore")) == 2
    assert backend.log_tail("tk-nolog-a1") == []


def test_the_client_secret_never_reaches_logs_requests_or_errors(fake, backend, caplog):
    import logging

    # Reading the connection sets up Airflow's logging (which replaces the root handlers) first; then
    # every logger of ours and of the Azure SDKs, at DEBUG and enabled (that set-up disables loggers
    # made before it ran), the HTTP log included.
    assert backend.workspace[2] == "trainkit-ws"
    names = [
        n for n in logging.root.manager.loggerDict if n.startswith(("azure", "airflow_trainkit", "msal"))
    ]
    loggers = [logging.getLogger(n) for n in names]
    saved = [(lg.level, lg.disabled) for lg in loggers]
    for lg in loggers:
        lg.setLevel(logging.DEBUG)
        lg.disabled = False
    logging.getLogger().addHandler(caplog.handler)  # the set-up removed it from the root logger
    try:
        with caplog.at_level(logging.DEBUG):
            backend.submit(spec(), "tk-secret-a1")
            backend.describe("tk-secret-a1")
            with pytest.raises(TrainingJobNotFound) as missing:
                backend.describe("tk-secret-missing-a1")
    finally:
        logging.getLogger().removeHandler(caplog.handler)
        for lg, (level, disabled) in zip(loggers, saved, strict=True):
            lg.setLevel(level)
            lg.disabled = disabled
    logged = caplog.text
    assert "Request URL" in logged and "client secret credential" in logged  # the log was really read
    assert fake.secrets_seen and set(fake.secrets_seen) == {CLIENT_SECRET}  # it was used, for the token only
    assert CLIENT_SECRET not in logged + str(missing.value) + json.dumps(fake.requests)
    assert all(req["client_id"] for req in fake.token_requests)


@pytest.mark.integration
def test_the_command_azure_ml_runs_gives_the_built_in_trainer_its_mounted_paths(fake, backend, tmp_path):
    """The job's command, with each placeholder replaced by a folder as Azure ML's mounts do, run by a
    shell with the job's environment variables: the built-in trainer reads its inputs and writes its
    model, metrics and checkpoints there."""
    import sys

    from airflow_trainkit.demo.data import write_churn_dataset

    backend.submit(
        spec(
            command=[sys.executable, "-m", "airflow_trainkit.trainers.xgboost"],
            inputs={"train": store_uri("data/train/")},
            hyperparameters={"target": "churned", "drop_columns": "customer_id", "num_boost_round": 5},
            checkpoint_uri=store_uri("ckpt"),
            env={},
        ),
        "tk-trainer-a1",
    )
    props = created(fake, "tk-trainer-a1")
    mounts = {
        "inputs.train": tmp_path / "train",
        "outputs.model": tmp_path / "model",
        "outputs.checkpoints": tmp_path / "ckpt",
    }
    for folder in mounts.values():
        folder.mkdir()
    write_churn_dataset(mounts["inputs.train"] / "part-0.parquet", rows=400, seed=3)
    done = run_as_azure_ml(props, mounts)
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-2000:]
    assert json.loads((mounts["outputs.model"] / "metrics.json").read_text())
    assert any(mounts["outputs.model"].iterdir())


@pytest.mark.parametrize(
    ("extra", "expected"),
    [
        ({"managed_identity_client_id": "11111111-2222-3333-4444-555555555555"}, "ManagedIdentityCredential"),
        (
            {"workload_identity_tenant_id": "66666666-7777-8888-9999-000000000000"},
            "WorkloadIdentityCredential",
        ),
    ],
)
def test_without_a_client_secret_the_provider_default_chain_is_used(
    azure_server, monkeypatch, extra, expected
):
    """No secret in the connection: the azure provider's default credential chain, with its identity
    settings (built without a network call; no token is asked for here)."""
    from azure_testing import CONN_ID, connection_json

    from airflow_trainkit.backends.azure_ml import AzureMLBackend

    raw = json.loads(connection_json(azure_server.endpoint_url, **extra))
    raw.pop("login"), raw.pop("password")
    monkeypatch.setenv(f"AIRFLOW_CONN_{CONN_ID.upper()}", json.dumps(raw))
    if "workload_identity_tenant_id" in extra:
        # What the AKS workload identity webhook puts in the pod (azure-identity 1.27 reads the
        # tenant from AZURE_TENANT_ID here; the extra alone leaves the credential unavailable).
        for name, value in {
            "AZURE_FEDERATED_TOKEN_FILE": "/var/run/secrets/azure/tokens/azure-identity-token",
            "AZURE_CLIENT_ID": "77777777-8888-9999-0000-111111111111",
            "AZURE_TENANT_ID": extra["workload_identity_tenant_id"],
        }.items():
            monkeypatch.setenv(name, value)
    credential = AzureMLBackend(CONN_ID).credential
    assert type(credential).__name__ == "DefaultAzureCredential"
    kinds = [type(c).__name__ for c in credential.credentials]
    assert expected in kinds


def test_http_traffic_is_logged_to_our_quiet_logger_not_azure_cores(fake, backend):
    """azure-core's request/response log goes to ``...azure_ml.backend.http`` (WARNING by default)."""
    import logging

    from airflow_trainkit.backends.azure_ml.backend import http_log

    class Keep(logging.Handler):
        def __init__(self) -> None:
            super().__init__(logging.DEBUG)
            self.records: list[logging.LogRecord] = []

        def emit(self, record: logging.LogRecord) -> None:
            self.records.append(record)

    ours, azure_core = Keep(), Keep()
    core_log = logging.getLogger("azure.core.pipeline.policies.http_logging_policy")
    saved = (http_log.level, http_log.disabled, core_log.level, core_log.disabled)
    http_log.addHandler(ours)
    core_log.addHandler(azure_core)
    assert http_log.level == logging.WARNING  # quiet unless a deployment asks for it
    http_log.setLevel(logging.INFO)
    core_log.setLevel(logging.INFO)
    http_log.disabled = core_log.disabled = False
    try:
        backend.submit(spec(), "tk-quiet-a1")
        backend.describe("tk-quiet-a1")
    finally:
        http_log.removeHandler(ours)
        core_log.removeHandler(azure_core)
        http_log.level, http_log.disabled, core_log.level, core_log.disabled = saved
    assert any("Request URL" in r.getMessage() for r in ours.records)
    assert azure_core.records == []
    assert CLIENT_SECRET not in "".join(r.getMessage() for r in ours.records)
