"""DriftCheckOperator: compare a current data window with a reference, store Evidently's report, and
announce drift as an Airflow Asset event that can schedule retraining."""

from __future__ import annotations

import logging
import re
from typing import TYPE_CHECKING, Any

from typing_extensions import override

from airflow_trainkit._compat import AirflowSkipException, Asset, AssetAlias, BaseOperator
from airflow_trainkit.drift.config import DriftConfig  # light: the settings model, no engine
from airflow_trainkit.vocabulary import FailurePolicy, deprecated, failure_policy, renamed_parameter

if TYPE_CHECKING:
    from collections.abc import Sequence

    import pandas as pd
    from airflow.sdk import Context

    from airflow_trainkit.drift.tables import Table

log = logging.getLogger(__name__)

OWNER = "DriftCheckOperator"
# on_drift's word for "succeed and emit the asset event" before the shared failure policy.
OLD_POLICY_SPELLINGS = {"continue": "warn"}


def drift_asset(model_name: str) -> Asset:
    """The asset a drift check of ``model_name`` emits an event for: ``x-trainkit://<model_name>/drift``.

    Schedule the retraining DAG on it: ``schedule=[drift_asset("churn")]``. The ``x-`` prefix marks
    a scheme of our own: Airflow then skips its URI normalizers, whose lookup imports every
    provider's asset hooks (boto3, google-cloud-storage, ...) and would cost a DAG ~1.5 s to parse.
    """
    return Asset(uri=f"x-trainkit://{model_name}/drift")


def drift_alias(model_name: str) -> AssetAlias:
    """The alias a drift check declares as its outlet; an event reaches ``drift_asset`` only on drift."""
    return AssetAlias(name=f"trainkit_drift__{model_name}")


