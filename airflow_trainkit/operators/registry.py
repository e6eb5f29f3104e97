"""Register a trained model in MLflow 3 and promote it past a quality gate with aliases."""

from __future__ import annotations

from functools import cached_property
from typing import TYPE_CHECKING, Any

from typing_extensions import override

from airflow_trainkit._compat import AirflowFailException, AirflowSkipException, BaseOperator
from airflow_trainkit.vocabulary import FailurePolicy, deprecated, failure_policy, renamed_parameter

if TYPE_CHECKING:
    from collections.abc import Sequence

    from airflow.sdk import Context

    from airflow_trainkit.hooks.mlflow import MlflowHook

DECISION_XCOM_KEY = "gate_decision"


class _MlflowOperator(BaseOperator):
    """The family base of the registry operators: takes ``mlflow_conn_id``, owns the hook.

    :param mlflow_conn_id: a ``trainkit_mlflow`` connection; ``None`` for ``trainkit_mlflow_default``
        or the embedded sqlite registry. (templated)
    :param conn_id: deprecated name of ``mlflow_conn_id``.
    """

    model_name: str  # every operator of the family names the registered model

    def __init__(
        self, *, mlflow_conn_id: str | None = None, conn_id: str | None = None, **kwargs: Any
    ) -> None:
        super().__init__(**kwargs)
        self.mlflow_conn_id = renamed_parameter(
            type(self).__name__, "conn_id", "mlflow_conn_id", conn_id, mlflow_conn_id
        )

    @cached_property
    def hook(self) -> MlflowHook:
        """The task's one MLflow hook (and so one client), built on first use, after rendering."""
        from airflow_trainkit.hooks.mlflow import MlflowHook

        return MlflowHook(conn_id=self.mlflow_conn_id)

    def _check_name(self) -> str:
        if not isinstance(self.model_name, str) or not self.model_name.strip():
            raise ValueError(f"model_name must be a non-empty string, got {self.model_name!r}")
        return self.model_name.strip()


