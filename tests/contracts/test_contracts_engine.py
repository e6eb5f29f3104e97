"""The real GX engine on real frames: clean data passes, each kind of damage fails the right check."""

from __future__ import annotations

import datetime as dt
import json
from typing import TYPE_CHECKING

import pytest

from airflow_trainkit.contracts.compile import compile_suite, resolve_contract
from airflow_trainkit.contracts.engine import Outcome, validate, validate_frame
from airflow_trainkit.contracts.model import parse_contract

if TYPE_CHECKING:
    from pathlib import Path


def run(frame, contract) -> Outcome:
    return validate_frame(frame, resolve_contract(contract), data_label="test")


def failed_ids(outcome: Outcome) -> list[str]:
    return [f["check"] for f in outcome.summary["failed_checks"]]


def test_clean_data_passes_with_a_small_summary_and_a_fingerprint(churn_frame, churn_contract) -> None:
    outcome = run(churn_frame, churn_contract)
    summary = outcome.summary
    assert summary["success"] is True, summary["failed_checks"]
    assert summary["failed"] == 0
    assert summary["evaluated"] == len(resolve_contract(churn_contract).checks) == summary["passed"]
    assert summary["empty"] is False
    fingerprint = summary["fingerprint"]
    assert fingerprint["rows"] == len(churn_frame)
    assert len(fingerprint["schema_hash"]) == 64 and len(fingerprint["content_hash"]) == 32
    assert len(json.dumps(summary)) < 4000  # small enough for XCom; the full result goes to the report


def test_fingerprint_follows_content_and_schema(churn_frame, churn_contract) -> None:
    base = run(churn_frame, churn_contract).summary["fingerprint"]
    again = run(churn_frame.copy(), churn_contract).summary["fingerprint"]
    changed = churn_frame.copy()
    changed.loc[5, "age"] = 40.5
    other = run(changed, churn_contract).summary["fingerprint"]
    retyped = run(churn_frame.astype({"churned": "int32"}), churn_contract).summary["fingerprint"]
    assert again == base
    assert other["content_hash"] != base["content_hash"] and other["schema_hash"] == base["schema_hash"]
    assert retyped["schema_hash"] != base["schema_hash"]


def test_nulls_fail_the_nullable_check(churn_frame, churn_contract) -> None:
    frame = churn_frame.copy()
    frame.loc[:9, "customer_id"] = None
    summary = run(frame, churn_contract).summary
    assert summary["success"] is False
    failed = {f["check"]: f for f in summary["failed_checks"]}
    assert failed["columns.customer_id.nullable"]["unexpected_count"] == 10
    assert failed["columns.customer_id.nullable"]["expectation"] == "expect_column_values_to_not_be_null"
    assert failed["columns.customer_id.nullable"]["column"] == "customer_id"


def test_out_of_range_values_fail_the_range_check_with_a_sample(churn_frame, churn_contract) -> None:
    frame = churn_frame.copy()
    frame.loc[:4, "age"] = 250.0
    summary = run(frame, churn_contract).summary
    assert failed_ids(run(frame, churn_contract)) == ["columns.age.range"]
    failed = summary["failed_checks"][0]
    assert failed["unexpected_count"] == 5 and failed["sample"][0] == 250.0
    assert failed["observed"] == f"5 of {len(frame)} rows unexpected"
    assert failed["severity"] == "error"


def test_missing_column_is_a_failed_check_not_a_crash(churn_frame, churn_contract) -> None:
    summary = run(churn_frame.drop(columns=["region"]), churn_contract).summary
    failed = {f["check"]: f for f in summary["failed_checks"]}
    assert failed["columns.region.exists"]["observed"] == "column not in the data"
    assert failed["columns.region.exists"]["severity"] == "error"
    # The column's other checks cannot run: they fail too, saying why.
    assert "does not exist" in failed["columns.region.allowed_values"]["error"]
    assert summary["success"] is False


def test_wrong_type_fails_the_type_check(churn_frame, churn_contract) -> None:
    frame = churn_frame.copy()
    frame["customer_id"] = frame["customer_id"].astype(str)
    summary = run(frame, churn_contract).summary
    failed = {f["check"]: f for f in summary["failed_checks"]}
    assert "columns.customer_id.type" in failed
    assert failed["columns.customer_id.type"]["expectation"] == "expect_column_values_to_be_in_type_list"


