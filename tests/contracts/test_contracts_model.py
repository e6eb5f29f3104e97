"""Parsing contracts: every field, and errors that name the file, the line, the key and the value."""

from __future__ import annotations

import json
from typing import TYPE_CHECKING

import pytest

from airflow_trainkit.contracts.model import ContractError, contract_from_dict, load_contract, parse_contract

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
        (MINIMAL + "    colour: red\n", 5, "columns[0].colour", "unknown key"),
        (
            MINIMAL + "    range: {min: abc}\n",
            5,
            "columns[0].range.min",
            "must be a number, or a date or time for a datetime column, got 'abc'",
        ),
        (MINIMAL + "    range: {min: 5, max: 1}\n", 5, "columns[0].range", "min 5 is greater than max 1"),
        (
            MINIMAL + "    range: {severity: warning}\n",
            5,
            "columns[0].range",
            "range needs 'min', 'max' or both",
        ),
        (MINIMAL + "    type: decimal\n", 5, "columns[0].type", "duplicate key 'type'"),
        (
            "dataset: x\ncolumns:\n  - name: a\n    type: decimal\n",
            4,
            "columns[0].type",
            "Input should be 'integer', 'float', 'number', 'string', 'boolean' or 'datetime', got 'decimal'",
        ),
        (MINIMAL + "    nullable: nope\n", 5, "columns[0].nullable", "valid boolean, got 'nope'"),
        (
            MINIMAL + "    nullable: 'false'\n",
            5,
            "columns[0].nullable",
            "valid boolean, got 'false'",
        ),  # strict
        (MINIMAL + "    unique: {value: yes please}\n", 5, "columns[0].unique.value", "valid boolean"),
        (MINIMAL + "    unique: {severity: warning}\n", 5, "columns[0].unique.value", "required, missing"),
        (MINIMAL + "    severity: fatal\n", 5, "columns[0].severity", "Input should be 'error' or 'warning'"),
        (MINIMAL + "    regex: '(['\n", 5, "columns[0].regex", "not a valid regular expression"),
        (MINIMAL + "    allowed_values: []\n", 5, "columns[0].allowed_values", "at least 1 item"),
        (MINIMAL + "    allowed_values: [a, {b: 1}]\n", 5, "columns[0].allowed_values[1]", "a plain value"),
        (
            MINIMAL + "    max_null_share: {value: 0.1, mostly: 0.5}\n",
            5,
            "columns[0].max_null_share.mostly",
            "unknown key",
        ),
        (MINIMAL + "table:\n  row_counts: {min: 1}\n", 6, "table.row_counts", "unknown key"),
        (
            MINIMAL + "table:\n  row_count: {min: -1}\n",
            6,
            "table.row_count.min",
            "greater than or equal to 0, got -1",
        ),
        (MINIMAL + "table:\n  row_count: {min: 1.5}\n", 6, "table.row_count.min", "valid integer, got 1.5"),
        (
            MINIMAL + "table:\n  freshness: {column: ts, max_age: soon}\n",
            6,
            "table.freshness.max_age",
            "must be seconds or a duration such as '90s', '30m', '2h', '1d' or '1h30m', got 'soon'",
        ),
        (MINIMAL + "table:\n  freshness: {column: ts}\n", 6, "table.freshness.max_age", "required, missing"),
        (
            MINIMAL + "  - name: id\n",
            5,
            "columns[1].name",
            "column 'id' is listed twice (first as columns[0])",
        ),
        (
            MINIMAL + "    max_null_share: 1.5\n",
            5,
            "columns[0].max_null_share",
            "less than or equal to 1, got 1.5",
        ),
        ("columns: []\n", 1, "dataset", "required, missing"),
        ("dataset: 2024\ncolumns: []\n", 1, "dataset", "valid string, got 2024"),  # strict: no silent '2024'
        ("dataset: x\ncolumns: {a: 1}\n", 2, "columns", "valid list, got {'a': 1}"),
        ("dataset: x\n", 1, "columns", "the contract has no checks"),
        (
            "dataset: x\ntable:\n  no_extra_columns: true\n",
            3,
            "table.no_extra_columns",
            "needs the contract to list its columns",
        ),
        ("- dataset: x\n", None, None, "the contract is a list: expected a mapping"),
    ],
)
def test_bad_contracts_name_file_line_key_and_value(
    text: str, line: int | None, key: str | None, expected: str
) -> None:
    with pytest.raises(ContractError) as info:
        parse_contract(text, source="contracts/bad.yaml")
    message = str(info.value)
    where = "contracts/bad.yaml" + (f":{line}" if line else "")
    assert message.startswith(f"{where}: {key}: " if key else f"{where}: "), message
    assert expected in message, message
    assert isinstance(info.value, ValueError)


def test_every_problem_is_listed_each_with_its_line() -> None:
    text = "dataset: x\nversion: 1.10\ncolumns:\n  - name: a\n    unique: 1\n    colour: red\n"
    with pytest.raises(ContractError) as info:
        parse_contract(text, source="c.yaml")
    assert str(info.value).split("; ") == [
        "c.yaml:2: version: Input should be a valid string, got 1.1",  # YAML read 1.10 as 1.1: quote it
        "c.yaml:5: columns[0].unique: Input should be a valid boolean, got 1",
        "c.yaml:6: columns[0].colour: unknown key",
    ]


def test_missing_and_empty_contract_files(tmp_path: Path) -> None:
    with pytest.raises(ContractError, match=r"nope\.yaml: contract file not found"):
        load_contract(tmp_path / "nope.yaml")
    empty = tmp_path / "empty.yaml"
    empty.write_text("")
    with pytest.raises(ContractError, match=r"empty\.yaml: the contract is empty"):
        load_contract(empty)


@pytest.mark.parametrize(
    ("max_age", "seconds"),
    [
        ("1d", 86400),
        ("36h", 129600),
        ("1h30m", 5400),
        ("90", 90),
        (90, 90),
        ("1d 12h", 129600),
        ("2w", 1209600),
    ],
)
def test_max_age_takes_every_duration_spelling(max_age: object, seconds: float) -> None:
    contract = contract_from_dict(
        {"dataset": "x", "table": {"freshness": {"column": "ts", "max_age": max_age}}}
    )
    (freshness,) = [check for check in contract.checks if check.kind == "freshness"]
    assert freshness.params["max_age_seconds"] == seconds


@pytest.mark.parametrize("max_age", ["0h", "soon", True, -5, "3 years", "30m2h"])
def test_bad_max_age_is_refused(max_age: object) -> None:
    with pytest.raises(ContractError, match=r"^<dict>: table\.freshness\.max_age: must be"):
        contract_from_dict(
            {"dataset": "x", "table": {"freshness": {"column": "ts", "max_age": max_age}}}, source="<dict>"
        )


def test_short_and_long_forms_build_the_same_checks() -> None:
    short = parse_contract(MINIMAL + "    unique: true\n    regex: '^a'\n    max_null_share: 0\n")
    long = parse_contract(
        MINIMAL + "    unique: {value: true}\n    regex: {value: '^a'}\n    max_null_share: {value: 0}\n"
    )
    assert short.checks == long.checks


def test_lineage_is_one_string_many_or_none() -> None:
    assert parse_contract(MINIMAL + "lineage: CRM export\n").lineage == ("CRM export",)
    assert parse_contract(MINIMAL + "lineage: [a, b]\n").lineage == ("a", "b")
    assert parse_contract(MINIMAL + "lineage:\n").lineage == ()
