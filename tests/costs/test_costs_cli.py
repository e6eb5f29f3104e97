from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from airflow_trainkit import cli


def test_costs_compare_prints_the_table(trainkit_home: Path, capsys) -> None:
    assert cli.main(["costs", "compare", "--accelerator", "V100:1", "--hours", "3", "--spot"]) == 0
    out = capsys.readouterr().out
    lines = out.splitlines()
    assert lines[0].split()[:4] == ["backend", "region", "instance", "GPUs"]
    vertex = next(line for line in lines if line.startswith("vertex_ai"))
    # (2 x 0.21849885 + 2.48 x 1.15) x 3 h at on-demand: no Vertex spot price is sourced.
    assert "n1-standard-8 + NVIDIA_TESLA_V100" in vertex and "9.87 USD" in vertex
    assert "CHEAPEST (derived figure)" in vertex  # Azure's spot V100 is cheaper, but retired
    assert "azure_ml: quote only" not in out
    assert "onprem: spec.spot: the onprem backend has no spot capacity" in out
    assert "azure_ml: retired size: azure_ml Standard_NC6s_v3 was retired after 2025-09-30" in out
    assert "sagemaker: spot on sagemaker: it publishes no spot price" in out
    assert "vertex_ai: no spot price" in out
    assert "caveat: the cheapest, vertex_ai, rests on a derived figure" in out
    assert "cheapest: vertex_ai n1-standard-8 in us-central1: 9.87 USD (derived figure, see caveat)" in out
    assert "catalog: package:airflow_trainkit.costs/price_catalog.csv" in out


def test_costs_compare_a_cpu_job_in_a_region(trainkit_home: Path, capsys) -> None:
    argv = ["costs", "compare", "--accelerator", "cpu", "--vcpus", "8", "--hours", "1", "--region", "asia"]
    assert cli.main(argv) == 0
    lines = capsys.readouterr().out.splitlines()
    sagemaker = next(line for line in lines if line.startswith("sagemaker"))
    assert "ap-south-1" in sagemaker and "ml.r7i.2xlarge" in sagemaker and "0.66 USD" in sagemaker
    assert (
        "  - vertex_ai: no price for vertex_ai in asia-southeast1 (geography 'asia'): the catalog"
        in "\n".join(lines)
    )


def test_costs_compare_an_instance_type_per_backend(trainkit_home: Path, capsys) -> None:
    argv = [
        "costs",
        "compare",
        "--instance-type",
        "sagemaker=ml.m5.xlarge",
        "vertex_ai=n1-standard-4",
        "--hours",
        "2",
    ]
    assert cli.main(argv) == 0
    out = capsys.readouterr().out
    assert "ml.m5.xlarge" in out and "0.46 USD" in out
    assert "n1-standard-4" in out and "0.44 USD" in out
    assert cli.main(["costs", "compare", "--instance-type", "n1-standard-8", "--hours", "1"]) == 0
    vertex = next(line for line in capsys.readouterr().out.splitlines() if line.startswith("vertex_ai"))
    assert "n1-standard-8" in vertex and "0.44 USD" in vertex
    assert cli.main(["costs", "compare", "--instance-type", "aws=ml.m5.xlarge", "--hours", "1"]) == 2
    assert "--instance-type: unknown backend 'aws'" in capsys.readouterr().err


@pytest.mark.integration  # starts a process
def test_costs_compare_into_a_closed_pipe_ends_quietly(trainkit_home: Path) -> None:
    # `trainkit costs compare ... | head -1`: the reader goes away before the table is written.
    trainkit = Path(sys.executable).parent / "trainkit"
    process = subprocess.Popen(
        [str(trainkit), "costs", "compare", "--accelerator", "T4:1", "--hours", "1"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        env={**os.environ, "TRAINKIT_HOME": str(trainkit_home)},
    )
    assert process.stdout is not None and process.stderr is not None
    process.stdout.close()  # nobody reads: the first write meets a closed pipe
    err = process.stderr.read().decode()
    assert process.wait() == 141
    assert err == ""


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
    assert (report / "cost_per_backend.png").exists() and (report / "_SUCCESS").exists()


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["--accelerator", "X9:1", "--hours", "1"], "unknown accelerator 'X9:1'"),
        (["--accelerator", "T4:1", "--hours", "0"], "hours must be a positive number, got '0'"),
        (["--accelerator", "T4:1"], "a quote needs the expected hours"),
        (["--accelerator", "cpu", "--hours", "1"], "vcpus: a CPU-only quote (no spec.accelerator) needs"),
        (
            ["--accelerator", "T4:1", "--hours", "1", "--region", "us-east-1"],
            "--region: 'us-east-1' is neither",
        ),
    ],
)
def test_costs_compare_bad_input(trainkit_home: Path, capsys, argv, message) -> None:
    assert cli.main(["costs", "compare", *argv]) == 2
    assert message in capsys.readouterr().err


def test_costs_catalog_and_refresh_commands(trainkit_home: Path, capsys, monkeypatch, price_server) -> None:
    assert cli.main(["costs", "catalog", "--backend", "azure_ml"]) == 0
    out = capsys.readouterr().out
    assert "Standard_NC4as_T4_v3" in out and "ml.g4dn" not in out
    assert "observed   undated" in out
    assert cli.main(["costs", "catalog", "--backend", "vertex_ai", "--region", "us-central1", "--notes"]) == 0
    out = capsys.readouterr().out
    assert "n1-standard-4" in out and "observed   as of 2026-09-06" in out
    assert "    note: 2 x n1-standard-4 (0.21849885)" in out
    import airflow_trainkit.costs.refresh as refresh_module

    monkeypatch.setattr(refresh_module, "http_get_json", price_server.fetch())
    assert cli.main(["costs", "refresh", "--backends", "azure_ml"]) == 0
    out = capsys.readouterr().out
    assert (
        "azure_ml: 11 rows updated" in out and "kept old price for Standard_NC6s_v3, Standard_NC24s_v3" in out
    )
    assert f"catalog written: {trainkit_home / 'costs' / 'price_catalog.csv'}" in out
