"""Each rule of the refresh parsers, on real-shaped price-list rows that a real answer can hold.

The rows are the recorded answers' (tests/costs/recorded, real in shape and numbers) with one thing
changed to what real price lists also carry: a managed-spot training row, a training-plan fee, a
Windows "Win" product, a zero price, a low-priority meter, an unrelated SKU, a Compute-Engine-style
resource group, the A3 Mega's H100. Where a real row's price was never captured the number is
illustrative and says so; the rule under test is about which row is taken, not about that number.
"""

from __future__ import annotations

import copy
import json
from datetime import date
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest

from airflow_trainkit.costs import refresh
from airflow_trainkit.costs.catalog import load_catalog

RECORDED = Path(__file__).parent / "recorded"
TODAY = date(2026, 11, 25)


def recorded(name: str) -> Any:
    return json.loads((RECORDED / name).read_text())


def catalog_rows(backend: str, *instance_types: str, region: str | None = None) -> list[Any]:
    rows = [
        r
        for r in load_catalog(onprem=[]).rows
        if r.backend == backend and r.instance_type in instance_types and region in (None, r.region)
    ]
    assert {r.instance_type for r in rows} == set(instance_types)
    return rows


# --- AWS Price List --------------------------------------------------------------------------------


def aws_item(instance: str, component: str = "Training", region: str = "us-east-1") -> dict[str, Any]:
    """A recorded product document of ``instance`` and ``component``, decoded."""
    for page in sorted(RECORDED.glob(f"aws_pricing_get_products_{region}_page*.json")):
        for item in json.loads(page.read_text())["PriceList"]:
            doc = json.loads(item)
            attributes = doc["product"]["attributes"]
            if attributes.get("instanceName") == instance and attributes.get("component") == component:
                return doc
    raise LookupError(f"no recorded {component} row of {instance}")


def aws_price(doc: dict[str, Any], usd: str) -> dict[str, Any]:
    doc = copy.deepcopy(doc)
    for term in doc["terms"]["OnDemand"].values():
        for dimension in term["priceDimensions"].values():
            dimension["pricePerUnit"]["USD"] = usd
    return doc


class _Pages:
    def __init__(self, pages: list[list[dict[str, Any]]]) -> None:
        self.pages = pages

    def paginate(self, **_: Any) -> list[dict[str, Any]]:
        return [
            {"FormatVersion": "aws_v1", "PriceList": [json.dumps(i) for i in page]} for page in self.pages
        ]


class _PricingClient:
    """The pricing client's paginator over the given pages (the real client is driven in test_costs_refresh)."""

    def __init__(self, *pages: list[dict[str, Any]]) -> None:
        self.pages = list(pages)

    def get_paginator(self, name: str) -> _Pages:
        assert name == "get_products"
        return _Pages(self.pages)


def spot_training_row() -> dict[str, Any]:
    """A managed spot training row: usage type TrSpt (named in a parse of AWS's bulk file), platoinstancetype
    SpotTraining (seen by vantage-sh in the real offer file). Whether it carries component Training was
    not seen; it is the case that matters. The price is illustrative: no capture of this row exists."""
    doc = aws_price(aws_item("ml.p4d.24xlarge"), "7.5753000000")
    attributes = doc["product"]["attributes"]
    attributes.update(usagetype="USE1-TrSpt:ml.p4d.24xlarge", platoinstancetype="SpotTraining")
    return doc


def test_aws_a_spot_training_row_never_overwrites_the_on_demand_price() -> None:
    on_demand = aws_item("ml.p4d.24xlarge")  # 25.251, measured live 2026-07-27
    targets = catalog_rows("sagemaker", "ml.p4d.24xlarge", region="us-east-1")
    rows, summary = refresh.refresh_sagemaker(
        targets, client=_PricingClient([on_demand, spot_training_row()]), today=TODAY
    )
    assert summary.updated == ["ml.p4d.24xlarge"]
    assert rows[0].on_demand_per_hour == 25.251


def test_aws_takes_component_training_and_a_train_usage_type_both() -> None:
    spot = spot_training_row()
    assert refresh.parse_aws_price_item(spot, where="spot") is None  # component Training, usage TrSpt
    serverless = aws_price(aws_item("ml.g5.xlarge"), "1.5000000000")  # illustrative price
    serverless["product"]["attributes"]["component"] = "ServerlessTraining:FineTuning"  # a vantage-sh value
    assert (
        refresh.parse_aws_price_item(serverless, where="serverless") is None
    )  # usage Train, other component
    cluster = aws_item("ml.p4d.24xlarge", "Cluster")  # HyperPod, 25.910 measured live
    assert refresh.parse_aws_price_item(cluster, where="cluster") is None
    assert refresh.parse_aws_price_item(aws_item("ml.g5.xlarge"), where="training") == (
        "ml.g5.xlarge",
        "us-east-1",
        1.408,
    )