def test_float_column_where_integer_is_required(churn_frame, churn_contract) -> None:
    frame = churn_frame.astype({"churned": "float64"})
    failed = {f["check"]: f for f in run(frame, churn_contract).summary["failed_checks"]}
    assert failed["columns.churned.type"]["observed"] == "float64"


def test_empty_dataset_is_reported_as_empty(churn_frame, churn_contract) -> None:
    summary = run(churn_frame.iloc[:0], churn_contract).summary
    assert summary["empty"] is True
    assert summary["fingerprint"]["rows"] == 0
    assert "table.row_count" in failed_ids(run(churn_frame.iloc[:0], churn_contract))
    assert summary["success"] is False


def test_empty_dataset_fails_the_implicit_not_empty_check(churn_frame) -> None:
    contract = parse_contract("dataset: x\ncolumns:\n  - name: age\n    type: number\n")
    outcome = run(churn_frame.iloc[:0], contract)
    assert failed_ids(outcome) == ["table.not_empty"]
    assert outcome.summary["empty"] is True


def test_warning_failures_report_but_do_not_fail(churn_frame, churn_contract) -> None:
    frame = churn_frame.copy()
    frame["extra"] = 1  # no_extra_columns is a warning in the demo contract
    summary = run(frame, churn_contract).summary
    assert summary["success"] is True
    assert summary["failed_warnings"] == 1 and summary["failed_errors"] == 0
    assert summary["failed_checks"][0]["check"] == "table.no_extra_columns"
    assert summary["failed_checks"][0]["severity"] == "warning"


def test_freshness_and_datetime_bounds(churn_frame) -> None:
    import pandas as pd

    now = dt.datetime(2026, 6, 1, 12, tzinfo=dt.UTC)
    frame = pd.DataFrame({"ts": pd.to_datetime(["2026-05-30 10:00", "2026-05-31 20:00"])})
    contract = parse_contract(
        "dataset: events\ncolumns:\n  - name: ts\n    type: datetime\n"
        "    range: {min: 2026-01-01}\ntable:\n  freshness: {column: ts, max_age: 1d}\n"
    )
    assert validate_frame(frame, contract, data_label="t", now=now).summary["success"] is True
    late = now + dt.timedelta(days=2)
    stale = validate_frame(frame, contract, data_label="t", now=late).summary
    assert [f["check"] for f in stale["failed_checks"]] == ["table.freshness"]
    aware = frame.assign(ts=frame["ts"].dt.tz_localize("UTC"))
    assert validate_frame(aware, contract, data_label="t", now=now).summary["success"] is True


def test_csv_datetimes_are_parsed_for_datetime_columns(tmp_path: Path) -> None:
    path = tmp_path / "events.csv"
    path.write_text("ts,n\n2026-05-31T20:00:00,1\n2026-05-30T10:00:00,2\n")
    contract = parse_contract(
        "dataset: e\ncolumns:\n  - name: ts\n    type: datetime\n  - name: n\n    type: integer\n"
    )
    assert validate(str(path), contract).summary["success"] is True


def test_regex_allowed_values_unique_and_null_share(churn_frame) -> None:
    contract = parse_contract(
        "dataset: c\ncolumns:\n"
        "  - name: region\n    regex: '^[a-z]{4}$'\n"
        "  - name: contract\n    allowed_values: [one-year, two-year]\n"
        "  - name: age\n    unique: true\n"
        "  - name: monthly_charges\n    max_null_share: 0.001\n"
    )
    summary = run(churn_frame, contract).summary
    assert [f["check"] for f in summary["failed_checks"]] == [
        "columns.region.regex",
        "columns.contract.allowed_values",
        "columns.age.unique",
        "columns.monthly_charges.max_null_share",
    ]


def test_report_is_written_whole_and_opens(
    churn_frame, churn_parquet, churn_contract, tmp_path: Path
) -> None:
    report = tmp_path / "report"
    outcome = validate(churn_parquet, str(churn_contract), report_uri=str(report))
    assert outcome.summary["report_uri"] == str(report)
    assert sorted(p.name for p in report.iterdir()) == [
        "_SUCCESS",
        "data_docs.html",
        "result.json",
        "suite.json",
        "summary.json",
    ]
    result = json.loads((report / "result.json").read_text())
    assert result["success"] is True and len(result["results"]) == outcome.summary["evaluated"]
    assert json.loads((report / "summary.json").read_text())["report_uri"] == str(report)
    html = (report / "data_docs.html").read_text()
    assert html.lstrip().lower().startswith("<!doctype html") or "<html" in html[:500].lower()
    assert "expect_column_values_to_not_be_null" in html or "values must never be null" in html
    assert json.loads((report / "suite.json").read_text())["name"] == "churn"


