"""Run a contract with GX's ephemeral context on a pandas frame or a SQL source; fingerprint; report.

:func:`validate` is the whole path the operator runs; it knows nothing of Airflow's scheduling.
"""

from __future__ import annotations

import functools
import hashlib
import json
import logging
import math
import os
import re
import warnings
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from airflow_trainkit.contracts.compile import (
    CHECK_META_KEY,
    SuiteSource,
    compile_suite,
    resolve_contract,
    severity_of,
)
from airflow_trainkit.contracts.model import Contract
from airflow_trainkit.sql import scrub

if TYPE_CHECKING:
    import datetime as dt
    from collections.abc import Iterable, Sequence

    import pandas as pd

log = logging.getLogger(__name__)

RESULT_FORMAT = "SUMMARY"
MAX_FAILED_IN_SUMMARY = 50
_MAX_TEXT = 240
_SAMPLE = 5
_SQL_CHUNK_ROWS = 100_000
_TABLE_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_$]*(\.[A-Za-z_][A-Za-z0-9_$]*)?$")
CONTENT_HASH_METHOD = "md5 of pandas.util.hash_pandas_object(frame, index=True)"


@dataclass
class Outcome:
    """What one validation produced: the small summary, and the full report's parts."""

    summary: dict[str, Any]
    result: dict[str, Any]
    suite: dict[str, Any]
    html: str
    failed_checks: list[dict[str, Any]] = field(default_factory=list)

    @property
    def success(self) -> bool:
        """No check of severity ``error`` failed (failed warnings do not count)."""
        return bool(self.summary["success"])


def quiet_gx() -> None:
    """No usage analytics, no progress bars, no info chatter from GX."""
    os.environ.setdefault("GX_ANALYTICS_ENABLED", "false")
    logging.getLogger("great_expectations").setLevel(logging.WARNING)


def validate(
    data: str,
    contract: Any,
    *,
    sql_url: str | None = None,
    sql_label: str | None = None,
    report_uri: str | None = None,
    secrets: Sequence[str] = (),
    now: dt.datetime | None = None,
    hash_sql_content: bool = True,
) -> Outcome:
    """Validate ``data`` against ``contract`` and store the report; the operator's whole core path.

    :param data: a CSV/Parquet URI, or (with ``sql_url``) a SQL query or a table name.
    :param contract: anything :func:`~airflow_trainkit.contracts.compile.resolve_contract` accepts.
    :param sql_url: SQLAlchemy URL of the database holding ``data``; ``None`` for files.
    :param sql_label: how the database is named in the report (never the URL), e.g. ``conn:my_db``.
    :param report_uri: folder to write the report to, whole or not at all; ``None`` writes nothing.
    :param secrets: strings scrubbed from every part of the report (passwords, the URL).
    """
    source = resolve_contract(contract)
    if sql_url:
        outcome = validate_sql(
            sql_url,
            data,
            source,
            data_label=sql_label or "sql",
            secrets=secrets,
            now=now,
            hash_content=hash_sql_content,
        )
    else:
        outcome = validate_frame(load_frame(data, source), source, data_label=data, now=now)
    if report_uri:
        outcome.summary["report_uri"] = write_report(outcome, report_uri)
    return outcome


def load_frame(uri: str, source: Contract | SuiteSource | None = None) -> pd.DataFrame:
    """Read a CSV or Parquet table; in a CSV, columns the contract types as datetime are parsed.

    :raises OSError: the URI cannot be read; the message names the URI and the cause.
    """
    import pandas as pd  # heavy: only when data is read

    from airflow_trainkit.storage import read_table, table_format

    frame = read_table(uri)
    if isinstance(source, Contract) and table_format(uri) == "csv":
        wanted = {c.name for c in source.columns if c.type == "datetime"}
        wanted |= {c.column for c in source.table_checks if c.kind == "freshness" and c.column}
        for name in wanted & set(frame.columns):
            if frame[name].dtype == object:
                try:
                    frame[name] = pd.to_datetime(frame[name], format="ISO8601")
                except (ValueError, TypeError):
                    pass  # left as text: the type and freshness checks will fail and say why
    return frame


