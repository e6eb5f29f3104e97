"""ValidateDataOperator: light at parse time; fail, warn and skip after the report is stored."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from functools import partial
from pathlib import Path

import pytest
from trainkit_testing import make_context

from airflow_trainkit._compat import AirflowSkipException
from airflow_trainkit.exceptions import DataValidationFailed
from airflow_trainkit.operators.validation import SUMMARY_XCOM_KEY, ValidateDataOperator, default_report_uri
from airflow_trainkit.vocabulary import FailurePolicy

REPO = Path(__file__).resolve().parents[2]
CONTRACT = str(REPO / "example_dags" / "contracts" / "churn.yaml")


_context = partial(make_context, task_id="validate", run_id="manual__1")


@pytest.fixture(scope="module")
def bad_parquet(tmp_path_factory: pytest.TempPathFactory) -> str:
    from airflow_trainkit.demo.data import make_churn_frame

    frame = make_churn_frame(rows=2000, seed=3)
    frame.loc[:19, "age"] = 250.0
    path = tmp_path_factory.mktemp("bad") / "bad.parquet"
    frame.to_parquet(path, index=False)
    return str(path)


@pytest.fixture(scope="module")
def good_csv(tmp_path_factory: pytest.TempPathFactory) -> str:
    from airflow_trainkit.demo.data import write_churn_dataset

    return str(write_churn_dataset(tmp_path_factory.mktemp("good") / "churn.csv", rows=2000))


@pytest.mark.integration  # starts a process
def test_import_and_construction_are_light() -> None:
    code = (
        "import sys\n"
        "from airflow_trainkit.operators.validation import ValidateDataOperator\n"
        "ValidateDataOperator(task_id='v', data='/nope/{{ ds }}.parquet', contract='/nope/c.yaml', on_failure='bogus')\n"
        "heavy = [m for m in ('great_expectations', 'pandas', 'numpy', 'pyarrow') if m in sys.modules]\n"
        "print(','.join(heavy))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, cwd=REPO)
    assert out.stdout.strip() == "", out.stdout  # nothing heavy; no file read, no error before execute()


def test_templates_render_every_parameter(tmp_path: Path) -> None:
    op = ValidateDataOperator(
        task_id="v",
        data="{{ params.data }}",
        contract="{{ params.contract }}",
        on_failure="{{ params.policy }}",
        report_uri="{{ params.report }}",
        database_conn_id="{{ params.db }}",
        hash_sql_content="{{ params.hash }}",
    )
    values = {
        "data": "x.csv",
        "contract": CONTRACT,
        "policy": "skip",
        "report": "r",
        "db": "wh",
        "hash": False,
    }
    op.render_template_fields({"params": values})
    rendered = [op.data, op.contract, op.on_failure, op.report_uri, op.database_conn_id, op.hash_sql_content]
    assert rendered == ["x.csv", CONTRACT, "skip", "r", "wh", "False"]


@pytest.mark.parametrize(
    ("arguments", "message"),
    [
        ({"on_failure": "explode"}, "on_failure must be one of 'fail', 'warn', 'skip', got 'explode'"),
        ({"on_failure": "continue"}, "on_failure must be one of 'fail', 'warn', 'skip', got 'continue'"),
        ({"hash_sql_content": "maybe"}, "hash_sql_content must be true or false, got 'maybe'"),
        ({"data": "  "}, "data must be a non-empty URI or SQL query, got '  '"),
    ],
)
def test_bad_arguments_are_refused_in_execute(arguments: dict, message: str) -> None:
    op = ValidateDataOperator(task_id="v", **{"data": "x.csv", "contract": CONTRACT, **arguments})
    with pytest.raises(ValueError, match=re.escape(message)):
        op.execute(_context())


def test_both_connection_names_at_once_are_refused() -> None:
    with pytest.raises(ValueError, match="pass database_conn_id only"):
        ValidateDataOperator(task_id="v", data="t", contract=CONTRACT, database_conn_id="a", conn_id="b")


def test_clean_csv_passes_and_returns_a_small_summary(good_csv: str, tmp_path: Path) -> None:
    summary = ValidateDataOperator(
        task_id="v", data=good_csv, contract=CONTRACT, report_uri=str(tmp_path / "r")
    ).execute(_context())
    assert summary["success"] is True, summary["failed_checks"]
    assert summary["report_uri"] == str(tmp_path / "r")
    assert len(json.dumps(summary)) < 4000


def test_fail_raises_after_the_report_is_stored(bad_parquet: str, tmp_path: Path) -> None:
    report = tmp_path / "report"
    op = ValidateDataOperator(task_id="v", data=bad_parquet, contract=CONTRACT, report_uri=str(report))
    context = _context()
    with pytest.raises(DataValidationFailed) as info:
        op.execute(context)
    assert [f["check"] for f in info.value.failed_checks] == ["columns.age.range"]
    assert info.value.failed_checks[0]["unexpected_count"] == 20
    assert info.value.report_uri == str(report)
    assert str(report) in str(info.value) and "columns.age.range" in str(info.value)
    assert json.loads((report / "result.json").read_text())["success"] is False
    assert context["ti"].xcoms[SUMMARY_XCOM_KEY]["failed_errors"] == 1


def test_warn_logs_and_succeeds(
    bad_parquet: str, tmp_path: Path, caplog: pytest.LogCaptureFixture, capsys: pytest.CaptureFixture
) -> None:
    op = ValidateDataOperator(
        task_id="v", data=bad_parquet, contract=CONTRACT, on_failure="warn", report_uri=str(tmp_path / "r")
    )
    summary = op.execute(_context())
    assert summary["success"] is False and summary["failed_errors"] == 1
    assert json.loads(json.dumps(summary, allow_nan=False)) == summary  # JSON-typed, nothing stringified
    logged = caplog.text + capsys.readouterr().out  # Airflow's task logger writes through structlog
    assert "Failed error check columns.age.range" in logged and "on_failure='warn'" in logged
    assert str(tmp_path / "r") in logged


@pytest.mark.parametrize("on_failure", ["skip", FailurePolicy.SKIP])
def test_skip_marks_the_task_skipped(bad_parquet: str, tmp_path: Path, on_failure: str) -> None:
    op = ValidateDataOperator(
        task_id="v",
        data=bad_parquet,
        contract=CONTRACT,
        on_failure=on_failure,
        report_uri=str(tmp_path / "r"),
    )
    context = _context()
    with pytest.raises(AirflowSkipException, match=r"columns\.age\.range"):
        op.execute(context)
    assert context["ti"].xcoms[SUMMARY_XCOM_KEY]["success"] is False
    assert (tmp_path / "r" / "data_docs.html").exists()


def test_default_report_uri_is_under_the_reports_dir(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("TRAINKIT_HOME", str(tmp_path))
    uri = default_report_uri(_context(run_id="scheduled__2026-01-01T00:00:00+00:00"))
    assert uri == str(
        tmp_path / "reports" / "validation" / "dag" / "scheduled__2026-01-01T00_00_00_00_00" / "validate"
    )


def test_bad_contract_fails_with_the_file_and_line(good_csv: str, tmp_path: Path) -> None:
    contract = tmp_path / "c.yaml"
    contract.write_text("dataset: x\ncolumns:\n  - name: age\n    range: {min: young}\n")
    op = ValidateDataOperator(
        task_id="v", data=good_csv, contract=str(contract), report_uri=str(tmp_path / "r")
    )
    with pytest.raises(
        ValueError, match=r"c\.yaml:4: columns\[0\]\.range\.min: must be a number.*got 'young'"
    ):
        op.execute(_context())
    assert not (tmp_path / "r").exists()
