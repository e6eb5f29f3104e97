"""`trainkit costs refresh` against recorded answers of the three price APIs, real in shape and in
numbers (tests/costs/recorded/SOURCES.md says where each figure comes from)."""

from __future__ import annotations

import json
import logging
from datetime import date
from pathlib import Path

import pytest

from airflow_trainkit.costs.catalog import load_catalog, refreshed_catalog_path
from airflow_trainkit.costs.quotes import quote_job
from airflow_trainkit.costs.refresh import redact_url, refresh_catalog
from airflow_trainkit.vocabulary import TrainkitDeprecationWarning

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
    rows = {(r.backend, r.region, r.instance_type): r for r in catalog.rows}
    assert len(catalog.rows) == len(shipped)

    def price(backend: str, region: str, instance: str) -> tuple[float, float | None]:
        row = rows[(backend, region, instance)]
        return row.on_demand_per_hour, row.spot_per_hour

    # AWS: the Training rows of each region; not Notebook, Processing (ml.g6.xlarge 1.1267),
    # BatchTransform, HyperPod Cluster (ml.p4d.24xlarge 25.910) or the training-plan fee (13.57).
    g4dn = rows[("sagemaker", "us-east-1", "ml.g4dn.xlarge")]
    assert (g4dn.on_demand_per_hour, g4dn.spot_per_hour) == (0.736, None)
    assert (g4dn.as_of, g4dn.provenance) == (TODAY, "published")
    assert g4dn.source.startswith("aws-pricing:GetProducts AmazonSageMaker")
    assert price("sagemaker", "us-east-1", "ml.g6.xlarge") == (1.127, None)
    assert price("sagemaker", "us-east-1", "ml.p4d.24xlarge") == (25.251, None)
    assert price("sagemaker", "ap-south-1", "ml.g5.xlarge") == (1.69, None)  # not Processing's 1.691
    assert price("sagemaker", "us-west-2", "ml.g6.xlarge") == (1.127, None)  # not BatchTransform's 1.1267
    # Sizes the answer does not price keep their figure, date and provenance, so quotes go on flagging them.
    for kept in ("ml.g4dn.12xlarge", "ml.p3.2xlarge", "ml.p5.48xlarge", "ml.m5.2xlarge", "ml.g5.12xlarge"):
        key = ("sagemaker", "sagemaker_training", "us-east-1", kept)
        assert rows[("sagemaker", "us-east-1", kept)] == shipped[key]

    # Azure: Linux pay-as-you-go and the Spot meter; not Windows, DevTest, Reservation or EUR items.
    a100 = rows[("azure_ml", "eastus", "Standard_NC24ads_A100_v4")]
    assert (a100.on_demand_per_hour, a100.spot_per_hour) == (3.673, 0.444433)
    assert (a100.as_of, a100.provenance) == (TODAY, "published")
    assert "spot = the Spot meter" in a100.note
    assert price("azure_ml", "eastus", "Standard_NC40ads_H100_v5") == (
        6.98,
        None,
    )  # no Spot meter in the answer
    # Retired sizes are gone from the answer: kept with their old figure, so they stay flagged.
    nc6 = rows[("azure_ml", "eastus", "Standard_NC6s_v3")]
    assert nc6 == shipped[nc6.key]

    # Google: machine = vCPUs x core + GiB x RAM of its family; the published n1-standard-4 figure.
    n1 = rows[("vertex_ai", "us-central1", "n1-standard-4")]
    assert n1.on_demand_per_hour == pytest.approx(0.21849885, abs=1e-6)
    assert n1.spot_per_hour is None  # no Preemptible SKU in the answer: no spot figure
    assert price("vertex_ai", "us-central1", "n1-standard-8")[0] == pytest.approx(0.4369977, abs=1e-6)
    # a2-highgpu-1g with its A100: 4.2244949 in a 2026 quote of the Vertex price table.
    a2 = price("vertex_ai", "us-central1", "a2-highgpu-1g")[0]
    a100_gpu = price("vertex_ai", "us-central1", "NVIDIA_TESLA_A100")[0]
    assert a2 + a100_gpu == pytest.approx(4.2244949, rel=1e-4)
    assert price("vertex_ai", "us-central1", "NVIDIA_TESLA_T4") == (0.4025, None)
    assert price("vertex_ai", "us-central1", "NVIDIA_A100_80GB")[0] == pytest.approx(4.517284)
    for kept in ("g2-standard-8", "a3-highgpu-8g", "NVIDIA_L4", "NVIDIA_H100_80GB"):
        assert rows[("vertex_ai", "us-central1", kept)].provenance == "unverified"

    by_backend = {p["backend"]: p for p in summary["backends"]}
    assert summary["providers"] == summary["backends"]  # the deprecated key, for one release
    assert all(p["provider"] == p["backend"] for p in summary["backends"])
    assert set(by_backend["azure_ml"]["kept"]) == {"Standard_NC6s_v3", "Standard_NC24s_v3"}
    assert set(by_backend["vertex_ai"]["kept"]) == {
        "g2-standard-8",
        "g2-standard-48",
        "a3-highgpu-8g",
        "NVIDIA_L4",
        "NVIDIA_H100_80GB",
    }

    # The real boto3 request reached the wire: signed, paginated, for AmazonSageMaker, one region each.
    aws = [r for r in price_server.requests if r["method"] == "POST"]
    assert [r["body"]["Filters"][0]["Value"] for r in aws] == [
        "ap-south-1",
        "us-east-1",
        "us-east-1",
        "us-west-2",
    ]
    assert aws[2]["body"]["NextToken"]
    assert aws[0]["body"]["ServiceCode"] == "AmazonSageMaker"
    assert aws[0]["auth"].startswith("AWS4-HMAC-SHA256 Credential=AKIATESTTESTTEST/")
    azure = [r for r in price_server.requests if r.get("path") == "/api/retail/prices"]
    assert len(azure) == 2
    assert azure[0]["query"]["meterRegion"] == ["'primary'"]
    assert "armRegionName eq 'eastus'" in azure[0]["query"]["$filter"][0]
    assert "priceType eq 'Consumption'" in azure[0]["query"]["$filter"][0]
    google = [r for r in price_server.requests if str(r.get("path", "")).endswith("/skus")]
    assert google[0]["path"] == "/v1/services/C7E2-9256-1C43/skus" and google[1]["query"]["pageToken"]
    # The API key is sent, but never logged.
    assert google[0]["query"]["key"] == [KEY]
    assert KEY not in caplog.text

    # Quotes now use the refreshed prices, published as of the refresh.
    table = quote_job({"command": ["x"], "accelerator": "T4:1"}, hours=2, onprem=[], today=TODAY)
    sagemaker = next(q for q in table.quotes if q.backend == "sagemaker")
    assert sagemaker.total == pytest.approx(0.736 * 2)
    assert (sagemaker.provenance, sagemaker.age_days) == ("published", 0)
    assert not sagemaker.warnings


