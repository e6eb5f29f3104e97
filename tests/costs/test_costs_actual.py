from __future__ import annotations

from datetime import date

import pytest
from costs_testing import RACK_T4

from airflow_trainkit.costs import actual_cost

FRESH = date(2026, 10, 1)
ONPREM = [
    {**RACK_T4, "yearly_other_costs": 1000},
    {
        "name": "worker",
        "purchase_price": 3000,
        "amortization_years": 3,
        "power_watts": 150,
        "electricity_per_kwh": 0.2,
        "utilization": 0.5,
    },
]


def result(**values):
    base = {
        "backend": "sagemaker",
        "job_id": "trainkit-abc",
        "attempt": 1,
        "state": "Completed",
        "phase": "succeeded",
        "started_at": "2026-11-25T01:00:00+00:00",
        "ended_at": "2026-11-25T03:00:00+00:00",
        "billable_seconds": None,
        "instance_type": "ml.g4dn.xlarge",
        "instance_count": 1,
        "spot": False,
        "accelerator": "T4:1",
        "output_uri": None,
        "metrics": None,
        "console_url": None,
        "details": {},
        "region": "us-east-1",
    }
    base.update(values)
    return base


def test_spot_sagemaker_uses_billable_seconds_at_on_demand_rate(trainkit_home) -> None:
    # 2 h of wall time, 3,600 s training, 1,080 s billable after a 70 % managed-spot saving, 2 instances.
    cost = actual_cost(
        result(spot=True, billable_seconds=1080, instance_count=2, details={"training_seconds": 3600}),
        onprem=[],
        today=FRESH,
    )
    assert cost is not None
    assert cost["amount"] == pytest.approx(1080 / 3600 * 2 * 0.736)
    assert cost["pricing"] == "spot" and cost["hourly_price"] == pytest.approx(0.736)
    assert cost["billable_hours"] == pytest.approx(0.3)
    assert cost["price_row"] == {
        "backend": "sagemaker",
        "service": "sagemaker_training",
        "region": "us-east-1",
        "instance_type": "ml.g4dn.xlarge",
        "as_of": "2026-09-24",
        "source": "AWS bulk price file AmazonSageMaker published 2026-09-24T23:59Z, Train column, as parsed "
        "in public notes (search-index file 71562949756)",
        "provenance": "observed",
        "note": "",
        "provider": "sagemaker",  # the deprecated repeat of "backend", for one release
    }
    assert cost["region"] == "us-east-1"
    assert "BillableTimeInSeconds" in cost["basis"]
    assert cost["warnings"] == [] and cost["currency"] == "USD"


def test_wall_time_when_no_billable_seconds(trainkit_home) -> None:
    cost = actual_cost(
        result(backend="azure_ml", instance_type="Standard_NC4as_T4_v3", spot=True, region="eastus"),
        onprem=[],
        today=FRESH,
    )
    assert cost is not None
    assert cost["amount"] == pytest.approx(2 * 0.062699)  # 2 h wall time at the spot price
    assert cost["pricing"] == "spot"


def test_vertex_machine_plus_accelerators(trainkit_home) -> None:
    cost = actual_cost(
        result(
            backend="vertex_ai",
            instance_type="a2-highgpu-8g",
            accelerator="A100:8",
            billable_seconds=5400,
            region="us-central1",
        ),
        onprem=[],
        today=FRESH,
    )
    assert cost is not None
    assert cost["amount"] == pytest.approx(1.5 * (6.803193 + 8 * 3.373985), abs=1e-3)
    assert [r["instance_type"] for r in cost["price_rows"]] == ["a2-highgpu-8g", "NVIDIA_TESLA_A100"]


