"""Pricing declared by each backend as data, and the one registry the costs read."""

from __future__ import annotations

import dataclasses

import pytest
from trainkit_testing import isolated_backends

from airflow_trainkit.training.backend import TrainingBackend, register_backend
from airflow_trainkit.training.capabilities import Capabilities
from airflow_trainkit.training.pricing import (
    PRICE_APIS,
    BackendPricing,
    pricing_registry,
)


@pytest.fixture
def registry_copy():
    """Backends registered by a test stay in this test."""
    with isolated_backends() as registry:
        yield registry


def _backend(name: str, pricing, capabilities: Capabilities | None = None) -> type[TrainingBackend]:
    namespace = {"pricing": pricing, "capabilities": capabilities or Capabilities()}
    cls = type(f"Test{name.title()}Backend", (TrainingBackend,), namespace)
    return register_backend(name)(cls)


def test_the_built_in_backends_are_declared() -> None:
    registry = pricing_registry()
    assert set(registry.names()) == {"onprem", "sagemaker", "vertex_ai", "azure_ml", "ray"}
    sagemaker, vertex, onprem, azure = (
        registry.entries[n] for n in ("sagemaker", "vertex_ai", "onprem", "azure_ml")
    )
    assert all(entry.trainable and entry.backend is not None for entry in registry.entries.values())
    assert sagemaker.backend is not None and sagemaker.backend.pricing is sagemaker.pricing
    assert (sagemaker.pricing.instance_table, sagemaker.pricing.spot_rate) == ("sagemaker", "on_demand")
    assert "BillableTimeInSeconds" in sagemaker.pricing.basis
    assert (vertex.pricing.instance_table, vertex.pricing.spot_rate) == ("vertex_ai", "spot")
    assert (azure.pricing.instance_table, azure.pricing.price_api) == ("azure_ml", "azure_retail_prices")
    assert (onprem.pricing.instance_table, onprem.pricing.rows) == (None, "onprem_settings")
    assert registry.entries["ray"].pricing.rows == "onprem_settings"  # priced on the same settings
    # Nobody invents a minimum: every built-in bills per second as far as the project knows.
    assert {e.pricing.minimum_billed_seconds for e in registry.entries.values()} == {0.0}
    assert sorted(registry.catalog_keys()) == ["azure_ml", "onprem", "sagemaker", "vertex_ai"]
    assert registry.settings_keys() == {"onprem"}
    assert {e.pricing.price_api for e in registry.entries.values()} == {None, *PRICE_APIS}
    assert registry.unpriced == {}
    # Where each is priced by default, and which region a geography means on each.
    assert (
        sagemaker.pricing.default_region,
        vertex.pricing.default_region,
        azure.pricing.default_region,
    ) == (
        "us-east-1",
        "us-central1",
        "eastus",
    )
    assert dict(sagemaker.pricing.geographies) == {"us": "us-east-1", "eu": "eu-west-1", "asia": "ap-south-1"}
    assert (sagemaker.pricing.region_conn_id, sagemaker.pricing.region_extra_keys) == (
        "aws_default",
        ("region_name",),
    )
    assert (vertex.pricing.region_conn_id, vertex.pricing.region_extra_keys) == (
        "google_cloud_default",
        ("region", "location"),
    )
    assert onprem.pricing.default_region is None and not onprem.pricing.geographies


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"catalog_key": ""}, r"pricing\.catalog_key must be a price-row key .*, got ''"),
        ({"catalog_key": "acme,cloud"}, r"pricing\.catalog_key must be .*, got 'acme,cloud'"),
        ({"basis": " "}, r"pricing\.basis must be a line saying what is multiplied, got ' '"),
        ({"spot_rate": "sometimes"}, r"pricing\.spot_rate must be 'spot' or 'on_demand', got 'sometimes'"),
        ({"minimum_billed_seconds": -1}, r"pricing\.minimum_billed_seconds must be .* at least 0, got -1"),
        ({"minimum_billed_seconds": "60"}, r"pricing\.minimum_billed_seconds must be .*, got '60'"),
        ({"minimum_billed_seconds": True}, r"pricing\.minimum_billed_seconds must be .*, got True"),
        ({"rows": "database"}, r"pricing\.rows must be 'catalog' or 'onprem_settings', got 'database'"),
        ({"rows": "onprem_settings"}, r"pricing\.rows: 'onprem_settings' makes rows with the key 'onprem'"),
        (
            {"price_api": "scrape"},
            r"pricing\.price_api must be None or one of aws_price_list.*, got 'scrape'",
        ),
        ({"trainable": "yes"}, r"pricing\.trainable must be true or false, got 'yes'"),
        ({"instance_table": ""}, r"pricing\.instance_table must be None or a provider key .*, got ''"),
        (
            {"default_region": "US East"},
            r"pricing\.default_region must be None or a region name .*, got 'US East'",
        ),
        (
            {"geographies": {"mars": "m-1"}},
            r"pricing\.geographies must be a mapping of us, eu, asia to region",
        ),
        ({"geographies": {"eu": ""}}, r"pricing\.geographies must be a mapping of us, eu, asia to region"),
        (
            {"region_conn_id": "aws_default"},
            r"pricing\.region_conn_id and pricing\.region_extra_keys go together",
        ),
        (
            {"region_extra_keys": ["region"]},
            r"pricing\.region_extra_keys must be a tuple of connection extra keys",
        ),
    ],
)
def test_a_malformed_declaration_names_the_field_and_value(changes, message) -> None:
    values = {"catalog_key": "acme", "basis": "wall time x hourly price", **changes}
    with pytest.raises(ValueError, match=message):
        BackendPricing(**values)


