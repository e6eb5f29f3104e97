"""The one place that imports from Airflow, so a version change is mended here only."""

from __future__ import annotations

from airflow.sdk import (
    Asset,
    AssetAlias,
    BaseHook,
    BaseOperator,
    BaseOperatorLink,
    BaseSensorOperator,
    Connection,
    ObjectStoragePath,
)
from airflow.sdk.exceptions import (
    AirflowException,
    AirflowFailException,
    AirflowSkipException,
    TaskDeferralError,
    TaskDeferralTimeout,
    TaskDeferred,
)
from airflow.sdk.log import mask_secret
from airflow.triggers.base import BaseTrigger, TriggerEvent

__all__ = [
    "AirflowException",
    "AirflowFailException",
    "AirflowSkipException",
    "Asset",
    "AssetAlias",
    "BaseHook",
    "BaseOperator",
    "BaseOperatorLink",
    "BaseSensorOperator",
    "BaseTrigger",
    "Connection",
    "ObjectStoragePath",
    "TaskDeferralError",
    "TaskDeferralTimeout",
    "TaskDeferred",
    "TriggerEvent",
    "mask_secret",
]
