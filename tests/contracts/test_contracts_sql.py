"""Validation inside a real SQLite database reached through an Airflow connection (AIRFLOW_CONN_*)."""

from __future__ import annotations

import json
import logging
from typing import TYPE_CHECKING

import pytest
from trainkit_testing import make_context

from airflow_trainkit._compat import BaseHook
from airflow_trainkit.exceptions import DataValidationFailed
from airflow_trainkit.operators.validation import ValidateDataOperator
from airflow_trainkit.sql import connection_url
from airflow_trainkit.vocabulary import TrainkitDeprecationWarning

if TYPE_CHECKING:
    from pathlib import Path


def test_clean_table_passes_in_the_database(
    sqlite_conn_id: str, churn_contract: Path, churn_frame, tmp_path: Path
) -> None:
    op = ValidateDataOperator(
        task_id="validate",
        data="churn",
        contract=str(churn_contract),
        database_conn_id=sqlite_conn_id,
        report_uri=str(tmp_path / "report"),
    )
    summary = op.execute(make_context(task_id="validate"))
    assert summary["success"] is True, summary["failed_checks"]
    assert summary["data"] == f"connection {sqlite_conn_id}: churn"
    assert summary["fingerprint"]["rows"] == len(churn_frame)
    assert len(summary["fingerprint"]["content_hash"]) == 32
    assert (tmp_path / "report" / "data_docs.html").exists()
    assert json.loads((tmp_path / "report" / "result.json").read_text())["success"] is True


def test_query_with_nulls_and_out_of_range_fails_the_right_checks(
    sqlite_conn_id: str, churn_contract: Path, tmp_path: Path
) -> None:
    op = ValidateDataOperator(
        task_id="validate",
        data="SELECT * FROM churn_bad WHERE customer_id IS NULL OR customer_id > 0",
        contract=str(churn_contract),
        database_conn_id=sqlite_conn_id,
        report_uri=str(tmp_path / "report"),
    )
    with pytest.raises(DataValidationFailed) as info:
        op.execute(make_context(task_id="validate"))
    failed = {f["check"]: f for f in info.value.failed_checks}
    # pandas wrote the id column with NULLs as REAL: the type check rightly fails too.
    assert set(failed) == {"columns.customer_id.nullable", "columns.customer_id.type", "columns.age.range"}
    assert failed["columns.customer_id.type"]["observed"] == "REAL"
    assert failed["columns.customer_id.nullable"]["unexpected_count"] == 10
    assert failed["columns.age.range"]["unexpected_count"] == 10
    assert info.value.report_uri == str(tmp_path / "report")
    assert (tmp_path / "report" / "_SUCCESS").exists()


def test_sql_types_missing_column_and_wrong_type(sqlite_conn_id: str, tmp_path: Path) -> None:
    from airflow_trainkit.contracts.engine import validate
    from airflow_trainkit.contracts.model import parse_contract

    contract = parse_contract(
        "dataset: churn\ncolumns:\n"
        "  - name: customer_id\n    type: integer\n"
        "  - name: region\n    type: string\n"
        "  - name: age\n    type: string\n"  # stored as REAL: a wrong type
        "  - name: loyalty_tier\n    type: string\n"  # not in the table
        "  - name: contract\n    regex: '^one'\n"  # most rows do not match
    )
    url, secrets = connection_url(BaseHook.get_connection(sqlite_conn_id))
    for data in ("churn", "SELECT * FROM churn"):
        summary = validate(data, contract, sql_url=url, sql_label="warehouse", secrets=secrets).summary
        failed = {f["check"]: f for f in summary["failed_checks"]}
        assert set(failed) >= {"columns.age.type", "columns.loyalty_tier.exists"}, failed
        assert "columns.customer_id.type" not in failed and "columns.region.type" not in failed
        assert failed["columns.age.type"]["observed"] == "REAL"
        assert failed["columns.contract.regex"]["unexpected_count"] > 0


