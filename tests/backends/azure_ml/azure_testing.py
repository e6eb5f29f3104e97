"""Names and connection settings shared by the Azure ML tests (importable, unlike conftest)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from pathlib import Path

CONN_ID = "azure_trainkit_test"
SUBSCRIPTION = "00000000-1111-2222-3333-444444444444"
RESOURCE_GROUP = "trainkit-rg"
WORKSPACE = "trainkit-ws"
TENANT = "55555555-6666-7777-8888-999999999999"
CLIENT_ID = "aaaaaaaa-bbbb-cccc-dddd-eeeeeeeeeeee"
# A client secret that must never show up in a log line, an exception, a tag or a result.
CLIENT_SECRET = "tk~Secret.Do-Not-Leak_4f9c2b7e81"
DATASTORE = "trainkit_store"
ACCOUNT = "trainkitstorage"
CONTAINER = "trainkit-data"
ARTIFACT_ACCOUNT = "trainkitartifacts"
ARTIFACT_CONTAINER = "azureml"
IMAGE = "mcr.microsoft.com/azureml/openmpi4.1.0-ubuntu22.04:latest"


def store_uri(path: str) -> str:
    return f"azureml://datastores/{DATASTORE}/paths/{path}"


def connection_json(api_endpoint: str, **extra: object) -> str:
    """An ``azure`` connection with a client secret, whose every call goes to the local fake."""
    return json.dumps(
        {
            "conn_type": "azure",
            "login": CLIENT_ID,
            "password": CLIENT_SECRET,
            "extra": {
                "tenantId": TENANT,
                "subscriptionId": SUBSCRIPTION,
                "resource_group_name": RESOURCE_GROUP,
                "workspace_name": WORKSPACE,
                "region": "eastus",
                "api_endpoint": api_endpoint,
                "retry_backoff_factor": 0,
                # The fake throttles only when told to: no account limit on it (the limiter itself
                # is tested in tests/training/test_ratelimit.py and measured by the triggerer benchmark).
                "status_calls_per_second": "unlimited",
                **extra,
            },
        }
    )


def add_stores(fake) -> None:
    """The workspace's data datastore and its artifact store (where job logs live)."""
    fake.add_datastore(DATASTORE, ACCOUNT, CONTAINER)
    fake.add_datastore("workspaceartifactstore", ARTIFACT_ACCOUNT, ARTIFACT_CONTAINER)


def run_as_azure_ml(job_properties: dict, mounts: dict[str, Path]) -> subprocess.CompletedProcess:
    """Run a created job's command as an Azure ML node would: each ``${{inputs.x}}`` /
    ``${{outputs.x}}`` placeholder replaced by its mount folder (``mounts``, keyed ``"inputs.x"``),
    run by a shell with the job's environment variables (this interpreter's packages on the path)."""
    command = job_properties["command"]
    for placeholder, folder in mounts.items():
        command = command.replace("${{" + placeholder + "}}", str(folder))
    if "${{" in command:
        raise ValueError(f"a placeholder has no mount: {command}")
    env = {**os.environ, **job_properties["environmentVariables"], "PYTHONPATH": os.pathsep.join(sys.path)}
    return subprocess.run(["sh", "-c", command], env=env, capture_output=True, text=True, timeout=600)
