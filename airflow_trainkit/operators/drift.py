"""DriftCheckOperator: compare a current data window with a reference, store Evidently's report, and
announce drift as an Airflow Asset event that can schedule retraining."""

from __future__ import annotations

import logging
import re
from typing import TYPE_CHECKING, Any

from airflow_trainkit._compat import AirflowSkipException, Asset, AssetAlias, BaseOperator

if TYPE_CHECKING:
    from collections.abc import Mapping, Sequence

    import pandas as pd
    from airflow.sdk import Context

    from airflow_trainkit.drift.tables import Table

log = logging.getLogger(__name__)

ON_DRIFT = ("fail", "continue", "skip")


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
    Benjamini-Hochberg correction and an effect-size floor by default (see docs/drift.md).

    The task returns a small summary (to XCom). With ``model_name``, drift found by a task that
    succeeds (``on_drift="continue"``) emits an event for ``x-trainkit://<model_name>/drift`` with
    the summary in its extra; no drift emits nothing. Airflow records asset events only for tasks
    that succeed, so ``fail`` and ``skip`` emit none.

    :param reference: the reference table: a CSV/Parquet URI, or SQL with ``reference_conn_id`` (templated).
    :param current: the current window: a URI, or SQL with ``current_conn_id`` (templated).
    :param columns: feature columns to compare; default all columns, which must then match (templated).
    :param method: a method for every column it can test, or ``{column: method}``; one of ``ks``,
        ``chisquare``, ``psi``, ``wasserstein``, ``jensenshannon`` (templated).
    :param threshold: a threshold for every column, or ``{column: threshold}``; Evidently's
        defaults otherwise (0.05 for p-values, 0.1 for distances) (templated).
    :param drift_share: the dataset drifts when at least this share of feature columns drift.
    :param on_drift: ``fail`` (raise ``DriftDetected`` after the report is stored), ``continue``
        (succeed and emit the asset event) or ``skip`` (mark the task skipped).
    :param report_uri: folder for ``report.html``, ``report.json``, ``summary.json``; default
        ``trainkit_home()/reports/drift/<dag>/<run>/<task>`` (templated).
    :param reference_conn_id: Airflow connection to run ``reference`` as SQL against (templated).
    :param current_conn_id: Airflow connection to run ``current`` as SQL against (templated).
    :param target: the label column (label drift; performance with ``prediction``).
    :param prediction: the prediction column (prediction drift).
    :param performance_metric: ``accuracy``, ``f1``, ``roc_auc``, ``rmse`` or ``mae``.
    :param max_performance_drop: relative drop of the metric that counts as performance drift.
    :param correction: ``bh``, ``bonferroni`` or ``none`` (Evidently's own per-column behaviour).
    :param min_effect: effect-size floor for p-value methods (KS D, chi-square total variation); 0 disables.
    :param max_rows: windows above this many rows are sampled with ``seed``.
    :param model_name: names the drift asset; without it no asset event is emitted.
    :param cache_reference: cache the prepared reference of a file URI under ``trainkit_home()/cache``.
    """

    template_fields: Sequence[str] = (
        "reference",
        "current",
        "columns",
        "method",
        "threshold",
        "report_uri",
        "reference_conn_id",
        "current_conn_id",
    )
    template_fields_renderers = {"reference": "sql", "current": "sql"}
    ui_color = "#f4d6a0"

    def __init__(
        self,
        *,
        reference: str,
        current: str,
        columns: list[str] | None = None,
        method: str | Mapping[str, str] | None = None,
        threshold: float | Mapping[str, float] | None = None,
        drift_share: float = 0.5,
        on_drift: str = "fail",
        report_uri: str | None = None,
        reference_conn_id: str | None = None,
        current_conn_id: str | None = None,
        target: str | None = None,
        prediction: str | None = None,
        performance_metric: str | None = None,
        max_performance_drop: float = 0.05,
        correction: str = "bh",
        min_effect: float = 0.02,
        max_rows: int | None = 5_000_000,
        seed: int = 0,
        model_name: str | None = None,
        cache_reference: bool = True,
        **kwargs: Any,
    ) -> None:
        if model_name:
            kwargs["outlets"] = [*(kwargs.get("outlets") or []), drift_alias(model_name)]
        super().__init__(**kwargs)
        self.reference = reference
        self.current = current
        self.columns = columns
        self.method = method
        self.threshold = threshold
        self.drift_share = drift_share
        self.on_drift = on_drift
        self.report_uri = report_uri
        self.reference_conn_id = reference_conn_id
        self.current_conn_id = current_conn_id
        self.target = target
        self.prediction = prediction
        self.performance_metric = performance_metric
        self.max_performance_drop = max_performance_drop
        self.correction = correction
        self.min_effect = min_effect
        self.max_rows = max_rows
        self.seed = seed
        self.model_name = model_name
        self.cache_reference = cache_reference

    def execute(self, context: Context) -> dict[str, Any]:
        # heavy (numpy, pandas): only when the task runs, never at DAG parse
        from airflow_trainkit.drift.check import run_check
        from airflow_trainkit.drift.config import DriftConfig
        from airflow_trainkit.exceptions import DriftDetected

        if self.on_drift not in ON_DRIFT:
            raise ValueError(f"on_drift must be one of {list(ON_DRIFT)}, got {self.on_drift!r}")
        for field in ("reference", "current"):
            if not isinstance(getattr(self, field), str) or not getattr(self, field).strip():
                raise ValueError(f"{field} must be a table URI or a SQL query, got {getattr(self, field)!r}")
        config = DriftConfig(
            columns=list(self.columns) if self.columns is not None else None,
            method=self.method,
            threshold=self.threshold,
            drift_share=self.drift_share,
            correction=self.correction,
            min_effect=self.min_effect,
            target=self.target,
            prediction=self.prediction,
            performance_metric=self.performance_metric,
            max_performance_drop=self.max_performance_drop,
            max_rows=self.max_rows,
            seed=self.seed,
        )
        config.validate()
        needed = None
        if config.columns is not None:
            needed = list(dict.fromkeys([*config.columns, *config.aligned_columns]))
        report_uri = self.report_uri or _default_report_uri(context, self.task_id)
        result = run_check(
            reference=_table(self.reference, self.reference_conn_id, needed, "reference"),
            current=_table(self.current, self.current_conn_id, needed, "current"),
            config=config,
            reference_uri=None if self.reference_conn_id else self.reference,
            report_uri=report_uri,
            cache=self.cache_reference,
        )
        summary = result.summary()
        if result.empty_current:
            log.warning("Current window is empty: nothing judged, no drift reported. Report: %s", report_uri)
            return summary
        drifted = summary["drifted_columns"]
        log.info(
            "Drift: %s (dataset drift %s, %s of %s feature columns). Drifted: %s. Report: %s",
            summary["drift"],
            summary["dataset_drift"],
            summary["drifted_count"],
            summary["columns_checked"],
            ", ".join(f"{c['column']} ({c['method']})" for c in drifted) or "none",
            report_uri,
        )
        if not result.drift:
            return summary
        if self.model_name and self.on_drift == "continue":
            alias = drift_alias(self.model_name)
            context["outlet_events"][alias].add(drift_asset(self.model_name), extra=summary)
            log.info("Asset event for %s emitted", drift_asset(self.model_name).uri)
        if self.on_drift == "fail":
            raise DriftDetected(
                f"drift found in {summary['drifted_count']} of {summary['columns_checked']} columns; report at "
                f"{report_uri}",
                drifted_columns=drifted,
                report_uri=report_uri,
            )
        if self.on_drift == "skip":
            raise AirflowSkipException(f"drift found; report at {report_uri}")
        return summary


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
