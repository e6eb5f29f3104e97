"""Register after training on Azure ML: the built-in trainer's real output, read back through adlfs.

The job's command runs here as an Azure ML node would run it (mounted folders for its placeholders),
its output folder is put into the fake's blob store where the job's ``outputs.model`` mount would
have left it, the trigger runs to its event, and ``RegisterModelOperator`` reads the folder through
Airflow's object storage (adlfs, the real async azure-storage-blob client) with an ``adls``
connection, into the embedded MLflow registry.
"""

from __future__ import annotations

import json
import logging

import pytest
from azure_testing import ACCOUNT, CLIENT_SECRET, CONN_ID, CONTAINER, IMAGE, run_as_azure_ml, store_uri
from trainkit_testing import TrainingTasks, make_context, resume

from airflow_trainkit._compat import TaskDeferred
from airflow_trainkit.operators.registry import RegisterModelOperator

STORAGE_CONN_ID = "adls_trainkit_test"
SPEC = {
    "command": ["python", "-m", "airflow_trainkit.trainers.xgboost"],
    "image": IMAGE,
    "output_uri": store_uri("models"),
    "inputs": {"train": store_uri("data/train/")},
    "hyperparameters": {"target": "churned", "drop_columns": "customer_id", "num_boost_round": 20},
    "max_runtime": "1h",
}
TASKS = TrainingTasks("azure_ml", CONN_ID, SPEC, dag_id="azure_register")


def storage_connection(monkeypatch, fake, conn_id: str, secret_part: str) -> None:
    """An ``adls`` connection whose connection string reaches the fake's blob endpoint (path-style,
    as the storage emulator's) and carries ``secret_part`` (a SAS, or an account key)."""
    endpoint = f"{fake.endpoint_url}/{ACCOUNT}"
    monkeypatch.setenv(
        f"AIRFLOW_CONN_{conn_id.upper()}",
        json.dumps(
            {"conn_type": "adls", "extra": {"connection_string": f"BlobEndpoint={endpoint};{secret_part}"}}
        ),
    )


@pytest.fixture
def registry_home(tmp_path, monkeypatch):
    """The embedded MLflow registry (sqlite) under a fresh ``TRAINKIT_HOME``; nothing in the cwd."""
    monkeypatch.setenv("TRAINKIT_HOME", str(tmp_path / "home"))
    monkeypatch.delenv("AIRFLOW_CONN_TRAINKIT_MLFLOW_DEFAULT", raising=False)
    monkeypatch.setenv("MLFLOW_DISABLE_TELEMETRY", "true")
    workdir = tmp_path / "cwd"
    workdir.mkdir()
    monkeypatch.chdir(workdir)
    return tmp_path / "home"