def test_refresh_of_one_backend_keeps_the_others(price_server, trainkit_home: Path) -> None:
    _refresh(price_server, backends=["azure_ml"])
    rows = {(r.backend, r.instance_type): r for r in load_catalog(onprem=[]).rows}
    assert rows[("azure_ml", "Standard_NC4as_T4_v3")].as_of == TODAY
    assert rows[("sagemaker", "ml.g4dn.xlarge")].as_of == date(2026, 9, 24)
    assert rows[("sagemaker", "ml.g4dn.xlarge")].provenance == "observed"
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
            {
                "skus": [
                    {
                        "description": "Vertex AI: Training on N1 Instance Core",
                        "category": {},
                        "pricingInfo": [],
                    }
                ]
            },
            r"Cloud Billing Catalog page 2, skus\[0\]: not a Billing Catalog SKU",
        ),
        (
            "aws1",
            {"FormatVersion": "aws_v1", "PriceList": ["{not json"]},
            r"AWS Price List page 1, PriceList\[0\]",
        ),
        ("aws1", {"Message": "Rate exceeded"}, r"AWS Price List answer, page 1: no PriceList list"),
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


def test_vertex_answer_whose_wording_no_filter_matches_says_so(price_server, trainkit_home: Path) -> None:
    page = json.loads((Path(__file__).parent / "recorded" / "gcp_billing_skus_page2.json").read_text())
    for sku in page["skus"]:
        sku["description"] = sku["description"].replace("Training/Pipelines on ", "")
    price_server.overrides["google1"] = {"skus": page["skus"], "nextPageToken": ""}
    with pytest.raises(ValueError, match=r"0 SKU\(s\) passed the training filter '\\\\bTraining\\\\b'"):
        _refresh(price_server, backends=["vertex_ai"])


def test_refresh_arguments(price_server, trainkit_home: Path, monkeypatch) -> None:
    monkeypatch.delenv("TRAINKIT_GOOGLE_BILLING_API_KEY", raising=False)
    with pytest.raises(ValueError, match="cannot refresh 'onprem'"):
        _refresh(price_server, backends=["onprem"])
    with pytest.raises(ValueError, match="google_api_key: a Cloud Billing API key is needed"):
        _refresh(price_server, backends=["vertex_ai"], google_api_key=None)
    # The old keyword still works for one release, with a warning.
    with (
        pytest.warns(
            TrainkitDeprecationWarning,
            match=r"refresh_catalog\(providers=\.\.\.\) is deprecated; use backends=",
        ),
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
