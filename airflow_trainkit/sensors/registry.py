"""Sensor that waits for a model version with an alias or tag, e.g. a new ``champion`` to deploy."""

from __future__ import annotations

import time
from datetime import timedelta
from typing import TYPE_CHECKING, Any

from airflow_trainkit._compat import AirflowException, BaseSensorOperator, PokeReturnValue

if TYPE_CHECKING:
    from collections.abc import Sequence

    from airflow.sdk import Context

    from airflow_trainkit.training.waiting import WaitPolicy


class ModelVersionSensor(BaseSensorOperator):
    """Wait until ``model_name`` has a version with ``alias`` (or ``tag``) newer than ``newer_than``.

    Deferrable by default (waits in the triggerer). Returns the version as a dict: ``version``,
    ``run_id``, ``source``, ``model_uri``.

    :param model_name: the registered model. (templated)
    :param alias: e.g. ``"champion"``. (templated)
    :param tag: ``{"key": "value"}``, instead of ``alias``. (templated)
    :param newer_than: only a version with a higher number counts, e.g. the one deployed now. (templated)
    :param conn_id: a ``trainkit_mlflow`` connection; ``None`` for the default.
    :param deferrable: wait in the triggerer (default) instead of poking from a worker.
    """

    template_fields: Sequence[str] = ("model_name", "alias", "tag", "newer_than")

    def __init__(
        self,
        *,
        model_name: str,
        alias: str | None = None,
        tag: dict[str, str] | None = None,
        newer_than: int | str | None = None,
        conn_id: str | None = None,
        deferrable: bool = True,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.model_name = model_name
        self.alias = alias
        self.tag = tag
        self.newer_than = newer_than
        self.conn_id = conn_id
        self.deferrable = deferrable
        self._policy: WaitPolicy | None = None

    def _check(self) -> int | None:
        from airflow_trainkit.registry.watch import check_target

        if not isinstance(self.model_name, str) or not self.model_name:
            raise ValueError(f"model_name must be a non-empty string, got {self.model_name!r}")
        return check_target(self.alias, self.tag, self.newer_than)

    def execute(self, context: Context) -> Any:
        if not self.deferrable:
            return super().execute(context)
        from airflow_trainkit.training.lifecycle import sensor_deadline
        from airflow_trainkit.triggers.registry import ModelVersionTrigger

        newer_than = self._check()
        deadline, _ = sensor_deadline(
            context, float(self.timeout) if self.timeout else None, self.execution_timeout
        )
        self.defer(
            trigger=ModelVersionTrigger(
                model_name=self.model_name,
                alias=self.alias or None,
                tag=dict(self.tag) if self.tag else None,
                newer_than=newer_than,
                conn_id=self.conn_id,
                poll_interval=float(self.poke_interval),
                deadline=deadline,
            ),
            method_name="execute_complete",
            timeout=timedelta(seconds=max(deadline - time.time(), 0) + 60) if deadline else None,
        )

    def poke(self, context: Context) -> Any:
        from airflow_trainkit.hooks.mlflow import MlflowHook
        from airflow_trainkit.registry.watch import find_newer_version, is_transient
        from airflow_trainkit.training.waiting import WaitPolicy

        newer_than = self._check()
        if self._policy is None:  # one per sensor object: it counts failed pokes in a row
            self._policy = WaitPolicy(interval=float(self.poke_interval), is_transient=is_transient)
        found = self._policy.once(
            lambda: find_newer_version(
                MlflowHook(conn_id=self.conn_id).get_client(),
                self.model_name,
                alias=self.alias or None,
                tag=self.tag or None,
                newer_than=newer_than,
            )
        )
        if found is None:
            return False
        return PokeReturnValue(is_done=True, xcom_value=found)

    def execute_complete(self, context: Context, event: dict[str, Any]) -> dict[str, Any]:
        from airflow_trainkit.training.lifecycle import fail_if_execution_timed_out

        if event.get("status") == "timeout":
            fail_if_execution_timed_out(context, self.execution_timeout, f"waiting for {self.model_name}")
        if event.get("status") != "found":
            raise AirflowException(f"ModelVersionSensor {self.model_name}: {event.get('message')}")
        return event["version"]