def test_onprem_share_of_gpus_used(trainkit_home) -> None:
    run = result(
        backend="onprem",
        instance_type="onprem",
        accelerator="T4:1",
        billable_seconds=7200,
        details={"gpus": ["0", "1"], "host": "box"},
    )
    cost = actual_cost(run, onprem=ONPREM, today=FRESH)
    assert cost is not None
    hourly = (4000 + 1000) / (8760 * 0.5) + 0.4 * 0.2
    assert cost["amount"] == pytest.approx(2 * hourly * 2 / 4, abs=1e-4)  # 2 of 4 GPUs for 2 h
    assert cost["price_row"]["instance_type"] == "rack-t4"
    cpu = actual_cost({**run, "accelerator": None, "details": {"gpus": []}}, onprem=ONPREM, today=FRESH)
    assert cpu is not None and cpu["price_row"]["instance_type"] == "worker"
    assert cpu["amount"] == pytest.approx(2 * (1000 / 4380 + 0.15 * 0.2), abs=1e-4)


def test_no_price_returns_none(trainkit_home) -> None:
    assert actual_cost(result(instance_type="ml.unknown"), onprem=[]) is None
    assert actual_cost(result(backend="onprem", instance_type="onprem"), onprem=[]) is None
    assert actual_cost(result(backend="custom", instance_type="x"), onprem=[]) is None
    assert actual_cost(result(started_at=None), onprem=[]) is None


def test_stale_price_flagged_in_actual_cost(trainkit_home) -> None:
    cost = actual_cost(result(billable_seconds=60), onprem=[], today=date(2027, 3, 1))
    assert cost is not None and cost["warnings"][0].startswith("stale price: sagemaker ml.g4dn.xlarge")


@pytest.mark.parametrize(
    ("values", "message"),
    [
        ({"backend": None}, r"result\.backend must be a backend name, got None"),
        ({"instance_count": 0}, r"result\.instance_count must be a whole number of at least 1, got 0"),
        ({"billable_seconds": -5}, r"result\.billable_seconds must be a number of at least 0, got -5"),
        ({"started_at": "yesterday"}, r"result\.started_at must be an ISO date-time, got 'yesterday'"),
        ({"ended_at": "2026-11-24T00:00:00+00:00"}, r"result\.ended_at .* is before result\.started_at"),
    ],
)
def test_bad_result(trainkit_home, values, message) -> None:
    with pytest.raises(ValueError, match=message):
        actual_cost(result(**values), onprem=[])
    with pytest.raises(ValueError, match="result must be a training result dict"):
        actual_cost(["not", "a", "dict"], onprem=[])  # type: ignore[arg-type]


def test_the_region_the_job_ran_in_is_priced(trainkit_home) -> None:
    mumbai = actual_cost(result(region="ap-south-1", billable_seconds=3600), onprem=[], today=FRESH)
    assert mumbai is not None
    assert (mumbai["amount"], mumbai["region"]) == (pytest.approx(0.811), "ap-south-1")
    assert mumbai["price_row"]["region"] == "ap-south-1" and mumbai["warnings"] == []


def test_a_region_without_a_price_gives_no_cost_and_says_so(trainkit_home, caplog) -> None:
    run = result(
        backend="vertex_ai",
        instance_type="n1-standard-8",
        accelerator="T4:1",
        region="europe-west4",
        billable_seconds=3600,
    )
    assert actual_cost(run, onprem=[], today=FRESH) is None
    assert "no price for vertex_ai n1-standard-8 in europe-west4" in caplog.text


def test_a_result_without_a_region_is_priced_in_the_default_region_with_a_warning(trainkit_home) -> None:
    old = {
        k: v for k, v in result(billable_seconds=3600).items() if k != "region"
    }  # an earlier release's result
    cost = actual_cost(old, onprem=[], today=FRESH)
    assert cost is not None and cost["region"] == "us-east-1"
    assert cost["warnings"] == [
        "the result names no region: priced in us-east-1, the sagemaker backend's default region"
    ]
    with pytest.raises(ValueError, match=r"result\.region must be a region name, got 3"):
        actual_cost(result(region=3), onprem=[])