def test_aws_a_training_row_without_an_hourly_price_is_skipped_not_fatal() -> None:
    # The training-plan upfront fee as truffle quotes it from AWS (unit Quantity, 13.57), had it the
    # component Training; and a Training row with no OnDemand terms.
    fee = json.loads(recorded("aws_pricing_get_products_us-east-1_page2.json")["PriceList"][-1])
    assert fee["product"]["attributes"]["usagetype"] == "USE1-TrainingPlanUpfrontFee:ml.p4d.24xlarge"
    fee["product"]["attributes"]["component"] = "Training"
    quantity_only = aws_item("ml.g4dn.xlarge")
    for term in quantity_only["terms"]["OnDemand"].values():
        for dimension in term["priceDimensions"].values():
            dimension["unit"] = "Quantity"
    no_terms = copy.deepcopy(aws_item("ml.g6.xlarge"))
    no_terms["terms"] = {}
    for doc in (fee, quantity_only, no_terms):
        assert refresh.parse_aws_price_item(doc, where="row") is None
    targets = catalog_rows("sagemaker", "ml.g5.xlarge", "ml.g4dn.xlarge", region="us-east-1")
    rows, summary = refresh.refresh_sagemaker(
        targets,
        client=_PricingClient([fee, quantity_only, no_terms, aws_item("ml.g5.xlarge")]),
        today=TODAY,
    )
    assert summary.updated == ["ml.g5.xlarge"] and summary.kept == ["ml.g4dn.xlarge"]


# --- Azure Retail Prices ---------------------------------------------------------------------------


def azure_item(arm_sku: str, *, spot: bool = False) -> dict[str, Any]:
    for page in ("azure_retail_prices_page1.json", "azure_retail_prices_page2.json"):
        for item in recorded(page)["Items"]:
            if item["armSkuName"] == arm_sku and item["skuName"].endswith(" Spot") == spot:
                return copy.deepcopy(item)
    raise LookupError(arm_sku)


def azure_fetch(*items: dict[str, Any]) -> Any:
    seen: list[str] = []

    def fetch(url: str) -> Any:
        seen.append(url)
        return {"BillingCurrency": "USD", "Items": list(items), "NextPageLink": None, "Count": len(items)}

    fetch.seen = seen  # type: ignore[attr-defined]
    return fetch


@pytest.mark.parametrize(
    "product",
    [
        "Virtual Machines NCadsH100v5 Series Win",  # the " Win" SkyPilot saw ("Virtual Machines NCCadsv5 Srs Win")
        "Virtual Machines NCCadsv5 Srs Win",
        "Virtual Machines NCadsH100v5 Series Windows",
        "Virtual Machines NCadsH100v5 Series Cloud Services",
        "Virtual Machines NCadsH100v5 Series CloudServices",
    ],
)
def test_azure_windows_win_and_cloud_services_products_are_not_linux_prices(product: str) -> None:
    linux = azure_item("Standard_NC40ads_H100_v5")  # 6.98 in the SkyPilot snapshot
    other = {**linux, "productName": product, "retailPrice": 8.2364, "unitPrice": 8.2364}  # illustrative
    assert refresh.parse_azure_item(other, where="item") is None
    targets = catalog_rows("azure_ml", "Standard_NC40ads_H100_v5")
    rows, _ = refresh.refresh_azure(targets, fetch=azure_fetch(linux, other), today=TODAY)
    assert rows[0].on_demand_per_hour == 6.98


def test_azure_zero_prices_are_skipped() -> None:
    # SkyPilot saw sizes the API lists with no price (Dec 2023, several H100 sizes).
    real = azure_item("Standard_ND96isr_H100_v5")
    zero = {**real, "retailPrice": 0.0, "unitPrice": 0.0}
    assert refresh.parse_azure_item(zero, where="item") is None
    targets = catalog_rows("azure_ml", "Standard_ND96isr_H100_v5")
    rows, _ = refresh.refresh_azure(targets, fetch=azure_fetch(real, zero), today=TODAY)
    assert rows[0].on_demand_per_hour == 98.32


def test_azure_asks_for_primary_meters_only() -> None:
    url = refresh.azure_prices_url("eastus", ["Standard_NC4as_T4_v3"])
    assert parse_qs(urlsplit(url).query)["meterRegion"] == ["'primary'"]
    non_primary = {**azure_item("Standard_NC4as_T4_v3"), "isPrimaryMeterRegion": False}
    assert refresh.parse_azure_item(non_primary, where="item") is None


