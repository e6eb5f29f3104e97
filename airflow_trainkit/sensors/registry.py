"""Sensor that waits for a model version with an alias or tag, e.g. a new ``champion`` to deploy."""

from __future__ import annotations

import time
from datetime import timedelta
from functools import cached_property
from typing import TYPE_CHECKING, Any

from typing_extensions import override

from airflow_trainkit._compat import AirflowException, BaseSensorOperator, PokeReturnValue, default_deferrable
from airflow_trainkit.vocabulary import renamed_parameter

if TYPE_CHECKING:
    from collections.abc import Sequence

    from airflow.sdk import Context

    from airflow_trainkit.hooks.mlflow import MlflowHook
    from airflow_trainkit.training.waiting import WaitPolicy


class ModelVersionSensor(BaseSensorOperator):
    """Wait until ``model_name`` has a version with ``alias`` (or ``tag``) newer than ``newer_than``.

    Deferrable by default (waits in the triggerer). Returns the version as a dict: ``version``,
    ``run_id``, ``source``, ``model_uri``.

    :param model_name: the registered model. (templated)
    :param alias: e.g. ``"champion"``. (templated)
    :param tag: ``{"key": "value"}``, instead of ``alias``. (templated)
    :param newer_than: only a version with a higher number counts, e.g. the one deployed now. (templated)
    :param mlflow_conn_id: a ``trainkit_mlflow`` connection; ``None`` for ``trainkit_mlflow_default``
        or the embedded registry. (templated)
    :param deferrable: wait in the triggerer instead of poking from a worker. ``None``: ``True``,
        unless the deployment sets Airflow's ``[operators] default_deferrable``.
    :param conn_id: deprecated name of ``mlflow_conn_id``.
    """

    template_fields: Sequence[str] = ("model_name", "alias", "tag", "newer_than", "mlflow_conn_id")

    def __init__(
        self,
        *,
        model_name: str,
        alias: str | None = None,
        tag: dict[str, str] | None = None,
        newer_than: int | str | None = None,
        mlflow_conn_id: str | None = None,
        deferrable: bool | None = None,
        conn_id: str | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.model_name = model_name
        self.alias = alias
        self.tag = tag
        self.newer_than = newer_than
        self.mlflow_conn_id = renamed_parameter(
            "ModelVersionSensor", "conn_id", "mlflow_conn_id", conn_id, mlflow_conn_id
        )
        self.deferrable = default_deferrable() if deferrable is None else deferrable
        self._policy: WaitPolicy | None = None

    @cached_property
    def hook(self) -> MlflowHook:
        """The sensor's one MLflow hook (and so one client across pokes), built on first use."""
        from airflow_trainkit.hooks.mlflow import MlflowHook

        return MlflowHook(conn_id=self.mlflow_conn_id)

    def _check(self) -> int | None:
        from airflow_trainkit.registry.watch import check_target

        if not isinstance(self.model_name, str) or not self.model_name:
            raise ValueError(f"model_name must be a non-empty string, got {self.model_name!r}")
        return check_target(self.alias, self.tag, self.newer_than)

    @override
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
                mlflow_conn_id=self.mlflow_conn_id,
                poll_interval=float(self.poke_interval),
                deadline=deadline,
            ),
            method_name="execute_complete",
            timeout=timedelta(seconds=max(deadline - time.time(), 0) + 60) if deadline else None,
        )

    @override
    def poke(self, context: Context) -> Any:
        from airflow_trainkit.registry.watch import find_newer_version, is_transient
        from airflow_trainkit.training.waiting import WaitPolicy

        newer_than = self._check()
        if self._policy is None:  # one per sensor object: it counts failed pokes in a row
            self._policy = WaitPolicy(interval=float(self.poke_interval), is_transient=is_transient)
        found = self._policy.once(
            lambda: find_newer_version(
                self.hook.get_client(),
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
        """Resume after the trigger's event: the found version, or the reason it ended without one.

        :raises ValueError: the event is not of the trigger's shape (names what is wrong).
        """
        from airflow_trainkit.registry.watch import read_event
        from airflow_trainkit.training.lifecycle import fail_if_execution_timed_out

        checked = read_event(event)
        if checked.status == "timeout":
            fail_if_execution_timed_out(context, self.execution_timeout, f"waiting for {self.model_name}")
        if checked.version is None:
            raise AirflowException(f"ModelVersionSensor {self.model_name}: {checked.message}")
        return checked.version.model_dump(mode="json")
