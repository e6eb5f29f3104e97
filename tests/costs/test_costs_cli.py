from __future__ import annotations

import json
from typing import TYPE_CHECKING

import pytest

from airflow_trainkit import cli

if TYPE_CHECKING:
    from pathlib import Path


def test_costs_compare_prints_the_table(trainkit_home: Path, capsys) -> None:
    assert cli.main(["costs", "compare", "--accelerator", "V100:1", "--hours", "3", "--spot"]) == 0
    out = capsys.readouterr().out
    lines = out.splitlines()
    assert lines[0].split()[:3] == ["backend", "instance", "GPUs"]
    vertex = next(line for line in lines if line.startswith("vertex_ai"))
    assert "n1-standard-8 + NVIDIA_TESLA_V100" in vertex and "3.23 USD" in vertex  # (0.088 + 0.989) x 3
    assert "CHEAPEST" in vertex  # Azure's spot V100 is cheaper, but quote only (and NC6s_v3 is retired)
    assert "azure_ml: quote only: no azure_ml training backend is installed" in out
    assert "onprem: spec.spot: the onprem backend has no spot capacity" in out
    assert "azure_ml: retired size: azure_ml Standard_NC6s_v3 was retired after 2025-09-30" in out
    assert "sagemaker: no spot price" in out
    assert "cheapest: vertex_ai n1-standard-8: 3.23 USD" in out
    assert "catalog: package:airflow_trainkit.costs/price_catalog.csv" in out


def test_costs_compare_json_report_and_onprem(trainkit_home: Path, tmp_path: Path, capsys) -> None:
    onprem = tmp_path / "onprem.csv"
    onprem.write_text(
        "name,gpu_model,gpu_count,purchase_price,amortization_years,power_watts,electricity_per_kwh,utilization\n"
        "box,A100,8,200000,4,6500,0.12,0.7\n"
    )
    report = tmp_path / "report"
    code = cli.main(
        [
            "costs",
            "compare",
            "--accelerator",
            "A100:8",
            "--epochs",
            "20",
            "--seconds-per-epoch",
            "900",
            "--onprem",
            str(onprem),
            "--json",
            "--report",
            str(report),
        ]
    )
    assert code == 0
    out = capsys.readouterr().out
    data = json.loads(out[: out.rindex("}") + 1])
    assert data["request"]["hours"] == 5
    assert data["cheapest"]["backend"] == "onprem"
    assert (report / "cost_per_provider.png").exists() and (report / "_SUCCESS").exists()


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["--accelerator", "X9:1", "--hours", "1"], "unknown accelerator 'X9:1'"),
        (["--accelerator", "T4:1", "--hours", "0"], "hours must be a positive number, got '0'"),
        (["--accelerator", "T4:1"], "a quote needs the expected hours"),
    ],
)
def test_costs_compare_bad_input(trainkit_home: Path, capsys, argv, message) -> None:
    assert cli.main(["costs", "compare", *argv]) == 2
    assert message in capsys.readouterr().err


def test_costs_catalog_and_refresh_commands(trainkit_home: Path, capsys, monkeypatch, price_server) -> None:
    assert cli.main(["costs", "catalog", "--provider", "azure_ml"]) == 0
    out = capsys.readouterr().out
    assert "Standard_NC4as_T4_v3" in out and "ml.g4dn" not in out
    import airflow_trainkit.costs.refresh as refresh_module

    monkeypatch.setattr(refresh_module, "http_get_json", price_server.fetch())
    assert cli.main(["costs", "refresh", "--providers", "azure_ml"]) == 0
    out = capsys.readouterr().out
    assert (
        "azure_ml: 10 rows updated" in out and "kept old price for Standard_NC6s_v3, Standard_NC24s_v3" in out
    )
    assert f"catalog written: {trainkit_home / 'costs' / 'price_catalog.csv'}" in out
