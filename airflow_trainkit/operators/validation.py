"""``ValidateDataOperator``: check a dataset against a data contract before training on it."""

from __future__ import annotations

import re
from typing import TYPE_CHECKING, Any

from typing_extensions import override

from airflow_trainkit._compat import AirflowSkipException, BaseOperator
from airflow_trainkit.exceptions import DataValidationFailed
from airflow_trainkit.home import reports_dir
from airflow_trainkit.vocabulary import FailurePolicy, failure_policy, renamed_parameter

if TYPE_CHECKING:
    from collections.abc import Sequence

    from airflow.sdk import Context

FINGERPRINT_XCOM_KEY = "fingerprint"
SUMMARY_XCOM_KEY = "validation_summary"


class ValidateDataOperator(BaseOperator):
    """Validate ``data`` against ``contract`` with Great Expectations 1.x; return a small summary.

    Nothing is read and GX is not imported until the task runs. The full GX result (JSON) and
    GX's Data Docs page are written to ``report_uri``, whole or not at all, before the task fails,
    warns or skips. The return value (XCom) is a small summary: success, counts, the failed checks
    (check, column, expectation, observed value) and a fingerprint of the data (rows, schema hash,
    content hash).

    :param data: a CSV or Parquet URI (a path, ``file://``, ``s3://``, ``gs://``, ``abfs://``...), or
        with ``database_conn_id`` a SQL query or a table name validated inside the database. (templated)
    :param contract: a data contract file (YAML/JSON), a GX suite JSON, a GX checkpoint JSON inside
        its GX project, or the same as a dict. (templated)
    :param on_failure: what a failed ``error`` check does (a
        :class:`~airflow_trainkit.vocabulary.FailurePolicy`): ``fail`` raises
        :class:`~airflow_trainkit.exceptions.DataValidationFailed`, ``warn`` logs and succeeds, ``skip``
        marks the task skipped so that downstream training does not run. Failed ``warning`` checks
        are only logged. (templated)
    :param report_uri: folder for the report; default
        ``<trainkit home>/reports/validation/<dag>/<run>/<task>``. (templated)
    :param database_conn_id: an Airflow connection to a SQL database; ``data`` is then SQL. (templated)
    :param hash_sql_content: for SQL data, stream the rows once more to hash their content
        (memory stays bounded); ``False`` records row count and column names only. A template
        renders ``true``/``false`` (any case). (templated)
    :param conn_id: deprecated name of ``database_conn_id``.
    """

    template_fields: Sequence[str] = (
        "data",
        "contract",
        "on_failure",
        "report_uri",
        "database_conn_id",
        "hash_sql_content",
    )
    template_ext: Sequence[str] = (".sql",)
    template_fields_renderers = {"data": "sql", "contract": "json"}
    ui_color = "#fdebd0"

    def __init__(
        self,
        *,
        data: str,
        contract: str | dict[str, Any],
        on_failure: str | FailurePolicy = "fail",
        report_uri: str | None = None,
        database_conn_id: str | None = None,
        hash_sql_content: bool | str = True,
        conn_id: str | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.data = data
        self.contract = contract
        self.on_failure = on_failure
        self.report_uri = report_uri
        self.database_conn_id = renamed_parameter(
            "ValidateDataOperator", "conn_id", "database_conn_id", conn_id, database_conn_id
        )
        self.hash_sql_content = hash_sql_content

    @override
    def execute(self, context: Context) -> dict[str, Any]:
        policy = failure_policy(self.on_failure, field="on_failure")
        hash_content = _flag(self.hash_sql_content, field="hash_sql_content")
        if not isinstance(self.data, str) or not self.data.strip():
            raise ValueError(f"data must be a non-empty URI or SQL query, got {self.data!r}")
        # The engine imports GX and pandas: only now, when the task runs.
        from airflow_trainkit.contracts.engine import validate

        sql_url = None
        secrets: list[str] = []
        if self.database_conn_id:
            from airflow_trainkit.sql import masked_connection_url

            sql_url, secrets = masked_connection_url(self.database_conn_id)
        report_uri = self.report_uri or default_report_uri(context)
        outcome = validate(
            self.data,
            self.contract,
            sql_url=sql_url,
            sql_label=f"connection {self.database_conn_id}" if self.database_conn_id else None,
            report_uri=report_uri,
            secrets=secrets,
            hash_sql_content=hash_content,
        )
        return self.handle_outcome(context, outcome.summary, policy)

    def handle_outcome(
        self, context: Context, summary: dict[str, Any], policy: FailurePolicy | None = None
    ) -> dict[str, Any]:
        """Log the outcome, then return, raise or skip as ``policy`` (default: ``on_failure``) says."""
        policy = policy or failure_policy(self.on_failure, field="on_failure")
        fingerprint = summary["fingerprint"]
        # Its own key, so a registration task can take ``validate.output["fingerprint"]``.
        context["ti"].xcom_push(key=FINGERPRINT_XCOM_KEY, value=fingerprint)
        self.log.info(
            "Validated %s against %s: %s of %s checks passed; %s rows, schema %s, content %s. Report: %s",
            summary["data"],
            summary["dataset"],
            summary["passed"],
            summary["evaluated"],
            fingerprint["rows"],
            fingerprint["schema_hash"][:12],
            (fingerprint.get("content_hash") or "-")[:12],
            summary["report_uri"],
        )
        if summary["empty"]:
            self.log.warning("The dataset %s is empty (0 rows).", summary["data"])
        for failed in summary["failed_checks"]:
            self.log.warning(
                "Failed %s check %s (column %s, %s): observed %s%s",
                failed["severity"],
                failed["check"],
                failed["column"],
                failed["expectation"],
                failed["observed"],
                f"; {failed['error']}" if failed.get("error") else "",
            )
        if summary["success"]:
            return summary
        message = (
            f"data {summary['data']!r} broke contract {summary['dataset']!r}: {summary['failed_errors']} "
            f"of {summary['evaluated']} checks failed "
            f"({', '.join(f['check'] for f in summary['failed_checks'] if f['severity'] == 'error')}). "
            f"Report: {summary['report_uri']}"
        )
        if policy is FailurePolicy.WARN:
            self.log.warning("%s (on_failure='warn': the task succeeds)", message)
            return summary
        context["ti"].xcom_push(key=SUMMARY_XCOM_KEY, value=summary)
        if policy is FailurePolicy.SKIP:
            self.log.warning("%s (on_failure='skip': downstream tasks are skipped)", message)
            raise AirflowSkipException(message)
        raise DataValidationFailed(
            message,
            failed_checks=[f for f in summary["failed_checks"] if f["severity"] == "error"],
            report_uri=summary["report_uri"],
        )


def default_report_uri(context: Context) -> str:
    """``<trainkit home>/reports/validation/<dag>/<run>/<task>[-<map index>]``: a retry overwrites it."""
    ti = context["ti"]
    task = ti.task_id if getattr(ti, "map_index", -1) in (-1, None) else f"{ti.task_id}-{ti.map_index}"
    parts = [ti.dag_id, context["run_id"], task]
    return str(reports_dir().joinpath("validation", *(re.sub(r"[^A-Za-z0-9_.=-]", "_", p) for p in parts)))


def _flag(value: Any, *, field: str) -> bool:
    """A boolean parameter, as given or as a template renders it (``"True"``, ``"false"``)."""
    if isinstance(value, bool):
        return value
    if isinstance(value, str) and value.strip().lower() in ("true", "false"):
        return value.strip().lower() == "true"
    raise ValueError(f"{field} must be true or false, got {value!r}")
