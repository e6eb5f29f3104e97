"""Parsing contracts: every field, and errors that name the file, the line and the key."""

from __future__ import annotations

import json
from typing import TYPE_CHECKING

import pytest

from airflow_trainkit.contracts.model import ContractError, load_contract, parse_contract, parse_duration

if TYPE_CHECKING:
    from pathlib import Path

MINIMAL = """\
dataset: events
columns:
  - name: id
    type: integer
"""


def test_demo_contract_parses_with_every_check(churn_contract: Path) -> None:
    contract = load_contract(churn_contract)
    assert contract.dataset == "churn"
    assert contract.owner == "ml-platform@example.com"
    assert contract.lineage == ("CRM export, nightly, one partition per day",)
    assert contract.column_names()[:2] == ["customer_id", "tenure_months"]
    ids = {check.id for check in contract.checks}
    assert {
        "columns.customer_id.exists",
        "columns.customer_id.type",
        "columns.customer_id.nullable",
        "columns.customer_id.unique",
        "columns.customer_id.range",
        "columns.contract.allowed_values",
        "columns.region.regex",
        "columns.monthly_charges.max_null_share",
        "table.row_count",
        "table.no_extra_columns",
    } <= ids
    by_id = {check.id: check for check in contract.checks}
    assert by_id["columns.region.regex"].severity == "warning"
    assert by_id["columns.data_usage_gb.max_null_share"].severity == "warning"
    assert by_id["columns.customer_id.range"].params == {"min": 1}
    assert by_id["table.row_count"].params == {"min": 1000, "max": 10000000}


def test_table_max_null_share_applies_to_columns_without_their_own_rule() -> None:
    contract = parse_contract(
        MINIMAL + "  - name: a\n  - name: b\n    nullable: false\n  - name: c\n    max_null_share: 0.5\n"
        "table:\n  max_null_share: 0.1\n"
    )
    shared = [c for c in contract.checks if c.id.startswith("table.max_null_share.")]
    assert [(c.column, c.params["share"]) for c in shared] == [("id", 0.1), ("a", 0.1)]


def test_long_form_severity_and_mostly() -> None:
    contract = parse_contract(
        MINIMAL + "    range: {min: 0, max: 10, severity: warning, mostly: 0.95}\n"
        "    allowed_values: {value: [1, 2], severity: error}\n"
        "table:\n  freshness: {column: ts, max_age: 36h}\n  row_count: {min: 0}\n"
    )
    by_id = {check.id: check for check in contract.checks}
    assert by_id["columns.id.range"].severity == "warning"
    assert by_id["columns.id.range"].mostly == 0.95
    assert by_id["columns.id.allowed_values"].params == {"values": [1, 2]}
    assert by_id["table.freshness"].params["max_age_seconds"] == 36 * 3600
    assert "table.not_empty" not in by_id  # row_count given: the implicit non-empty check is not added


def test_empty_dataset_check_is_added_by_default() -> None:
    ids = [check.id for check in parse_contract(MINIMAL).checks]
    assert "table.not_empty" in ids


def test_json_contract_is_accepted() -> None:
    text = json.dumps({"dataset": "x", "columns": [{"name": "a", "type": "string", "regex": "^a"}]})
    assert [c.id for c in parse_contract(text, source="x.json").checks][:3] == [
        "columns.a.exists",
        "columns.a.type",
        "columns.a.regex",
    ]


@pytest.mark.parametrize(
    ("text", "line", "key", "expected"),
    [
        ("dataset: x\ncolumns:\n  - name: a\n    type: [\n", 5, None, "not valid YAML"),
        (MINIMAL + "    colour: red\n", 5, "columns[0].colour", "unknown column key 'colour'"),
        (
            MINIMAL + "    range: {min: abc}\n",
            5,
            "columns[0].range.min",
            "expected a number, got the string 'abc'",
        ),
        (MINIMAL + "    range: {min: 5, max: 1}\n", 5, "columns[0].range", "min 5 is greater than max 1"),
        (MINIMAL + "    type: decimal\n", 5, "columns[0].type", "duplicate key 'type'"),
        (
            "dataset: x\ncolumns:\n  - name: a\n    type: decimal\n",
            4,
            "columns[0].type",
            "expected one of integer",
        ),
        (MINIMAL + "    nullable: nope\n", 5, "columns[0].nullable", "expected true or false"),
        (MINIMAL + "    severity: fatal\n", 5, "columns[0].severity", "expected one of error, warning"),
        (MINIMAL + "    regex: '(['\n", 5, "columns[0].regex", "not a valid regular expression"),
        (
            MINIMAL + "table:\n  row_counts: {min: 1}\n",
            6,
            "table.row_counts",
            "unknown table check key 'row_counts'",
        ),
        (
            MINIMAL + "table:\n  row_count: {min: -1}\n",
            6,
            "table.row_count.min",
            "expected a number between 0",
        ),
        (
            MINIMAL + "table:\n  freshness: {column: ts, max_age: soon}\n",
            6,
            "table.freshness.max_age",
            "duration",
        ),
        (MINIMAL + "  - name: id\n", 5, "columns[1].name", "column 'id' is listed twice"),
        (MINIMAL + "    max_null_share: 1.5\n", 5, "columns[0].max_null_share", "between 0.0 and 1.0"),
        ("columns: []\n", 1, "dataset", "is required"),
        ("dataset: x\ncolumns: {a: 1}\n", 2, "columns", "expected a list of columns"),
        ("dataset: x\n", 1, "columns", "has no checks"),
    ],
)
def test_bad_contracts_name_file_line_and_key(text: str, line: int, key: str | None, expected: str) -> None:
    with pytest.raises(ContractError) as info:
        parse_contract(text, source="contracts/bad.yaml")
    message = str(info.value)
    assert message.startswith(f"contracts/bad.yaml, line {line}"), message
    if key:
        assert f"key {key}:" in message, message
    assert expected in message, message
    assert isinstance(info.value, ValueError)


def test_missing_and_empty_contract_files(tmp_path: Path) -> None:
    with pytest.raises(ContractError, match=r"nope\.yaml: contract file not found"):
        load_contract(tmp_path / "nope.yaml")
    empty = tmp_path / "empty.yaml"
    empty.write_text("")
    with pytest.raises(ContractError, match=r"empty\.yaml: the contract is empty"):
        load_contract(empty)


@pytest.mark.parametrize(
    ("value", "seconds"), [("90s", 90), ("30m", 1800), ("36h", 129600), ("2d", 172800), (60, 60)]
)
def test_durations(value: object, seconds: float) -> None:
    assert parse_duration(value) == seconds


@pytest.mark.parametrize("value", ["0h", "soon", True, -5, "3 years"])
def test_bad_durations(value: object) -> None:
    with pytest.raises(ValueError, match="duration"):
        parse_duration(value)