def test_existing_gx_suite_json_can_replace_the_contract(churn_frame, churn_contract, tmp_path: Path) -> None:
    suite = compile_suite(resolve_contract(churn_contract)).to_json_dict()
    suite_file = tmp_path / "churn_suite.json"
    suite_file.write_text(json.dumps(suite, default=str))
    frame = churn_frame.copy()
    frame.loc[:4, "age"] = 250.0
    summary = run(frame, str(suite_file)).summary
    assert [f["check"] for f in summary["failed_checks"]] == ["columns.age.range"]
    assert summary["dataset"] == "churn"


def test_gx_checkpoint_in_a_gx_project(churn_frame, tmp_path: Path) -> None:
    root = tmp_path / "gx"
    for folder in ("checkpoints", "validation_definitions", "expectations"):
        (root / folder).mkdir(parents=True)
    (root / "expectations" / "ages.json").write_text(
        json.dumps(
            {
                "name": "ages",
                "expectations": [
                    {
                        "type": "expect_column_values_to_be_between",
                        "kwargs": {"column": "age", "max_value": 50},
                    },
                    {"type": "expect_column_to_exist", "kwargs": {"column": "age"}, "severity": "warning"},
                ],
            }
        )
    )
    (root / "validation_definitions" / "vd.json").write_text(
        json.dumps({"name": "vd", "suite": {"name": "ages"}})
    )
    checkpoint = root / "checkpoints" / "nightly.json"
    checkpoint.write_text(
        json.dumps({"name": "nightly", "validation_definitions": [{"name": "vd"}], "actions": []})
    )
    summary = run(churn_frame, str(checkpoint)).summary
    assert summary["evaluated"] == 2
    assert [f["check"] for f in summary["failed_checks"]] == ["ages[0].expect_column_values_to_be_between"]


def test_bad_gx_suite_names_the_file_and_expectation(tmp_path: Path, churn_frame) -> None:
    from airflow_trainkit.contracts.model import ContractError

    bad = tmp_path / "bad_suite.json"
    bad.write_text(
        json.dumps(
            {"name": "s", "expectations": [{"type": "expect_column_values_to_be_purple", "kwargs": {}}]}
        )
    )
    with pytest.raises(
        ContractError, match=r"bad_suite\.json: expectations\[0\]: not a valid GX expectation"
    ):
        run(churn_frame, str(bad))


def test_unreadable_uri_names_the_uri_and_the_cause(churn_contract, tmp_path: Path) -> None:
    missing = tmp_path / "nope.parquet"
    with pytest.raises(OSError, match=r"nope\.parquet.*no such file"):
        validate(str(missing), str(churn_contract))
    with pytest.raises(ValueError, match="cannot tell the format"):
        validate(str(tmp_path / "data.xlsx"), str(churn_contract))


def test_validate_for_demo(churn_contract: Path, tmp_path: Path) -> None:
    from airflow_trainkit.contracts.engine import validate_for_demo
    from airflow_trainkit.demo.data import make_churn_frame, write_churn_dataset
    from airflow_trainkit.exceptions import DataValidationFailed

    good = write_churn_dataset(tmp_path / "train.parquet", rows=5000, seed=7)
    summary = validate_for_demo(str(good), str(churn_contract), str(tmp_path / "ok"))
    assert summary["success"] is True and (tmp_path / "ok" / "_SUCCESS").exists()
    bad = make_churn_frame(rows=2000).drop(columns=["contract"])
    bad.to_parquet(tmp_path / "bad.parquet", index=False)
    with pytest.raises(DataValidationFailed) as info:
        validate_for_demo(str(tmp_path / "bad.parquet"), str(churn_contract), str(tmp_path / "bad"))
    assert "columns.contract.exists" in [f["check"] for f in info.value.failed_checks]
    assert (tmp_path / "bad" / "result.json").exists()