def validate_frame(
    frame: pd.DataFrame, source: Contract | SuiteSource, *, data_label: str, now: dt.datetime | None = None
) -> Outcome:
    """Validate an in-memory pandas frame."""
    quiet_gx()
    import great_expectations as gx  # heavy: run time only

    # GX 1.24 cannot match a time-zone-aware dtype in a type list: such columns are validated in
    # UTC, as naive timestamps (a copy of those columns only; the fingerprint is of the original).
    aware = [name for name, dtype in frame.dtypes.items() if getattr(dtype, "tz", None) is not None]
    checked = frame.assign(**{str(n): frame[n].dt.tz_convert(None) for n in aware}) if aware else frame
    suite = compile_suite(source, engine="pandas", now=now)
    context = _context()
    batch = (
        context.data_sources.add_pandas("trainkit")
        .add_dataframe_asset(_asset_name(source))
        .add_batch_definition_whole_dataframe("whole")
    )
    definition = context.validation_definitions.add(
        gx.ValidationDefinition(name="trainkit", data=batch, suite=context.suites.add(suite))
    )
    result = definition.run(batch_parameters={"dataframe": checked}, result_format=RESULT_FORMAT)
    result_dict = _json_safe(result.to_json_dict())
    marker = ((result_dict.get("meta") or {}).get("batch_markers") or {}).get("pandas_data_fingerprint")
    if aware:
        marker = None  # GX hashed the UTC copy; hash the frame as given
    fingerprint = frame_fingerprint(frame, content_hash=marker)
    html = render_data_docs(result)
    return _outcome(source, suite, result_dict, html, fingerprint, data_label, secrets=())


def validate_sql(
    url: str,
    data: str,
    source: Contract | SuiteSource,
    *,
    data_label: str,
    secrets: Sequence[str] = (),
    now: dt.datetime | None = None,
    hash_content: bool = True,
) -> Outcome:
    """Validate a table or query in the database: GX pushes the checks down as SQL.

    A query runs through a GX query asset with a temporary table, so column types can be checked;
    nothing is pulled into memory for the checks. The fingerprint streams the rows in chunks
    (``hash_content=False`` counts rows with ``COUNT(*)`` instead and skips the content hash).
    """
    quiet_gx()
    import great_expectations as gx  # heavy: run time only

    data = data.strip().rstrip(";").strip()
    if not data:
        raise ValueError("data must be a SQL query or a table name when a connection is given, got ''")
    secrets = [s for s in (*secrets, url) if s]
    label = f"{data_label}: {data}"
    _check_sqlite_file(url, data_label)
    is_table = bool(_TABLE_NAME.match(data))
    suite = compile_suite(source, engine="sql", now=now)
    try:
        context = _context()
        warnings.filterwarnings("ignore", message="You are using a generic SQLDatasource")
        datasource = context.data_sources.add_sql(
            "trainkit_sql", connection_string=url, create_temp_table=not is_table
        )
        if is_table:
            schema, _, table = data.rpartition(".")
            # GX 1.14 deprecates schema_name (even None): pass it only for a "schema.table" name.
            in_schema = {"schema_name": schema} if schema else {}
            asset = datasource.add_table_asset(_asset_name(source), table_name=table, **in_schema)
        else:
            asset = datasource.add_query_asset(_asset_name(source), query=data)
        batch = asset.add_batch_definition_whole_table("whole")
        definition = context.validation_definitions.add(
            gx.ValidationDefinition(name="trainkit", data=batch, suite=context.suites.add(suite))
        )
        result = definition.run(result_format=RESULT_FORMAT)
        fingerprint = sql_fingerprint(url, data, is_table=is_table, hash_content=hash_content)
    except Exception as err:  # the cause is kept, scrubbed; the chain is dropped: it may hold the URL
        raise OSError(f"cannot validate {label!r}: {scrub(_short(str(err), 600), secrets)}") from None
    result_dict = _json_safe(result.to_json_dict())
    html = render_data_docs(result)
    return _outcome(source, suite, result_dict, html, fingerprint, label, secrets=secrets)


def _context() -> Any:
    import great_expectations as gx  # heavy: run time only
    from great_expectations.data_context.types.base import ProgressBarsConfig

    context = gx.get_context(mode="ephemeral")
    context.variables.progress_bars = ProgressBarsConfig(globally=False)
    return context


def _asset_name(source: Contract | SuiteSource) -> str:
    name = source.dataset if isinstance(source, Contract) else source.name
    return re.sub(r"[^A-Za-z0-9_.-]", "_", name) or "data"


def _check_sqlite_file(url: str, data_label: str) -> None:
    """SQLite creates a missing database file silently; say it is missing instead."""
    if not url.startswith("sqlite:///") or url.startswith("sqlite:///:memory:"):
        return
    path = url[len("sqlite:///") :].split("?", 1)[0]
    if path and not os.path.exists(path):
        raise OSError(f"cannot validate {data_label!r}: the SQLite database file {path!r} does not exist")


# -- fingerprints -------------------------------------------------------------------------------------
def schema_hash(schema: Iterable[tuple[str, str]]) -> str:
    """sha256 of the JSON list of ``[column, dtype]`` pairs, in column order."""
    return hashlib.sha256(json.dumps([[str(n), str(t)] for n, t in schema]).encode()).hexdigest()


