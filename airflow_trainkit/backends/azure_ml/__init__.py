"""The Azure ML backend: command jobs on a named cluster or serverless compute, spot tier included.

Importing this package registers ``backend="azure_ml"``; azure-ai-ml is imported only once a job is handled.
"""

from __future__ import annotations

from airflow_trainkit.backends.azure_ml.backend import DEFAULT_CONN_ID, AzureMLBackend
from airflow_trainkit.backends.azure_ml.request import (
    CHECKPOINT_OUTPUT,
    DEFAULT_INSTANCE_TYPE,
    JOB_ID_TAG,
    KNOWN_OPTIONS,
    MODEL_OUTPUT,
)
from airflow_trainkit.backends.azure_ml.status import AzureMLState, status_from_facts, studio_url

__all__ = [
    "CHECKPOINT_OUTPUT",
    "DEFAULT_CONN_ID",
    "DEFAULT_INSTANCE_TYPE",
    "JOB_ID_TAG",
    "KNOWN_OPTIONS",
    "MODEL_OUTPUT",
    "AzureMLBackend",
    "AzureMLState",
    "status_from_facts",
    "studio_url",
]
