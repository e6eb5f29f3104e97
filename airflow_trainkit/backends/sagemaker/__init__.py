"""The SageMaker backend: managed (spot) training jobs through ``CreateTrainingJob``.

Importing this package registers ``backend="sagemaker"``; boto3 is imported only once a job is handled.
"""

from __future__ import annotations

from airflow_trainkit.backends.sagemaker.backend import DEFAULT_CONN_ID, LOG_GROUP, SageMakerBackend
from airflow_trainkit.backends.sagemaker.request import (
    CHECKPOINT_LOCAL_PATH,
    DEFAULT_INSTANCE_TYPE,
    DEFAULT_VOLUME_SIZE_GB,
    KNOWN_OPTIONS,
)
from airflow_trainkit.backends.sagemaker.source import BUILTIN_ENTRY_POINTS, SOURCE_ARCHIVE, package_source
from airflow_trainkit.backends.sagemaker.status import SageMakerState, console_url, status_from_description

__all__ = [
    "BUILTIN_ENTRY_POINTS",
    "CHECKPOINT_LOCAL_PATH",
    "DEFAULT_CONN_ID",
    "DEFAULT_INSTANCE_TYPE",
    "DEFAULT_VOLUME_SIZE_GB",
    "KNOWN_OPTIONS",
    "LOG_GROUP",
    "SOURCE_ARCHIVE",
    "SageMakerBackend",
    "SageMakerState",
    "console_url",
    "package_source",
    "status_from_description",
]
