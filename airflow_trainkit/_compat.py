"""The one place that imports from Airflow, so a version change is mended here only."""

from __future__ import annotations

import os
from typing import TYPE_CHECKING, Any

from airflow.sdk import (
    Asset,
    AssetAlias,
    BaseHook,
    BaseOperator,
    BaseOperatorLink,
    BaseSensorOperator,
    Connection,
    ObjectStoragePath,
    get_current_context,
)
from airflow.sdk.bases.sensor import PokeReturnValue
from airflow.sdk.exceptions import (
    AirflowException,
    AirflowFailException,
    AirflowSkipException,
    AirflowTaskTimeout,
    TaskDeferralError,
    TaskDeferralTimeout,
    TaskDeferred,
)
from airflow.sdk.log import mask_secret

if TYPE_CHECKING:
    from airflow.dag_processing.dagbag import DagBag
    from airflow.listeners import hookimpl
    from airflow.sdk.listener import get_listener_manager
    from airflow.triggers.base import BaseTrigger, TriggerEvent

# Only the triggerer and the operators' deferral paths need these: a DAG file that imports an
# operator does not pay for airflow.triggers.base (about 20 ms of its parse) until then. The last
# three are for local runs of a DAG (airflow_trainkit.local), never for a DAG file.
_LAZY = {
    "BaseTrigger": "airflow.triggers.base",
    "TriggerEvent": "airflow.triggers.base",
    "DagBag": "airflow.dag_processing.dagbag",
    "hookimpl": "airflow.listeners",
    "get_listener_manager": "airflow.sdk.listener",
}

__all__ = [
    "AirflowException",
    "AirflowFailException",
    "AirflowSkipException",
    "AirflowTaskTimeout",
    "Asset",
    "AssetAlias",
    "BaseHook",
    "BaseOperator",
    "BaseOperatorLink",
    "BaseSensorOperator",
    "BaseTrigger",
    "Connection",
    "DagBag",
    "ObjectStoragePath",
    "PokeReturnValue",
    "TaskDeferralError",
    "TaskDeferralTimeout",
    "TaskDeferred",
    "TriggerEvent",
    "get_current_context",
    "get_listener_manager",
    "hookimpl",
    "mask_secret",
]


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        import importlib

        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def task_state_now(dag_id: str, run_id: str, task_id: str, map_index: int = -1) -> str | None:
    """The task instance's state as the scheduler sees it now, through the supervisor.

    Works in a task process and in the triggerer (from a thread other than the event loop's).
    """
    from airflow.sdk.execution_time.task_runner import RuntimeTaskInstance

    states = RuntimeTaskInstance.get_task_states(
        dag_id=dag_id, map_index=map_index, task_ids=[task_id], run_ids=[run_id]
    )
    key = task_id if map_index < 0 else f"{task_id}_{map_index}"
    return states.get(run_id, {}).get(key)


async def atask_state_now(dag_id: str, run_id: str, task_id: str, map_index: int = -1) -> str | None:
    """``task_state_now`` from a trigger, on the triggerer's event loop."""
    from airflow.sdk.execution_time import task_runner
    from airflow.sdk.execution_time.comms import GetTaskStates

    comms = getattr(task_runner, "SUPERVISOR_COMMS", None)
    if comms is None or not hasattr(comms, "asend"):
        raise LookupError("no Airflow supervisor to ask (not running in a triggerer)")
    response = await comms.asend(
        GetTaskStates(dag_id=dag_id, map_index=map_index, task_ids=[task_id], run_ids=[run_id])
    )
    key = task_id if map_index < 0 else f"{task_id}_{map_index}"
    return response.task_states.get(run_id, {}).get(key)


def xcom_value(ti_key: object, key: str) -> object:
    """One XCom of a task instance, for extra links."""
    from airflow.sdk.execution_time.xcom import XCom

    return XCom.get_value(ti_key=ti_key, key=key)  # type: ignore[arg-type]


_DEFERRABLE_ENV = "AIRFLOW__OPERATORS__DEFAULT_DEFERRABLE"


def default_deferrable() -> bool:
    """``deferrable`` for an operator that was given none: ``True`` (promise 1: waiting costs no
    worker slot) unless the deployment sets Airflow's ``[operators] default_deferrable`` explicitly.

    Airflow's own default for that option is ``false``, and ``airflow.cfg`` as Airflow generates it
    writes that default out (``default_deferrable = false``), so a ``false`` in the file cannot be
    told from "not set". The explicit settings are the environment variable (or its ``_CMD`` /
    ``_SECRET`` forms), either way, and a ``true`` in the file.
    """
    from airflow.sdk.configuration import conf

    if any(os.environ.get(_DEFERRABLE_ENV + tail) for tail in ("", "_CMD", "_SECRET")):
        return conf.getboolean("operators", "default_deferrable", fallback=True)
    return True