def test_a_model_trained_on_azure_ml_is_registered_from_its_datastore_and_predicts(
    fake, registry_home, tmp_path, monkeypatch, caplog
):
    import mlflow

    from airflow_trainkit.demo.data import make_churn_frame, write_churn_dataset

    sas = fake.issue_sas(ACCOUNT)
    storage_connection(monkeypatch, fake, STORAGE_CONN_ID, f"SharedAccessSignature={sas}")
    task_id = "train"
    name = TASKS.job_name(task_id)
    train = TASKS.operator(task_id, poll_interval=0.001)
    context = TASKS.context(task_id)
    with pytest.raises(TaskDeferred) as deferred:
        train.execute(context)

    # The node: the job's own command, with its mounts, runs the built-in trainer.
    mounts = {"inputs.train": tmp_path / "train", "outputs.model": tmp_path / "model"}
    for folder in mounts.values():
        folder.mkdir()
    write_churn_dataset(mounts["inputs.train"] / "part-0.parquet", rows=600, seed=5)
    done = run_as_azure_ml(fake.job(name).body["properties"], mounts)
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-2000:]
    written = sorted(p.name for p in mounts["outputs.model"].iterdir())
    assert {"model.json", "model_meta.json", "metrics.json"} <= set(written)
    # What the rw_mount of outputs.model leaves in the datastore once the job has ended.
    uploaded = fake.put_folder(ACCOUNT, CONTAINER, f"models/{name}/model", mounts["outputs.model"])
    assert len(uploaded) == len(written)

    with caplog.at_level(logging.INFO):
        result = resume(train, context, deferred.value)
        assert result["state"] == "Completed"
        assert (
            result["output_uri"] == f"abfss://{CONTAINER}@{ACCOUNT}.dfs.core.windows.net/models/{name}/model"
        )
        trained_metrics = json.loads((mounts["outputs.model"] / "metrics.json").read_text())
        assert result["metrics"] == trained_metrics

        fake.requests.clear()
        registered = RegisterModelOperator(
            task_id="register",
            model_name="churn",
            training_result=result,
            storage_conn_id=STORAGE_CONN_ID,
        ).execute(make_context(dag_id="azure_register", task_id="register"))

    assert registered["version"] == "1" and registered["reused"] is False
    assert registered["job_id"] == name
    assert registered["source"].startswith((registry_home / "mlflow" / "artifacts").as_uri())
    # The folder was read from the datastore's account through the blob endpoint: the meta file
    # asked for, then the model and metrics downloaded.
    read = {body["path"] for body in fake.calls("GetBlob", account=ACCOUNT, container=CONTAINER)}
    assert read == {f"models/{name}/model/{f}" for f in ("model_meta.json", "model.json", "metrics.json")}

    client = mlflow.MlflowClient(registered["tracking_uri"])
    run = client.get_run(registered["run_id"])
    assert run.data.tags["trainkit.output_uri"] == result["output_uri"]
    assert run.data.tags["trainkit.backend"] == "azure_ml"
    assert run.data.metrics["auc_roc"] == pytest.approx(trained_metrics["auc_roc"])

    previous = mlflow.get_tracking_uri()
    mlflow.set_tracking_uri(registered["tracking_uri"])
    try:
        model = mlflow.pyfunc.load_model("models:/churn@challenger")
    finally:
        mlflow.set_tracking_uri(previous)
    features = model.metadata.get_input_schema().input_names()
    assert "churned" not in features and "customer_id" not in features
    predictions = model.predict(make_churn_frame(8, seed=11)[features])
    assert len(predictions) == 8 and all(0.0 <= float(p) <= 1.0 for p in predictions)

    signature = sas.rsplit("sig=", 1)[1]
    seen = caplog.text + json.dumps(result) + json.dumps(registered) + json.dumps(run.data.tags)
    assert "Request URL" in caplog.text  # adlfs' own request log was captured, and it hides the SAS
    assert signature not in seen and CLIENT_SECRET not in seen


@pytest.mark.parametrize(
    ("secret_part", "secret"),
    [
        ("SharedAccessSignature=sv=2025-01-05&sp=rl&sig=NotIssuedByTheStore0123", "NotIssuedByTheStore0123"),
        (
            "AccountName=trainkitstorage;AccountKey=bm90LWEtcmVhbC1rZXktYnV0LWEtc2VjcmV0LW9uZQ==",
            "bm90LWEtcmVhbC1rZXktYnV0LWEtc2VjcmV0LW9uZQ",
        ),
    ],
    ids=["sas-not-issued", "account-key"],
)
def test_an_output_the_storage_connection_cannot_read_fails_naming_the_uri_never_the_key(
    fake, registry_home, monkeypatch, caplog, secret_part, secret
):
    """The blob service refuses the connection (403): the task fails before anything is registered,
    with the URI, the job and the connection in the message, and no part of the credential."""
    from airflow_trainkit.hooks.mlflow import MlflowHook

    # One connection id per case: Airflow keeps one filesystem per scheme and connection id a process.
    conn_id = f"adls_denied_{len(secret)}"
    storage_connection(monkeypatch, fake, conn_id, secret_part)
    output = f"abfss://{CONTAINER}@{ACCOUNT}.dfs.core.windows.net/models/tk-denied/model"
    fake.put_blob(ACCOUNT, CONTAINER, "models/tk-denied/model/model_meta.json", b'{"features": ["a"]}')
    result = {
        "backend": "azure_ml",
        "job_id": "tk-denied",
        "state": "Completed",
        "output_uri": output,
        "metrics": {"auc_roc": 0.9},
    }
    with caplog.at_level(logging.DEBUG), pytest.raises(OSError) as failed:
        RegisterModelOperator(
            task_id="register", model_name="churn", training_result=result, storage_conn_id=conn_id
        ).execute(make_context(task_id="register"))
    message = str(failed.value)
    assert output in message and "'tk-denied'" in message and f"connection {conn_id!r}" in message
    assert "403" in message and "AuthenticationFailed" in message
    assert failed.value.__cause__ is None and failed.value.__suppress_context__
    assert secret not in message + caplog.text
    assert fake.calls("BlobRefused", account=ACCOUNT)  # the store was asked, and said no
    client = MlflowHook().get_client()
    experiments = [e.experiment_id for e in client.search_experiments()]
    assert client.search_registered_models() == [] and client.search_runs(experiments) == []


