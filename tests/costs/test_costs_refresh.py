from __future__ import annotations

import json
import logging
from datetime import date
from pathlib import Path

import pytest

from airflow_trainkit.costs.catalog import load_catalog, refreshed_catalog_path
from airflow_trainkit.costs.quotes import quote_job
from airflow_trainkit.costs.refresh import redact_url, refresh_catalog

TODAY = date(2026, 11, 25)
KEY = "AIzaFAKE-billing-key-123"


def _refresh(server, **kwargs):
    kwargs.setdefault("fetch", server.fetch())
    kwargs.setdefault("pricing_client", server.pricing_client())
    kwargs.setdefault("google_api_key", KEY)
    kwargs.setdefault("today", TODAY)
    return refresh_catalog(**kwargs)


def test_refresh_parses_all_three_apis_into_a_catalog(price_server, trainkit_home: Path, caplog) -> None:
    caplog.set_level(logging.DEBUG)
    shipped = {row.key: row for row in load_catalog(onprem=[]).rows}
    summary = _refresh(price_server)

    assert Path(summary["path"]) == refreshed_catalog_path()
    catalog = load_catalog(onprem=[])
    assert catalog.path == str(refreshed_catalog_path())  # the refreshed file now takes precedence
    rows = {(r.provider, r.instance_type): r for r in catalog.rows}

    # AWS: the recorded GetProducts answer lowered ml.g4dn.xlarge; Hosting rows were ignored.
    g4dn = rows[("sagemaker", "ml.g4dn.xlarge")]
    assert g4dn.on_demand_per_hour == pytest.approx(0.7014)
    assert g4dn.as_of == TODAY and g4dn.source.startswith("aws-pricing:GetProducts AmazonSageMaker")
    assert rows[("sagemaker", "ml.p3.2xlarge")].on_demand_per_hour == pytest.approx(3.825)
    assert rows[("sagemaker", "ml.p3.2xlarge")].spot_per_hour is None
    # Azure: pay-as-you-go Linux and Spot; not Windows, not the reservation.
    a100 = rows[("azure_ml", "Standard_NC24ads_A100_v4")]
    assert (a100.on_demand_per_hour, a100.spot_per_hour) == (pytest.approx(3.673), pytest.approx(1.2856))
    assert a100.as_of == TODAY
    # Retired sizes are gone from the answer: kept with their old date, so they stay flagged.
    nc6 = rows[("azure_ml", "Standard_NC6s_v3")]
    assert nc6 == shipped[nc6.key]
    # Google: machine = vCPUs x core + GiB x RAM from the us-central1 Training SKUs; GPUs from GPU SKUs.
    n1 = rows[("vertex_ai", "n1-standard-8")]
    assert n1.on_demand_per_hour == pytest.approx(8 * 0.0436 + 30 * 0.0058)
    assert n1.spot_per_hour == pytest.approx(8 * 0.0088 + 30 * 0.0012)
    t4 = rows[("vertex_ai", "NVIDIA_TESLA_T4")]
    assert (t4.on_demand_per_hour, t4.spot_per_hour) == (pytest.approx(0.4025), pytest.approx(0.138))
    a100_40 = rows[("vertex_ai", "NVIDIA_TESLA_A100")]
    assert a100_40.on_demand_per_hour == pytest.approx(3.3741)  # not the A100 80GB SKU
    assert rows[("vertex_ai", "NVIDIA_A100_80GB")].on_demand_per_hour == pytest.approx(4.5134)
    assert len(catalog.rows) == len(shipped)

    by_provider = {p["backend"]: p for p in summary["backends"]}
    assert summary["providers"] == summary["backends"]  # the deprecated key, for one release
    assert all(p["provider"] == p["backend"] for p in summary["backends"])
    assert set(by_provider["azure_ml"]["kept"]) == {"Standard_NC6s_v3", "Standard_NC24s_v3"}
    assert by_provider["sagemaker"]["kept"] == [] and by_provider["vertex_ai"]["kept"] == []

    # The real boto3 request reached the wire: signed, paginated, for AmazonSageMaker in us-east-1.
    aws = [r for r in price_server.requests if r["method"] == "POST"]
    assert len(aws) == 2 and aws[1]["body"]["NextToken"]
    assert aws[0]["body"]["ServiceCode"] == "AmazonSageMaker"
    assert aws[0]["body"]["Filters"] == [{"Type": "TERM_MATCH", "Field": "regionCode", "Value": "us-east-1"}]
    assert aws[0]["auth"].startswith("AWS4-HMAC-SHA256 Credential=AKIATESTTESTTEST/")
    azure = [r for r in price_server.requests if r.get("path") == "/api/retail/prices"]
    assert len(azure) == 2
    assert "armRegionName eq 'eastus'" in azure[0]["query"]["$filter"][0]
    google = [r for r in price_server.requests if str(r.get("path", "")).endswith("/skus")]
    assert google[0]["path"] == "/v1/services/C7E2-9256-1C43/skus" and google[1]["query"]["pageToken"]
    # The API key is sent, but never logged.
    assert google[0]["query"]["key"] == [KEY]
    assert KEY not in caplog.text

    # Quotes now use the refreshed prices and only retired-size rows are still stale.
    table = quote_job({"command": ["x"], "accelerator": "T4:1"}, hours=2, onprem=[], today=TODAY)
    sagemaker = next(q for q in table.quotes if q.provider == "sagemaker")
    assert sagemaker.total == pytest.approx(0.7014 * 2)
    assert not any("stale" in w for w in sagemaker.warnings)