def test_azure_spot_and_low_priority_meters_are_never_swapped() -> None:
    # A size with a Low Priority meter and no Spot meter. The low-priority number is illustrative:
    # no real low-priority price was captured.
    on_demand = azure_item("Standard_NC24ads_A100_v4")
    low = {
        **on_demand,
        "skuName": "NC24ads A100 v4 Low Priority",
        "meterName": "NC24ads A100 v4 Low Priority",
        "retailPrice": 0.7346,
        "unitPrice": 0.7346,
    }
    assert refresh.parse_azure_item(low, where="item")[2] == "low_priority"  # type: ignore[index]
    targets = catalog_rows("azure_ml", "Standard_NC24ads_A100_v4")
    rows, _ = refresh.refresh_azure(targets, fetch=azure_fetch(on_demand, low), today=TODAY)
    assert (rows[0].on_demand_per_hour, rows[0].spot_per_hour) == (
        3.673,
        None,
    )  # no Spot meter: no spot price
    spot = azure_item("Standard_NC24ads_A100_v4", spot=True)
    rows, _ = refresh.refresh_azure(targets, fetch=azure_fetch(on_demand, low, spot), today=TODAY)
    assert rows[0].spot_per_hour == 0.444433
    rows, _ = refresh.refresh_azure(
        targets, fetch=azure_fetch(on_demand, low, spot), today=TODAY, spot_meter="low_priority"
    )
    assert rows[0].spot_per_hour == 0.7346 and "Low Priority meter" in rows[0].note


# --- Google Cloud Billing Catalog ------------------------------------------------------------------


def google_skus() -> list[dict[str, Any]]:
    return recorded("gcp_billing_skus_page1.json")["skus"] + recorded("gcp_billing_skus_page2.json")["skus"]


def google_fetch(skus: list[dict[str, Any]]) -> Any:
    return lambda url: {"skus": skus, "nextPageToken": ""}


def sku(description_part: str) -> dict[str, Any]:
    return copy.deepcopy(next(s for s in google_skus() if description_part in s["description"]))


def refresh_vertex(skus: list[dict[str, Any]], *instance_types: str) -> dict[str, Any]:
    targets = catalog_rows("vertex_ai", *instance_types)
    rows, _ = refresh.refresh_vertex(targets, fetch=google_fetch(skus), api_key="k", today=TODAY)
    return {r.instance_type: r for r in rows}


def test_vertex_parses_only_the_skus_whose_description_passes_the_filter() -> None:
    # The Vertex AI service holds thousands of unrelated SKUs (Gemini tokens and the like); one in an
    # unexpected shape, here with no pricingInfo, must not stop the refresh.
    gemini = google_skus()[0]
    assert gemini["skuId"] == "EAC4-305F-1249" and gemini["pricingInfo"] == []
    rows = refresh_vertex([gemini, *google_skus()[1:]], "n1-standard-4", "NVIDIA_TESLA_T4")
    assert rows["n1-standard-4"].on_demand_per_hour == pytest.approx(0.21849885, abs=1e-6)
    assert not refresh.is_vertex_training_sku(gemini)


def test_vertex_finds_n1_cores_filed_under_resource_group_n1standard() -> None:
    core = sku("N1 Predefined Instance Core")
    assert core["category"]["resourceGroup"] == "N1Standard"  # as Compute Engine files N1 cores
    rows = refresh_vertex([core, sku("N1 Predefined Instance Ram")], "n1-standard-4")
    assert rows["n1-standard-4"].on_demand_per_hour == pytest.approx(0.21849885, abs=1e-6)


def test_vertex_tells_h100_from_h100_mega() -> None:
    # Compute Engine words the A3 Mega's GPU "Nvidia H100 80GB Mega GPU running in Americas"; the
    # prices here are illustrative (no Vertex H100 SKU was captured).
    t4 = sku("Nvidia Tesla T4 GPU")

    def gpu(words: str, units: str, nanos: int) -> dict[str, Any]:
        item = copy.deepcopy(t4)
        item["description"] = item["description"].replace("Nvidia Tesla T4 GPU", words)
        item["pricingInfo"][0]["pricingExpression"]["tieredRates"][0]["unitPrice"].update(
            units=units, nanos=nanos
        )
        return item

    mega = gpu("Nvidia H100 80GB Mega GPU", "12", 0)
    h100 = gpu("Nvidia H100 80GB GPU", "11", 300500000)
    rows = refresh_vertex([mega, h100], "NVIDIA_H100_80GB")
    assert rows["NVIDIA_H100_80GB"].on_demand_per_hour == pytest.approx(11.3005)


def test_vertex_core_ram_and_gpu_are_told_apart_by_description_words() -> None:
    # Resource groups are not to be relied on (real Compute Engine SKUs are mis-filed now and then):
    # an A2 core SKU filed under RAM is still a core, and a RAM SKU filed under CPU still RAM.
    core = sku("A2 Instance Core")
    core["category"]["resourceGroup"] = "RAM"
    ram = sku("A2 Instance Ram")
    ram["category"]["resourceGroup"] = "CPU"
    rows = refresh_vertex([ram, core], "a2-highgpu-1g")
    assert rows["a2-highgpu-1g"].on_demand_per_hour == pytest.approx(
        12 * 0.03635265 + 85 * 0.00487255, abs=1e-6
    )
