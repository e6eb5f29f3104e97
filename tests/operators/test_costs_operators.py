from __future__ import annotations

import csv
import json
from functools import partial
from pathlib import Path
from typing import Any

import pytest
from trainkit_testing import make_context

ONPREM = [
    {
        "name": "workstation-t4",
        "gpu_model": "T4",
        "gpu_count": 1,
        "purchase_price": 4000,
        "amortization_years": 4,
        "power_watts": 300,
        "electricity_per_kwh": 0.15,
        "utilization": 0.4,
    }
]


_context = partial(
    make_context, dag_id="costs dag", run_id="manual__2026-11-25T00:00:00+00:00", task_id="quote"
)


@pytest.fixture
def home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("TRAINKIT_HOME", str(tmp_path / "trainkit"))
    for name in (
        "TRAINKIT_PRICE_CATALOG",
        "TRAINKIT_ONPREM_COSTS",
        "TRAINKIT_PRICE_MAX_AGE",
        "TRAINKIT_PRICE_MAX_AGE_DAYS",
    ):
        monkeypatch.delenv(name, raising=False)
    return tmp_path / "trainkit"


def test_compare_operator_picks_cheapest_and_writes_report(home: Path) -> None:
    from airflow_trainkit.operators.costs import CompareTrainingCostsOperator

    op = CompareTrainingCostsOperator(
        task_id="quote",
        spec={"command": ["python", "train.py"], "accelerator": "T4:1"},
        hours="2",
        pick="cheapest",
        onprem=ONPREM,
    )
    context = _context()
    result = op.execute(context)
    json.dumps(result)  # XCom-safe
    hourly = 1000 / (8760 * 0.4) + 0.3 * 0.15
    assert result["cheapest"]["backend"] == "onprem"
    assert result["cheapest"]["total"] == pytest.approx(2 * hourly, abs=1e-3)
    assert context["ti"].xcoms == {"backend": "onprem"}
    report = Path(result["report_uri"])
    assert report == home / "reports" / "costs" / "costs_dag" / "manual__2026-11-25T00_00_00_00_00" / "quote"
    assert {p.name for p in report.iterdir()} == {
        "_SUCCESS",
        "quotes.csv",
        "report.md",
        "quotes.txt",
        "quotes.json",
        "cost_per_backend.png",
        "cost_per_provider.png",  # the same chart under its deprecated name, for one release
    }
    assert (report / "cost_per_backend.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert (report / "cost_per_provider.png").read_bytes() == (report / "cost_per_backend.png").read_bytes()
    with (report / "quotes.csv").open() as handle:
        rows = {row["backend"]: row for row in csv.DictReader(handle)}
    assert set(rows) == {"sagemaker", "vertex_ai", "azure_ml", "onprem", "ray"}
    assert rows["sagemaker"]["provider"] == "sagemaker"  # the deprecated repeat, for one release
    assert rows["sagemaker"]["instance_type"] == "ml.g4dn.xlarge"
    assert rows["azure_ml"]["left_out"] == "" and rows["azure_ml"]["backend"] == "azure_ml"
    assert result["left_out"] == {}
    assert float(rows["sagemaker"]["total"]) == pytest.approx(0.736 * 2)
    assert rows["sagemaker"]["price_source"].startswith(
        "AWS bulk price file AmazonSageMaker published 2026-09-24"
    )
    assert (rows["sagemaker"]["price_provenance"], rows["sagemaker"]["region"]) == ("observed", "us-east-1")
    assert (
        rows["sagemaker"]["region_from"] == "the backend's default region"
    )  # no aws_default connection here
    markdown = (report / "report.md").read_text()
    assert "Cheapest: **onprem** (workstation-t4)" in markdown
    assert "undated price" in markdown and "no taxes" in markdown
    assert (
        "- sagemaker ml.g4dn.xlarge (us-east-1): observed, as of 2026-09-24, AWS bulk price file" in markdown
    )


def test_compare_operator_bad_input(home: Path) -> None:
    from airflow_trainkit.operators.costs import CompareTrainingCostsOperator

    spec = {"command": ["x"], "accelerator": "T4:1"}
    with pytest.raises(ValueError, match="pick must be None or 'cheapest', got 'fastest'"):
        CompareTrainingCostsOperator(task_id="q", spec=spec, hours=1, pick="fastest").execute(_context())
    with pytest.raises(ValueError, match="hours must be a positive number, got '0'"):
        CompareTrainingCostsOperator(task_id="q", spec=spec, hours="0").execute(_context())
    op = CompareTrainingCostsOperator(
        task_id="q",
        spec={"command": ["x"], "accelerator": "V100:1"},
        hours=1,
        pick="cheapest",
        backends=["azure_ml"],
        max_price_age="100000d",
    )
    with pytest.raises(
        ValueError,
        match="no backend can train this job here with a current size; left out: azure_ml: retired size: "
        "Standard_NC6s_v3",
    ):
        op.execute(_context(task_id="q"))
    # The report is stored before the task fails, so the user can see why.
    assert (home / "reports" / "costs" / "costs_dag").exists()


def test_refresh_operator_writes_catalog(home: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import airflow_trainkit.costs.refresh as refresh_module
    from airflow_trainkit.operators.costs import RefreshPriceCatalogOperator

    recorded = Path(__file__).parents[1] / "costs" / "recorded"

    def fetch(url: str) -> Any:
        page = 2 if "$skip" in url else 1
        return json.loads((recorded / f"azure_retail_prices_page{page}.json").read_text())

    monkeypatch.setattr(refresh_module, "http_get_json", fetch)
    summary = RefreshPriceCatalogOperator(task_id="refresh", backends=["azure_ml"]).execute(
        _context(task_id="refresh")
    )
    assert summary["path"] == str(home / "costs" / "price_catalog.csv")
    assert len(summary["backends"][0]["updated"]) == 11


@pytest.mark.integration
def test_operators_import_nothing_heavy() -> None:
    import subprocess
    import sys

    code = (
        "import sys; import airflow_trainkit.operators.costs, airflow_trainkit.costs;"
        "heavy = [m for m in ('boto3', 'matplotlib', 'pandas', 'numpy') if m in sys.modules];"
        "print(','.join(heavy))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == ""


def test_compare_operator_prices_a_cpu_job_in_the_region_of_the_connection(
    home: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from airflow_trainkit.operators.costs import CompareTrainingCostsOperator

    monkeypatch.setenv(
        "AIRFLOW_CONN_AWS_DEFAULT", json.dumps({"conn_type": "aws", "extra": {"region_name": "ap-south-1"}})
    )
    result = CompareTrainingCostsOperator(
        task_id="quote",
        spec={"command": ["python", "train.py"]},
        hours=1,
        vcpus="8",
        regions={"vertex_ai": "us"},
    ).execute(_context())
    by = {q["backend"]: q for q in result["quotes"]}
    assert (by["sagemaker"]["region"], by["sagemaker"]["region_from"]) == (
        "ap-south-1",
        "connection aws_default",
    )
    assert by["sagemaker"]["instance_type"] == "ml.r7i.2xlarge" and by["sagemaker"]["total"] == 0.6552
    assert (by["vertex_ai"]["region"], by["vertex_ai"]["instance_type"]) == ("us-central1", "n1-standard-8")
    assert result["request"]["vcpus"] == 8


def test_compare_operator_renders_templates_before_it_validates(home: Path) -> None:
    from airflow_trainkit.operators.costs import CompareTrainingCostsOperator

    op = CompareTrainingCostsOperator(
        task_id="quote",
        spec={"command": ["x"], "accelerator": "T4:1"},
        hours="1",
        pick="{{ params.pick }}",
        pick_from_backends="{{ params.backend }}",
        max_price_age="{{ params.age }}",
        region_conn_ids="False",
        onprem=ONPREM,
    )
    # What Airflow does between parse and execute: render every template field.
    op.pick, op.pick_from_backends, op.max_price_age = "cheapest", "sagemaker", "12w"
    context = _context()
    result = op.execute(context)
    assert context["ti"].xcoms == {"backend": "sagemaker"}
    assert result["request"]["max_price_age_seconds"] == 12 * 7 * 86400
    assert result["request"]["regions"]["sagemaker"] == "us-east-1"
    op.region_conn_ids = "sometimes"
    with pytest.raises(ValueError, match="region_conn_ids must be true, false or a mapping.*got 'sometimes'"):
        op.execute(_context())
    op.region_conn_ids, op.max_price_age = False, "soon"
    with pytest.raises(ValueError, match="max_price_age must be seconds or a duration.*got 'soon'"):
        op.execute(_context())
