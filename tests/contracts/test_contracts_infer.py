"""A contract inferred from trusted data parses, passes on that data, and catches damage; the CLI."""

from __future__ import annotations

import argparse
import json
from typing import TYPE_CHECKING

import pytest

from airflow_trainkit.contracts import cli
from airflow_trainkit.contracts.engine import validate, validate_frame
from airflow_trainkit.contracts.infer import infer_contract_dict, infer_contract_yaml
from airflow_trainkit.contracts.model import parse_contract

if TYPE_CHECKING:
    from pathlib import Path


def _main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="trainkit")
    cli.register(parser.add_subparsers(dest="command", required=True))
    args = parser.parse_args(argv)
    return int(args.func(args))


def test_inferred_contract_describes_the_data(churn_frame) -> None:
    data = infer_contract_dict(churn_frame, dataset="churn", owner="me")
    columns = {c["name"]: c for c in data["columns"]}
    assert columns["customer_id"] == {
        "name": "customer_id",
        "type": "integer",
        "nullable": False,
        "unique": True,
        "range": {"min": 0, "max": 2200},
    }
    assert columns["contract"]["allowed_values"] == ["month-to-month", "one-year", "two-year"]
    assert columns["churned"]["allowed_values"] == [0, 1]
    assert 0 < columns["monthly_charges"]["max_null_share"] <= 0.1
    assert columns["payment_method"]["type"] == "string"
    assert data["table"]["row_count"] == {"min": len(churn_frame) // 2}


def test_inferred_contract_passes_on_its_data_and_fails_on_damage(churn_frame) -> None:
    contract = parse_contract(infer_contract_yaml(churn_frame, dataset="churn"))
    assert validate_frame(churn_frame, contract, data_label="t").summary["success"] is True
    damaged = churn_frame.copy()
    damaged.loc[:3, "tenure_months"] = 10_000.0
    failed = [f["check"] for f in validate_frame(damaged, contract, data_label="t").summary["failed_checks"]]
    assert failed == ["columns.tenure_months.range"]


def test_cli_infer_check_validate(churn_parquet: str, tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    out = tmp_path / "contract.yaml"
    assert _main(["contract", "infer", churn_parquet, "-o", str(out), "--owner", "me@example.com"]) == 0
    assert "dataset: churn" in out.read_text() and "owner: me@example.com" in out.read_text()
    with pytest.raises(ValueError, match="exists; pass --force"):
        _main(["contract", "infer", churn_parquet, "-o", str(out)])
    assert _main(["contract", "check", str(out)]) == 0
    assert "is valid" in capsys.readouterr().out
    assert _main(["contract", "validate", churn_parquet, str(out), "--report", str(tmp_path / "r")]) == 0
    assert json.loads(capsys.readouterr().out)["success"] is True
    assert (tmp_path / "r" / "data_docs.html").exists()
    assert _main(["contract", "infer", str(tmp_path / "missing.csv")]) == 1
    assert "missing.csv" in capsys.readouterr().err


def test_cli_is_registered() -> None:
    from airflow_trainkit.cli import COMMAND_MODULES

    assert "airflow_trainkit.contracts.cli" in COMMAND_MODULES


def test_validate_reports_a_contract_broken_by_a_csv(tmp_path: Path) -> None:
    path = tmp_path / "d.csv"
    path.write_text("a\n1\nx\n")
    contract = parse_contract("dataset: d\ncolumns:\n  - name: a\n    type: integer\n")
    failed = validate(str(path), contract).summary["failed_checks"]
    assert [f["check"] for f in failed] == ["columns.a.type"]
