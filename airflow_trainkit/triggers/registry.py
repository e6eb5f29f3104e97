"""Trigger that waits, in the triggerer, for a model version with an alias or tag newer than a given one."""

from __future__ import annotations

import asyncio
import logging
from typing import TYPE_CHECKING, Any

from typing_extensions import override

from airflow_trainkit._compat import BaseTrigger, TriggerEvent
from airflow_trainkit.vocabulary import renamed_parameter

if TYPE_CHECKING:
    from collections.abc import AsyncIterator

log = logging.getLogger(__name__)

MAX_ERRORS = 5


class ModelVersionTrigger(BaseTrigger):
    """Poll the MLflow registry until a matching version appears; yield exactly one event.

    Events (shape: :class:`~airflow_trainkit.registry.watch.VersionEvent`):
    ``{"status": "found", "version": {...}}``, ``{"status": "timeout", "message": ...}`` or
    ``{"status": "error", "message": ...}`` after :data:`MAX_ERRORS` non-transient failures in a row.
    Polling follows :class:`~airflow_trainkit.training.waiting.WaitPolicy`: throttling, 5xx and
    connection failures are retried with backoff until the deadline.

    :param model_name: the registered model.
    :param alias: wait for a version holding this alias, e.g. ``"champion"``.
    :param tag: or for a version with this one tag, ``{"key": "value"}``.
    :param newer_than: only versions with a higher number count.
    :param mlflow_conn_id: a ``trainkit_mlflow`` connection; ``None`` for the default.
    :param poll_interval: seconds between polls.
    :param deadline: wall-clock time (epoch seconds) after which the trigger gives up.
    :param conn_id: deprecated name of ``mlflow_conn_id`` (a trigger serialized before the rename).
    """

    def __init__(
        self,
        model_name: str,
        alias: str | None = None,
        tag: dict[str, str] | None = None,
        newer_than: int | None = None,
        mlflow_conn_id: str | None = None,
        poll_interval: float = 30.0,
        deadline: float | None = None,
        conn_id: str | None = None,
    ) -> None:
        super().__init__()
        self.model_name = model_name
        self.alias = alias
        self.tag = tag
        self.newer_than = newer_than
        self.mlflow_conn_id = renamed_parameter(
            "ModelVersionTrigger", "conn_id", "mlflow_conn_id", conn_id, mlflow_conn_id
        )
        self.poll_interval = poll_interval
        self.deadline = deadline

    @override
    def serialize(self) -> tuple[str, dict[str, Any]]:
        return (
            f"{type(self).__module__}.{type(self).__qualname__}",
            {
                "model_name": self.model_name,
                "alias": self.alias,
                "tag": dict(self.tag) if self.tag else None,
                "newer_than": self.newer_than,
                "mlflow_conn_id": self.mlflow_conn_id,
                "poll_interval": float(self.poll_interval),
                "deadline": self.deadline,
            },
        )

    def _client(self) -> Any:
        from airflow_trainkit.hooks.mlflow import MlflowHook

        return MlflowHook(conn_id=self.mlflow_conn_id).get_client()

    def _find(self, client: Any) -> dict[str, Any] | None:
        from airflow_trainkit.registry.watch import find_newer_version

        return find_newer_version(
            client, self.model_name, alias=self.alias, tag=self.tag, newer_than=self.newer_than
        )

    @override
    async def run(self) -> AsyncIterator[TriggerEvent]:
        from airflow_trainkit.registry.watch import is_transient
        from airflow_trainkit.training.waiting import WaitDeadlinePassed, WaitPolicy

        client: list[Any] = []

        async def find() -> dict[str, Any] | None:
            if not client:
                client.append(await asyncio.to_thread(self._client))
            return await asyncio.to_thread(self._find, client[0])

        policy = WaitPolicy(
            interval=float(self.poll_interval),
            is_transient=is_transient,
            deadline=self.deadline,
            max_errors=MAX_ERRORS,
        )
        try:
            found = await policy.apoll(find, lambda found: found is not None)
        except WaitDeadlinePassed:
            yield _event(status="timeout", message=f"no matching version of {self.model_name} in time")
            return
        except Exception as err:
            message = f"polling {self.model_name} failed: {type(err).__name__}: {err}"
            yield _event(status="error", message=message)
            return
        yield _event(status="found", version=found)


def _event(**fields: Any) -> TriggerEvent:
    """A ``TriggerEvent`` in the shape the sensor checks on resume (built through the same model)."""
    from airflow_trainkit.registry.watch import VersionEvent

    return TriggerEvent(VersionEvent.model_validate(fields).model_dump(mode="json"))