class DriftCheckOperator(BaseOperator):
    """Check a current data window for drift against a reference window.

    Data drift per feature column (KS for numeric, chi-square for categorical by default; PSI,
    Wasserstein and Jensen-Shannon per column), label and prediction drift when those columns are
    named, and performance (concept) drift when both are. Decisions follow Evidently's tests, with
    Benjamini-Hochberg correction and an effect-size floor by default (see docs/drift.md). How the
    check decides is its ``config``; the operator holds only where the data is and what to do.

    The task returns a small JSON summary (to XCom). With ``model_name``, drift found by a task that
    succeeds (``on_failure="warn"``) emits an event for ``x-trainkit://<model_name>/drift`` with
    the summary in its extra; no drift emits nothing. Airflow records asset events only for tasks
    that succeed, so ``fail`` and ``skip`` emit none.

    :param reference: the reference table: a CSV/Parquet URI, or SQL with
        ``reference_database_conn_id`` (templated).
    :param current: the current window: a URI, or SQL with ``current_database_conn_id`` (templated).
    :param config: the check's settings: a :class:`~airflow_trainkit.drift.config.DriftConfig`, or
        the same as a dict (templated: a dict's strings are rendered, then it is validated into a
        ``DriftConfig`` when the task runs; a ``DriftConfig`` is used as it is). Default: every
        default of ``DriftConfig``.
    :param on_failure: what drift does: ``fail`` (raise ``DriftDetected`` after the report is
        stored), ``warn`` (log a warning, succeed and emit the asset event) or ``skip`` (mark the
        task skipped) (templated).
    :param report_uri: folder for ``report.html``, ``report.json``, ``summary.json``; default
        ``trainkit_home()/reports/drift/<dag>/<run>/<task>`` (templated).
    :param reference_database_conn_id: the Airflow connection of the SQL database to run
        ``reference`` against (templated).
    :param current_database_conn_id: the Airflow connection of the SQL database to run ``current``
        against (templated).
    :param model_name: names the drift asset; without it no asset event is emitted. Not templated:
        it builds the task's outlet (the asset alias) when the DAG is parsed, before any rendering.
    :param cache_reference: cache the prepared reference of a file URI under
        ``trainkit_home()/cache`` (templated).

    Deprecated for one release, with a ``TrainkitDeprecationWarning``: ``on_drift`` (now
    ``on_failure``; its ``"continue"`` is now ``"warn"``), ``reference_conn_id`` and
    ``current_conn_id`` (now ``reference_database_conn_id`` and ``current_database_conn_id``), and
    each of ``DriftConfig``'s fields as a keyword argument (now a key of ``config``).
    """

    template_fields: Sequence[str] = (
        "reference",
        "current",
        "config",
        "on_failure",
        "report_uri",
        "reference_database_conn_id",
        "current_database_conn_id",
        "cache_reference",
    )
    template_fields_renderers = {"reference": "sql", "current": "sql", "config": "json"}
    ui_color = "#f4d6a0"

    def __init__(
        self,
        *,
        reference: str,
        current: str,
        config: DriftConfig | dict[str, Any] | None = None,
        on_failure: str = FailurePolicy.FAIL.value,
        report_uri: str | None = None,
        reference_database_conn_id: str | None = None,
        current_database_conn_id: str | None = None,
        model_name: str | None = None,
        cache_reference: bool = True,
        **kwargs: Any,
    ) -> None:
        on_failure = renamed_parameter(
            OWNER, "on_drift", "on_failure", kwargs.pop("on_drift", None), on_failure, default="fail"
        )
        if isinstance(on_failure, str) and on_failure in OLD_POLICY_SPELLINGS:  # warn at parse time
            on_failure = failure_policy(on_failure, old_spellings=OLD_POLICY_SPELLINGS).value
        reference_database_conn_id = renamed_parameter(
            OWNER,
            "reference_conn_id",
            "reference_database_conn_id",
            kwargs.pop("reference_conn_id", None),
            reference_database_conn_id,
        )
        current_database_conn_id = renamed_parameter(
            OWNER,
            "current_conn_id",
            "current_database_conn_id",
            kwargs.pop("current_conn_id", None),
            current_database_conn_id,
        )
        config = _fold_settings(
            config, {k: kwargs.pop(k) for k in list(kwargs) if k in DriftConfig.model_fields}
        )
        if model_name:
            kwargs["outlets"] = [*(kwargs.get("outlets") or []), drift_alias(model_name)]
        super().__init__(**kwargs)
        self.reference = reference
        self.current = current
        self.config = config
        self.on_failure = on_failure
        self.report_uri = report_uri
        self.reference_database_conn_id = reference_database_conn_id
        self.current_database_conn_id = current_database_conn_id
        self.model_name = model_name
        self.cache_reference = cache_reference

    @override
    def execute(self, context: Context) -> dict[str, Any]:
        # heavy (numpy, pandas): only when the task runs, never at DAG parse
        from airflow_trainkit.drift.check import run_check

        policy = failure_policy(self.on_failure, old_spellings=OLD_POLICY_SPELLINGS)
        config = self._checked_config()
        self._check_inputs()
        needed = None
        if config.columns is not None:
            needed = list(dict.fromkeys([*config.columns, *config.aligned_columns]))
        report_uri = self.report_uri or _default_report_uri(context, self.task_id)
        result = run_check(
            reference=_table(self.reference, self.reference_database_conn_id, needed, "reference"),
            current=_table(self.current, self.current_database_conn_id, needed, "current"),
            config=config,
            reference_uri=None if self.reference_database_conn_id else self.reference,
            report_uri=report_uri,
            cache=self.cache_reference,
        )
        summary = result.summary()
        if result.empty_current:
            log.warning("Current window is empty: nothing judged, no drift reported. Report: %s", report_uri)
            return summary
        log.info(
            "Drift: %s (dataset drift %s, %s of %s feature columns). Drifted: %s. Report: %s",
            summary["drift"],
            summary["dataset_drift"],
            summary["drifted_feature_count"],
            summary["features_checked"],
            ", ".join(f"{c['column']} ({c['method']})" for c in summary["drifted_columns"]) or "none",
            report_uri,
        )
        if result.drift:
            self._on_drift(policy, summary, context)
        return summary

    def _checked_config(self) -> DriftConfig:
        """The rendered ``config`` as a ``DriftConfig``; a ValueError naming each bad field otherwise."""
        from airflow_trainkit.config_model import build

        if isinstance(self.config, DriftConfig):
            return self.config
        if self.config is None:
            return DriftConfig()
        if not isinstance(self.config, dict):
            raise ValueError(f"config must be a DriftConfig or a dict, got {self.config!r}")
        return build(DriftConfig, self.config, prefix="config")

    def _check_inputs(self) -> None:
        for field in ("reference", "current"):
            value = getattr(self, field)
            if not isinstance(value, str) or not value.strip():
                raise ValueError(f"{field} must be a table URI or a SQL query, got {value!r}")
        for field in ("reference_database_conn_id", "current_database_conn_id", "report_uri"):
            value = getattr(self, field)
            if value is not None and (not isinstance(value, str) or not value.strip()):
                raise ValueError(f"{field} must be a non-empty string or None, got {value!r}")
        if not isinstance(self.cache_reference, bool):
            raise ValueError(f"cache_reference must be True or False, got {self.cache_reference!r}")

    def _on_drift(self, policy: FailurePolicy, summary: dict[str, Any], context: Context) -> None:
        """Emit the asset event (``warn``), or fail or skip the task, as ``on_failure`` says."""
        from airflow_trainkit.exceptions import DriftDetected

        report_uri = summary["report_uri"]
        message = (
            f"drift found in {summary['drifted_count']} of {summary['columns_checked']} columns "
            f"({summary['drifted_feature_count']} of {summary['features_checked']} features); "
            f"report at {report_uri}"
        )
        if policy is FailurePolicy.FAIL:
            raise DriftDetected(message, drifted_columns=summary["drifted_columns"], report_uri=report_uri)
        if policy is FailurePolicy.SKIP:
            raise AirflowSkipException(message)
        log.warning("%s (on_failure='warn': the task succeeds)", message)
        if self.model_name:
            context["outlet_events"][drift_alias(self.model_name)].add(
                drift_asset(self.model_name), extra=summary
            )
            log.info("Asset event for %s emitted", drift_asset(self.model_name).uri)