def test_refresh_of_one_provider_keeps_the_others(price_server, trainkit_home: Path) -> None:
    _refresh(price_server, backends=["azure_ml"])
    rows = {(r.provider, r.instance_type): r for r in load_catalog(onprem=[]).rows}
    assert rows[("azure_ml", "Standard_NC4as_T4_v3")].as_of == TODAY
    assert rows[("sagemaker", "ml.g4dn.xlarge")].as_of == date(2025, 6, 1)
    assert not [r for r in price_server.requests if r["method"] == "POST"]


@pytest.mark.parametrize(
    ("route", "body", "message"),
    [
        (
            "azure1",
            {"Message": "Invalid OData"},
            r"Azure Retail Prices answer, page 1: no Items list; got \['Message'\]",
        ),
        (
            "azure2",
            {
                "Items": [
                    {"armSkuName": "Standard_NC4as_T4_v3", "armRegionName": "eastus", "type": "Consumption"}
                ]
            },
            r"Azure Retail Prices page 2, Items\[0\]: no 'retailPrice'",
        ),
        ("google1", {"error": {"code": 400}}, r"Cloud Billing Catalog answer, page 1: no skus list"),
        (
            "google2",
            {"skus": [{"description": "x", "category": {}, "pricingInfo": []}]},
            r"Cloud Billing Catalog skus\[\d+\]: not a Billing Catalog SKU",
        ),
        (
            "aws1",
            {"FormatVersion": "aws_v1", "PriceList": ["{not json"]},
            r"AWS Price List page 1, PriceList\[0\]",
        ),
        (
            "aws1",
            {
                "PriceList": [
                    json.dumps(
                        {"product": {"attributes": {"usagetype": "USE1-Train:ml.g4dn.xlarge"}}, "terms": {}}
                    )
                ]
            },
            r"ml\.g4dn\.xlarge has no terms\.OnDemand",
        ),
    ],
)
def test_unexpected_answer_keeps_previous_catalog(
    price_server, trainkit_home: Path, route, body, message
) -> None:
    _refresh(price_server, backends=["azure_ml"])
    before = refreshed_catalog_path().read_bytes()
    price_server.overrides[route] = body
    with pytest.raises(ValueError, match=message) as err:
        _refresh(price_server, today=date(2026, 12, 1))
    assert KEY not in str(err.value)
    assert refreshed_catalog_path().read_bytes() == before
    assert [p.name for p in refreshed_catalog_path().parent.iterdir()] == ["price_catalog.csv"]


def test_answer_that_prices_nothing_is_refused(price_server, trainkit_home: Path) -> None:
    price_server.overrides["azure1"] = {"Items": [], "NextPageLink": None}
    with pytest.raises(ValueError, match="azure_ml refresh: the answer .* priced none of the catalog's"):
        _refresh(price_server, backends="azure_ml")
    assert not refreshed_catalog_path().exists()


def test_refresh_arguments(price_server, trainkit_home: Path, monkeypatch) -> None:
    monkeypatch.delenv("TRAINKIT_GOOGLE_BILLING_API_KEY", raising=False)
    with pytest.raises(ValueError, match="cannot refresh 'onprem'"):
        _refresh(price_server, backends=["onprem"])
    with pytest.raises(ValueError, match="google_api_key: a Cloud Billing API key is needed"):
        _refresh(price_server, backends=["vertex_ai"], google_api_key=None)
    # The old keyword still works for one release, with a warning.
    with (
        pytest.warns(DeprecationWarning, match="providers=...\\) is deprecated; use backends="),
        pytest.raises(ValueError, match="google_api_key"),
    ):
        _refresh(price_server, providers=["vertex_ai"], google_api_key=None)
    assert not refreshed_catalog_path().exists()


def test_redact_url_hides_keys() -> None:
    url = "https://cloudbilling.googleapis.com/v1/services/x/skus?key=SECRET&currencyCode=USD"
    assert "SECRET" not in redact_url(url)
    assert "currencyCode=USD" in redact_url(url)


def test_unreachable_api_names_url_without_key(trainkit_home: Path) -> None:
    from airflow_trainkit.costs.refresh import http_get_json

    with pytest.raises(OSError, match=r"GET http://127\.0\.0\.1:9/v1\?key=\*\*\* failed") as err:
        http_get_json("http://127.0.0.1:9/v1?key=SECRET", timeout=2)
    assert "SECRET" not in str(err.value)


def test_refresh_parsers_are_keyed_by_the_declared_price_apis() -> None:
    from airflow_trainkit.costs.refresh import _REFRESHERS, refreshable_backends
    from airflow_trainkit.training.pricing import PRICE_APIS

    assert set(_REFRESHERS) == set(PRICE_APIS)
    assert set(refreshable_backends()) == {"sagemaker", "vertex_ai", "azure_ml"}
    with pytest.raises(
        ValueError, match=r"backends: cannot refresh 'onprem': its pricing names no price API"
    ):
        refresh_catalog(["onprem"])
    with pytest.raises(ValueError, match=r"backends: unknown backend 'aws'"):
        refresh_catalog(["aws"])