def test_a_backend_class_declares_its_pricing_and_is_priced(registry_copy) -> None:
    pricing = BackendPricing(catalog_key="acme_cloud", basis="wall time x price", minimum_billed_seconds=60)
    _backend("acme", pricing)
    entry = pricing_registry().entries["acme"]
    assert entry.pricing is pricing and entry.trainable and entry.why_not_trainable() is None
    assert "acme_cloud" in pricing_registry().catalog_keys()


def test_a_backend_replaces_the_quote_only_entry_of_its_name(registry_copy, monkeypatch) -> None:
    from airflow_trainkit.training import pricing

    quoted = dataclasses.replace(pricing_registry().get("vertex_ai").pricing, catalog_key="vertex_ai")
    monkeypatch.setitem(pricing.QUOTE_ONLY, "acme_quoted", dataclasses.replace(quoted, trainable=False))  # type: ignore[arg-type]
    entry = pricing_registry().entries["acme_quoted"]
    assert (
        not entry.trainable
        and entry.why_not_trainable() == "quote only: no acme_quoted training backend is installed"
    )
    _backend("acme_quoted", quoted)
    entry = pricing_registry().entries["acme_quoted"]
    assert entry.backend is not None and entry.trainable


@pytest.mark.parametrize(
    ("pricing", "capabilities", "message"),
    [
        (
            {"catalog_key": "acme", "spot_rate": "spot"},
            None,
            r"backend 'acme': pricing must be a BackendPricing or None, got dict",
        ),
        (
            BackendPricing(catalog_key="acme", basis="x", instance_table="acme"),
            None,
            r"backend 'acme': pricing\.instance_table 'acme' has no rows in the accelerator instance table",
        ),
        (
            BackendPricing(catalog_key="acme", basis="x", instance_table="vertex_ai"),
            Capabilities(instance_table="sagemaker"),
            r"pricing\.instance_table must match capabilities\.instance_table \('sagemaker'\), got 'vertex_ai'",
        ),
    ],
)
def test_a_malformed_declaration_on_a_class_fails_the_registry(registry_copy, pricing, capabilities, message):
    _backend("acme", pricing, capabilities)
    with pytest.raises(ValueError, match=message):
        pricing_registry()


def test_a_backend_without_pricing_is_listed_as_unpriced(registry_copy) -> None:
    _backend("plain", None)
    registry = pricing_registry()
    assert "plain" not in registry.entries
    assert registry.unpriced["plain"] == "declares no pricing (TestPlainBackend.pricing is None)"


def test_check_names() -> None:
    registry = pricing_registry()
    assert registry.check_names("pick_from", ["onprem", "azure_ml", "onprem"]) == ["onprem", "azure_ml"]
    assert registry.check_names("pick_from", "onprem") == ["onprem"]
    with pytest.raises(ValueError, match=r"pick_from: unknown backend 'aws': no installed backend .*known: "):
        registry.check_names("pick_from", ["onprem", "aws"])
    with pytest.raises(ValueError, match="pick_from: name at least one backend"):
        registry.check_names("pick_from", [])
