"""Names and connection settings shared by the Azure ML tests (importable, unlike conftest)."""

from __future__ import annotations

import json

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
                **extra,
            },
        }
    )


def add_stores(fake) -> None:
    """The workspace's data datastore and its artifact store (where job logs live)."""
    fake.add_datastore(DATASTORE, ACCOUNT, CONTAINER)
    fake.add_datastore("workspaceartifactstore", ARTIFACT_ACCOUNT, ARTIFACT_CONTAINER)