def test_a_storage_connection_to_another_account_is_refused(fake, monkeypatch):
    """An adls connection is bound to one account: a URI in another one is not read with it."""
    from airflow_trainkit import storage

    storage_connection(monkeypatch, fake, "adls_other", f"SharedAccessSignature={fake.issue_sas(ACCOUNT)}")
    with pytest.raises(storage.StorageConnectionError, match="'elsewhere'.*'adls_other'.*'trainkitstorage'"):
        storage.read_bytes(
            f"abfss://{CONTAINER}@elsewhere.dfs.core.windows.net/x/model.json", conn_id="adls_other"
        )
    assert fake.requests == []


def test_without_a_storage_connection_adlfs_reads_its_own_environment(fake, monkeypatch):
    """``storage_conn_id=None``: adlfs' own ``AZURE_STORAGE_*`` settings (here a connection string);
    the account still comes from the URI, and a folder exists once a blob is under it."""
    from airflow_trainkit import storage

    monkeypatch.setenv(
        "AZURE_STORAGE_CONNECTION_STRING",
        f"BlobEndpoint={fake.endpoint_url}/{ACCOUNT};SharedAccessSignature={fake.issue_sas(ACCOUNT)}",
    )
    fake.put_blob(ACCOUNT, CONTAINER, "models/tk-env/model/metrics.json", b'{"auc_roc": 0.8}')
    folder = f"abfss://{CONTAINER}@{ACCOUNT}.dfs.core.windows.net/models/tk-env/model"
    assert storage.exists(folder)
    assert not storage.exists(f"{folder}-other")
    assert storage.read_bytes(f"{folder}/metrics.json") == b'{"auc_roc": 0.8}'
    with pytest.raises(FileNotFoundError, match="model.json"):
        storage.read_bytes(f"{folder}/model.json")
    assert fake.calls("ListBlobs", account=ACCOUNT, prefix="models/tk-env/model/")


@pytest.mark.parametrize(
    ("conn_id", "connection", "credential", "chain"),
    [
        (
            "adls_service_principal",
            {"login": "client-id", "password": CLIENT_SECRET, "extra": {"tenant_id": "tenant"}},
            "ClientSecretCredential",
            None,
        ),
        (
            "adls_managed_identity",
            {"extra": {"managed_identity_client_id": "11111111-2222-3333-4444-555555555555"}},
            "DefaultAzureCredential",
            "ManagedIdentityCredential",
        ),
    ],
)
def test_the_documented_identity_connections_build_adlfs_with_that_credential(
    monkeypatch, conn_id, connection, credential, chain
):
    """The docs' service principal and managed identity rows, as the azure provider's filesystem
    builds them (no token is fetched here: Entra ID cannot be reached)."""
    from airflow_trainkit import storage

    raw = {"conn_type": "adls", **connection}
    raw["extra"] = {"account_name": ACCOUNT, **raw["extra"]}
    monkeypatch.setenv(f"AIRFLOW_CONN_{conn_id.upper()}", json.dumps(raw))
    fs = storage._object_path(f"abfss://{CONTAINER}@{ACCOUNT}.dfs.core.windows.net/m", conn_id).fs
    assert fs.service_client.account_name == ACCOUNT
    assert type(fs.credential).__name__ == credential
    assert type(fs.credential).__module__.startswith("azure.identity.aio")  # adlfs' client is async
    if chain:
        assert chain in [type(c).__name__ for c in fs.credential.credentials]