def frame_fingerprint(frame: pd.DataFrame, *, content_hash: str | None = None) -> dict[str, Any]:
    """Row count, schema hash and content hash of a frame.

    The content hash is the md5 of ``pandas.util.hash_pandas_object(frame, index=True)``: GX
    computes exactly this as its ``pandas_data_fingerprint`` batch marker, which is reused when given.
    """
    if content_hash is None:
        import pandas as pd  # heavy: only with data

        content_hash = hashlib.md5(
            pd.util.hash_pandas_object(frame, index=True).values, usedforsecurity=False
        ).hexdigest()
    schema = [(str(name), str(dtype)) for name, dtype in frame.dtypes.items()]
    return {
        "rows": len(frame),
        "columns": len(schema),
        "schema_hash": schema_hash(schema),
        "content_hash": content_hash,
        "content_hash_method": CONTENT_HASH_METHOD,
    }


def sql_fingerprint(url: str, data: str, *, is_table: bool, hash_content: bool = True) -> dict[str, Any]:
    """Fingerprint of a SQL table or query, streamed in chunks (memory stays bounded).

    The content hash is the md5 of ``hash_pandas_object`` over the chunks, indexed 0..n-1 across
    chunks, so it equals the frame hash of the same rows read whole with the same dtypes.
    """
    import pandas as pd  # heavy: only with data
    import sqlalchemy as sa

    if is_table:
        schema_name, _, table = data.rpartition(".")
        selectable: Any = sa.select(sa.text("*")).select_from(sa.table(table, schema=schema_name or None))
    else:
        selectable = sa.text(data)
    engine = sa.create_engine(url)
    try:
        with engine.connect() as conn:
            if not hash_content:
                count_query = sa.select(sa.func.count()).select_from(
                    selectable.subquery() if is_table else sa.text(f"({data}) AS trainkit_q")
                )
                rows = int(conn.execute(count_query).scalar_one())
                names = list(conn.execute(selectable if is_table else sa.text(data)).keys())
                return {
                    "rows": rows,
                    "columns": len(names),
                    "schema_hash": schema_hash((n, "?") for n in names),
                    "content_hash": None,
                    "content_hash_method": None,
                }
            digest = hashlib.md5(usedforsecurity=False)
            rows = 0
            dtypes: dict[str, list[str]] = {}
            for chunk in pd.read_sql(selectable, conn, chunksize=_SQL_CHUNK_ROWS):
                chunk.index = pd.RangeIndex(rows, rows + len(chunk))
                digest.update(pd.util.hash_pandas_object(chunk, index=True).values.tobytes())
                rows += len(chunk)
                for name, dtype in chunk.dtypes.items():
                    seen = dtypes.setdefault(str(name), [])
                    if str(dtype) not in seen:
                        seen.append(str(dtype))
    finally:
        engine.dispose()
    schema = [(name, "|".join(kinds)) for name, kinds in dtypes.items()]
    return {
        "rows": rows,
        "columns": len(schema),
        "schema_hash": schema_hash(schema),
        "content_hash": digest.hexdigest(),
        "content_hash_method": CONTENT_HASH_METHOD + ", streamed in chunks",
    }


# -- results -------------------------------------------------------------------------------------------
def _outcome(
    source: Contract | SuiteSource,
    suite: Any,
    result: dict[str, Any],
    html: str,
    fingerprint: dict[str, Any],
    data_label: str,
    *,
    secrets: Sequence[str],
) -> Outcome:
    order = {check.id: i for i, check in enumerate(source.checks)} if isinstance(source, Contract) else {}
    failed: list[dict[str, Any]] = []
    evaluated = 0
    for item in result.get("results") or []:
        evaluated += 1
        if not item.get("success"):
            failed.append(failed_check(item))
    failed.sort(key=lambda f: order.get(f["check"], len(order)))
    errors = [f for f in failed if f["severity"] == "error"]
    name = source.dataset if isinstance(source, Contract) else source.name
    summary: dict[str, Any] = {
        "dataset": name,
        "data": data_label,
        "success": not errors,
        "evaluated": evaluated,
        "passed": evaluated - len(failed),
        "failed": len(failed),
        "failed_errors": len(errors),
        "failed_warnings": len(failed) - len(errors),
        "failed_checks": failed[:MAX_FAILED_IN_SUMMARY],
        "failed_checks_omitted": max(0, len(failed) - MAX_FAILED_IN_SUMMARY),
        "empty": fingerprint.get("rows") == 0,
        "fingerprint": fingerprint,
        "contract": source.origin,
        "validated_at": ((result.get("meta") or {}).get("validation_time")),
        "report_uri": None,
    }
    secrets = [s for s in secrets if s]
    return Outcome(
        summary=scrub(summary, secrets),
        result=scrub(result, secrets),
        suite=scrub(_json_safe(suite.to_json_dict()), secrets),
        html=scrub(html, secrets),
        failed_checks=scrub(failed, secrets),
    )