@pytest.mark.parametrize(
    "hash_sql_content", [False, "false", "False"]
)  # as given, or as a template renders it
def test_hash_free_fingerprint_counts_rows(
    sqlite_conn_id: str, churn_contract: Path, churn_frame, tmp_path: Path, hash_sql_content: object
) -> None:
    op = ValidateDataOperator(
        task_id="validate",
        data="SELECT * FROM churn",
        contract=str(churn_contract),
        database_conn_id=sqlite_conn_id,
        report_uri=str(tmp_path / "r"),
        hash_sql_content=hash_sql_content,
    )
    fingerprint = op.execute(make_context(task_id="validate"))["fingerprint"]
    assert fingerprint["rows"] == len(churn_frame) and fingerprint["content_hash"] is None


def test_the_old_conn_id_still_works_with_a_warning(
    sqlite_conn_id: str, churn_contract: Path, tmp_path: Path
) -> None:
    with pytest.warns(
        TrainkitDeprecationWarning,
        match=r"ValidateDataOperator\(conn_id=...\) is deprecated; use database_conn_id",
    ):
        op = ValidateDataOperator(
            task_id="validate",
            data="churn",
            contract=str(churn_contract),
            conn_id=sqlite_conn_id,
            report_uri=str(tmp_path / "r"),
        )
    assert op.database_conn_id == sqlite_conn_id
    summary = op.execute(make_context(task_id="validate"))
    assert summary["success"] is True and summary["data"] == f"connection {sqlite_conn_id}: churn"


def test_sql_content_hash_equals_the_frame_hash_of_the_same_rows(churn_sqlite: Path) -> None:
    import pandas as pd
    import sqlalchemy as sa

    from airflow_trainkit.contracts.engine import frame_fingerprint, sql_fingerprint

    url = f"sqlite:///{churn_sqlite}"
    engine = sa.create_engine(url)
    with engine.connect() as conn:
        whole = pd.read_sql(sa.text("SELECT * FROM churn"), conn)
    engine.dispose()
    streamed = sql_fingerprint(url, "churn", is_table=True)
    assert streamed["rows"] == len(whole)
    assert streamed["content_hash"] == frame_fingerprint(whole)["content_hash"]


def test_missing_sqlite_file_is_named(
    monkeypatch: pytest.MonkeyPatch, churn_contract: Path, tmp_path: Path
) -> None:
    monkeypatch.setenv("AIRFLOW_CONN_GONE", f"sqlite:///{tmp_path / 'gone.db'}")
    op = ValidateDataOperator(
        task_id="v", data="churn", contract=str(churn_contract), database_conn_id="gone"
    )
    with pytest.raises(OSError, match=r"gone\.db' does not exist"):
        op.execute(make_context(task_id="validate"))
    assert not (tmp_path / "gone.db").exists()


def test_credentials_never_reach_the_error_or_the_log(
    monkeypatch: pytest.MonkeyPatch,
    churn_contract: Path,
    tmp_path: Path,
    caplog: pytest.LogCaptureFixture,
    capsys: pytest.CaptureFixture,
) -> None:
    password = "s3cr3t-Pa55word"
    monkeypatch.setenv("AIRFLOW_CONN_PG_WAREHOUSE", f"postgres://trainer:{password}@127.0.0.1:1/analytics")
    op = ValidateDataOperator(
        task_id="v",
        data="SELECT * FROM churn",
        contract=str(churn_contract),
        database_conn_id="pg_warehouse",
        report_uri=str(tmp_path / "r"),
    )
    caplog.set_level(logging.DEBUG)
    with pytest.raises(OSError) as info:
        op.execute(make_context(task_id="validate"))
    text = str(info.value)
    assert "connection pg_warehouse" in text
    logged = caplog.text + "".join(capsys.readouterr())
    assert password not in text and password not in logged
    assert (
        info.value.__cause__ is None
        and info.value.__context__ is None
        or password not in repr(info.value.__context__)
    )
    assert not (tmp_path / "r").exists()