def _fold_settings(
    config: DriftConfig | dict[str, Any] | None, settings: dict[str, Any]
) -> DriftConfig | dict[str, Any] | None:
    """``config`` with the settings given as deprecated keyword arguments folded in (as a dict,
    validated in execute); a setting given both ways is refused by name."""
    if not settings:
        return config
    names = ", ".join(sorted(settings))
    deprecated(
        f"{OWNER}({', '.join(f'{n}=...' for n in sorted(settings))}) is deprecated; "
        f"pass them in config (a DriftConfig, or a dict with the keys {names})",
        stacklevel=4,
    )
    if config is None:
        return dict(settings)
    if isinstance(config, DriftConfig):
        given, base = config.model_fields_set, config.model_dump(exclude_unset=True)
    elif isinstance(config, dict):
        given, base = set(config), dict(config)
    else:
        raise ValueError(f"{OWNER}: pass the drift settings ({names}) inside config, got config={config!r}")
    both = sorted(given & set(settings))
    if both:
        raise ValueError(f"{OWNER}: {', '.join(both)} given both in config and as a keyword argument")
    return {**base, **settings}


def _default_report_uri(context: Context, task_id: str) -> str:
    from airflow_trainkit.home import reports_dir

    dag = context.get("dag")
    run_id = str(context.get("run_id") or "manual")
    safe_run = re.sub(r"[^A-Za-z0-9._-]+", "_", run_id)
    dag_id = dag.dag_id if dag is not None else "no_dag"
    return str(reports_dir() / "drift" / dag_id / safe_run / task_id)


def _table(source: str, conn_id: str | None, columns: list[str] | None, window: str) -> Table:
    """The window's table; read errors found here or later name the window (see ``Window``)."""
    from airflow_trainkit.drift.tables import FrameTable, open_table

    if conn_id:
        return FrameTable(read=lambda: read_sql(conn_id, source))
    try:
        return open_table(source, columns=columns)
    except OSError as err:
        raise OSError(f"the {window} window: {err}") from err


def read_sql(conn_id: str, sql: str) -> pd.DataFrame:
    """Run ``sql`` on the Airflow connection ``conn_id`` through SQLAlchemy; no URL is ever logged.

    The URL comes from the builder validation uses too, which masks the password in every spelling.
    """
    import pandas as pd  # heavy: only when data is read
    import sqlalchemy

    from airflow_trainkit.sql import masked_connection_url, scrub

    url, secrets = masked_connection_url(conn_id)
    engine = None
    try:
        engine = sqlalchemy.create_engine(url)
        with engine.connect() as connection:
            return pd.read_sql(sqlalchemy.text(sql), connection)
    except sqlalchemy.exc.SQLAlchemyError as err:
        # The cause, scrubbed; the chain is dropped: it may hold the URL.
        cause = scrub(str(getattr(err, "orig", None) or err.__class__.__name__), secrets)
        raise OSError(f"cannot read SQL from connection {conn_id!r}: {cause}") from None
    finally:
        if engine is not None:
            engine.dispose()