def failed_check(item: dict[str, Any]) -> dict[str, Any]:
    """One failed expectation as a small JSON dict: check, column, expectation, observed value."""
    config = item.get("expectation_config") or {}
    kwargs = config.get("kwargs") or {}
    result = item.get("result") or {}
    entry: dict[str, Any] = {
        "check": (config.get("meta") or {}).get(CHECK_META_KEY) or config.get("type"),
        "column": kwargs.get("column"),
        "expectation": config.get("type"),
        "severity": severity_of(config.get("severity")),
    }
    if "observed_value" in result:
        entry["observed"] = _small(result["observed_value"])
    if result.get("unexpected_count") is not None:
        entry["unexpected_count"] = result["unexpected_count"]
        entry["unexpected_percent"] = _round(result.get("unexpected_percent"))
        entry["observed"] = f"{result['unexpected_count']} of {result.get('element_count')} rows unexpected"
        sample = result.get("partial_unexpected_list") or []
        if sample:
            entry["sample"] = [_small(v) for v in sample[:_SAMPLE]]
    messages = _exception_messages(item.get("exception_info"))
    if messages:
        entry["error"] = _short(messages[0])
    if entry["expectation"] == "expect_column_to_exist" and "observed" not in entry:
        entry["observed"] = "column not in the data"
    entry.setdefault("observed", None)
    return entry


def _exception_messages(info: Any) -> list[str]:
    if not isinstance(info, dict):
        return []
    if "raised_exception" in info:
        return [str(info.get("exception_message"))] if info.get("raised_exception") else []
    return [
        str(v.get("exception_message"))
        for v in info.values()
        if isinstance(v, dict) and v.get("raised_exception")
    ]


def render_data_docs(result: Any) -> str:
    """GX's own Data Docs page for one validation result, as one HTML document."""
    from great_expectations.render.renderer import ValidationResultsPageRenderer  # heavy: run time only

    for item in result.results:
        # GX 1.24's renderer cannot format numpy scalars (repr is "np.float64(...)" under numpy 2).
        observed = item.result or {}
        for key, value in observed.items():
            if type(value).__module__ == "numpy" and hasattr(value, "item"):
                observed[key] = value.item()
    return str(_page_view().render(ValidationResultsPageRenderer().render(result)))


@functools.cache
def _page_view() -> Any:
    """One view per process: its Jinja environment compiles GX's templates once (about 1 s)."""
    from great_expectations.render.view import DefaultJinjaPageView  # heavy: run time only

    return DefaultJinjaPageView()


def write_report(outcome: Outcome, report_uri: str) -> str:
    """Write summary.json, result.json, suite.json and data_docs.html to ``report_uri``, whole or not at all."""
    from airflow_trainkit.storage import write_folder_atomic

    outcome.summary["report_uri"] = report_uri
    return write_folder_atomic(
        report_uri,
        {
            "summary.json": json.dumps(outcome.summary, indent=2, default=str),
            "result.json": json.dumps(outcome.result, indent=2, default=str),
            "suite.json": json.dumps(outcome.suite, indent=2, default=str),
            "data_docs.html": outcome.html,
        },
    )


# -- small helpers ---------------------------------------------------------------------------------------
def _json_safe(value: Any) -> Any:
    return json.loads(json.dumps(value, default=str))


def _small(value: Any) -> Any:
    if value is None or isinstance(value, bool | int):
        return value
    if isinstance(value, float):
        return _round(value)
    return _short(value if isinstance(value, str) else json.dumps(value, default=str))


def _round(value: Any) -> Any:
    """Floats to 6 places; NaN and infinities (not JSON) to ``None``."""
    if not isinstance(value, float):
        return value
    return round(value, 6) if math.isfinite(value) else None


def _short(text: str, limit: int = _MAX_TEXT) -> str:
    return text if len(text) <= limit else text[: limit - 3] + "..."


def validate_for_demo(data_uri: str, contract_path: str, report_uri: str) -> dict[str, Any]:
    """Validate the demo's data before it trains; the summary, or DataValidationFailed once the report is stored.

    The same path as ``ValidateDataOperator(on_failure="fail")``, for callers outside a DAG.
    """
    from airflow_trainkit.exceptions import DataValidationFailed

    outcome = validate(data_uri, contract_path, report_uri=report_uri)
    if not outcome.success:
        errors = [f for f in outcome.summary["failed_checks"] if f["severity"] == "error"]
        raise DataValidationFailed(
            f"data {data_uri!r} broke contract {outcome.summary['dataset']!r}: "
            f"{', '.join(f['check'] for f in errors)}. Report: {outcome.summary['report_uri']}",
            failed_checks=errors,
            report_uri=outcome.summary["report_uri"],
        )
    return outcome.summary