class RegisterModelOperator(_MlflowOperator):
    """Log a training result to MLflow with its lineage, register a version, alias it ``challenger``.

    The built-in trainer's output (``model.json`` + ``model_meta.json``) is logged with the XGBoost
    flavor, with a signature; any other output is registered by its URI. A retry for the same
    training job returns the version it already made.

    :param model_name: the registered model. (templated)
    :param training_result: the dict TrainModelOperator returns: ``train.output`` or
        ``"{{ ti.xcom_pull('train') }}"`` with ``render_template_as_native_obj=True``. (templated)
    :param data_fingerprint: ``{"row_count", "schema_hash", "content_hash"}`` of the training data,
        from the validation task; stored as lineage tags. (templated)
    :param experiment: MLflow experiment for the run; the connection's by default. (templated)
    :param alias: alias the new version gets. (templated)
    :param mlflow_conn_id: a ``trainkit_mlflow`` connection; ``None`` for ``trainkit_mlflow_default``
        or the embedded sqlite registry. (templated)
    :param storage_conn_id: the connection the training output is read with, when it is in object
        storage: Airflow's object storage picks the filesystem by the URI's scheme (an ``adls`` or
        ``wasb`` connection for ``abfss://``, an ``aws`` one for ``s3://``, ...). ``None``: the
        filesystem's own defaults (for ``abfss://``, adlfs' ``AZURE_STORAGE_*`` variables, else
        azure-identity's default credential on the worker). (templated)
    :param conn_id: deprecated name of ``mlflow_conn_id``.
    """

    template_fields: Sequence[str] = (
        "model_name",
        "training_result",
        "data_fingerprint",
        "experiment",
        "alias",
        "mlflow_conn_id",
        "storage_conn_id",
    )
    template_fields_renderers = {"training_result": "json", "data_fingerprint": "json"}
    ui_color = "#d6eaf8"

    def __init__(
        self,
        *,
        model_name: str,
        training_result: Any,
        data_fingerprint: Any = None,
        experiment: str | None = None,
        alias: str = "challenger",
        mlflow_conn_id: str | None = None,
        storage_conn_id: str | None = None,
        conn_id: str | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(mlflow_conn_id=mlflow_conn_id, conn_id=conn_id, **kwargs)
        self.model_name = model_name
        self.training_result = training_result
        self.data_fingerprint = data_fingerprint
        self.experiment = experiment
        self.alias = alias
        self.storage_conn_id = storage_conn_id

    @override
    def execute(self, context: Context) -> dict[str, Any]:
        from airflow_trainkit.registry.registration import (
            check_fingerprint,
            check_training_result,
            register_training_result,
        )

        name = self._check_name()
        result = check_training_result(self.training_result)
        fingerprint = check_fingerprint(self.data_fingerprint)
        ti = context["ti"]
        lineage = {
            "dag_id": ti.dag_id,
            "airflow_run_id": ti.run_id,
            "task_id": ti.task_id,
            "map_index": getattr(ti, "map_index", -1),
        }
        client = self.hook.get_client()
        summary = register_training_result(
            client,
            experiment_id=self.hook.experiment_id(self.experiment),
            model_name=name,
            result=result,
            data_fingerprint=fingerprint,
            lineage=lineage,
            alias=self.alias,
            storage_conn_id=self.storage_conn_id,
        )
        self.log.info(
            "%s version %s (@%s, reused=%s); open it with: mlflow ui --backend-store-uri %s",
            name,
            summary["version"],
            summary["alias"],
            summary["reused"],
            summary["tracking_uri"],
        )
        return summary


class PromoteModelOperator(_MlflowOperator):
    """Quality gate: move ``champion`` to the challenger if it meets thresholds and the champion.

    Absolute thresholds default to the team guide's checklist (classifiers: ``auc_roc >= 0.80``,
    ``f1_weighted >= 0.70``, ``log_loss <= 0.25``; regressors: ``mape <= 0.05``); ``thresholds``
    overrides per metric (``None`` drops one). The challenger must also not be worse than the
    ``compare_to`` version by more than ``tolerance``. The decision and reasons are tags on the
    version and the task's return value (on rejection, also XCom key ``gate_decision``).

    :param model_name: the registered model. (templated)
    :param version: the version to judge; ``None`` for ``@challenger``. (templated)
    :param thresholds: ``{metric: value}`` or ``{metric: {"threshold", "greater_is_better"}}``. (templated)
    :param compare_to: alias of the baseline; ``None`` for thresholds only. (templated)
    :param tolerance: allowed regression against the baseline, absolute; a number or per metric. (templated)
    :param on_failure: when the gate rejects the version (nothing moves in any case): ``"fail"``
        (the task fails, no retry), ``"warn"`` (the task succeeds and logs the decision as a
        warning) or ``"skip"`` (the task and those downstream are skipped). (templated)
    :param mlflow_conn_id: a ``trainkit_mlflow`` connection; ``None`` for the default. (templated)
    :param on_reject: deprecated name of ``on_failure``.
    :param conn_id: deprecated name of ``mlflow_conn_id``.
    """

    template_fields: Sequence[str] = (
        "model_name",
        "version",
        "thresholds",
        "compare_to",
        "tolerance",
        "on_failure",
        "mlflow_conn_id",
    )
    template_fields_renderers = {"thresholds": "json", "tolerance": "json"}
    ui_color = "#d6eaf8"

    def __init__(
        self,
        *,
        model_name: str,
        version: str | None = None,
        thresholds: dict[str, Any] | None = None,
        compare_to: str | None = "champion",
        tolerance: float | dict[str, float] = 0.01,
        on_failure: str = FailurePolicy.FAIL.value,
        mlflow_conn_id: str | None = None,
        on_reject: str | None = None,
        conn_id: str | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(mlflow_conn_id=mlflow_conn_id, conn_id=conn_id, **kwargs)
        self.model_name = model_name
        self.version = version
        self.thresholds = thresholds
        self.compare_to = compare_to
        self.tolerance = tolerance
        self.on_failure = renamed_parameter(
            "PromoteModelOperator", "on_reject", "on_failure", on_reject, on_failure, default="fail"
        )

    @override
    def execute(self, context: Context) -> dict[str, Any]:
        from airflow_trainkit.registry.gate import check_tolerance
        from airflow_trainkit.registry.promotion import promote

        name = self._check_name()
        policy = failure_policy(self.on_failure, field="on_failure")
        tolerance = check_tolerance(self.tolerance)  # the inputs first, before the registry is called
        decision = promote(
            self.hook.get_client(),
            name,
            version=str(self.version) if self.version not in (None, "") else None,
            thresholds=self.thresholds,
            compare_to=self.compare_to or None,
            tolerance=tolerance,
        )
        if decision["passed"]:
            self.log.info("%s version %s: %s", name, decision["version"], decision["decision"])
            return decision
        context["ti"].xcom_push(key=DECISION_XCOM_KEY, value=decision)
        message = f"{name} version {decision['version']} rejected: " + "; ".join(decision["reasons"])
        if policy is FailurePolicy.WARN:
            self.log.warning("%s; not promoted (on_failure='warn'). Decision: %s", message, decision)
            return decision
        if policy is FailurePolicy.SKIP:
            raise AirflowSkipException(message)
        # A gate's verdict does not change on retry: fail without retrying.
        raise AirflowFailException(message)


class RollbackChampionOperator(_MlflowOperator):
    """Point ``champion`` back at ``previous-champion``.

    See :func:`airflow_trainkit.registry.promotion.rollback_champion`.

    :param model_name: the registered model. (templated)
    :param mlflow_conn_id: a ``trainkit_mlflow`` connection; ``None`` for the default. (templated)
    :param conn_id: deprecated name of ``mlflow_conn_id``.
    """

    template_fields: Sequence[str] = ("model_name", "mlflow_conn_id")

    def __init__(
        self, *, model_name: str, mlflow_conn_id: str | None = None, conn_id: str | None = None, **kwargs: Any
    ) -> None:
        super().__init__(mlflow_conn_id=mlflow_conn_id, conn_id=conn_id, **kwargs)
        self.model_name = model_name

    @override
    def execute(self, context: Context) -> dict[str, Any]:
        from airflow_trainkit.registry.promotion import rollback

        return rollback(self.hook.get_client(), self._check_name())


def rollback_champion(model_name: str, conn_id: str | None = None) -> dict[str, Any]:
    """Deprecated here: use :func:`airflow_trainkit.registry.promotion.rollback_champion`."""
    deprecated(
        "airflow_trainkit.operators.registry.rollback_champion(model_name, conn_id=...) is deprecated; "
        "use airflow_trainkit.registry.promotion.rollback_champion(model_name, mlflow_conn_id=...)"
    )
    from airflow_trainkit.registry.promotion import rollback_champion as rollback_in_core

    return rollback_in_core(model_name, mlflow_conn_id=conn_id)
