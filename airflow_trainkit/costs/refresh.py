"""Refresh the price catalog from the public price APIs, whole or not at all.

AWS Price List (boto3 ``pricing`` client, ``AmazonSageMaker``), Azure Retail Prices (no auth) and the
Google Cloud Billing Catalog (Vertex AI SKUs, API key). Which backend's rows are read from which API
is each backend's ``pricing.price_api`` (see :mod:`airflow_trainkit.training.pricing`). Every row of the
catalog in force is looked up; a row the answer does not price keeps its old price, date and
provenance, so quotes go on flagging it. A row the answer prices becomes ``published`` as of the
day of the answer. The parsers take only the rows that are what a training job is billed at and
skip the rest of a price list (which holds thousands of other products) instead of failing on it.
"""

from __future__ import annotations

import json
import logging
import re
import urllib.parse
import urllib.request
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date
from typing import TYPE_CHECKING, Any

from airflow_trainkit.costs.catalog import (
    PriceRow,
    catalog_location,
    load_catalog,
    refreshed_catalog_path,
    replace_rows,
    write_catalog,
)
from airflow_trainkit.vocabulary import deprecated, renamed_parameter

if TYPE_CHECKING:
    from airflow_trainkit.training.pricing import PricingEntry, PricingRegistry

log = logging.getLogger(__name__)

Fetch = Callable[[str], Any]
AWS_PRICING_REGION = "us-east-1"  # the Price List API answers from us-east-1 (and ap-south-1) only
AZURE_PRICES_URL = "https://prices.azure.com/api/retail/prices"
AZURE_API_VERSION = "2023-01-01-preview"
GOOGLE_BILLING_URL = "https://cloudbilling.googleapis.com/v1"
VERTEX_AI_SERVICE_ID = "C7E2-9256-1C43"
GOOGLE_KEY_ENV = "TRAINKIT_GOOGLE_BILLING_API_KEY"
MAX_PAGES = 200

# AWS: a SageMaker training product is component "Training" AND a usage type "<region>-Train:ml.*".
# Other rows of the same instance (Hosting, Processing, HyperPod "Cluster", managed spot training
# "TrSpt", training-plan upfront fees priced per "Quantity") are not what a training job is billed at.
AWS_TRAINING_USAGE = re.compile(r"^[A-Z0-9]+-Train:ml\.")
AWS_HOURLY_UNITS = ("hrs", "hours", "hour")

# Azure: Linux pay-as-you-go meters only. Windows products are named "... Windows" or "... Win"
# (e.g. "Virtual Machines NCCadsv5 Srs Win"); Cloud Services products bill differently.
AZURE_EXCLUDED_PRODUCTS = re.compile(r"\bWin(?:dows)?\b|\bCloud ?Services\b")
# Which discounted meter is the catalog's spot price. Spot VMs bill the " Spot" meter; a dedicated
# Azure ML cluster of tier LowPriority may bill the " Low Priority" meter, which the docs found do not
# settle. The choice is this one constant, never a silent fallback from one meter to the other.
AZURE_SPOT_METER = "spot"
AZURE_METERS = {"spot": " Spot", "low_priority": " Low Priority"}

# Google: only SKUs whose description passes VERTEX_TRAINING_SKU are parsed (the Vertex AI service
# holds thousands of others: Gemini tokens, prediction nodes, storage). No real Vertex AI training
# SKU was seen by this project; the filter assumes its description says "Training" and is otherwise
# the Compute Engine wording ("N1 Predefined Instance Core running in Americas", "Nvidia Tesla T4 GPU
# running in Americas"). Core, RAM and GPU SKUs are told apart by these words, not by resourceGroup
# (Compute Engine files N1 cores under "N1Standard").
VERTEX_TRAINING_SKU = re.compile(r"\bTraining\b", re.IGNORECASE)
VERTEX_NOT_TRAINING = re.compile(
    r"\b(?:Prediction|Predict|Serving|Endpoint|Commitment|Reserved|Sole Tenancy|Custom Instance|Extended)\b",
    re.IGNORECASE,
)
VERTEX_RESOURCES = {
    "core": re.compile(r"\bCore\b"),
    "ram": re.compile(r"\bRam\b", re.IGNORECASE),
    "gpu": re.compile(r"\bGPU\b"),
}
VERTEX_UNITS = {"core": "h", "ram": "GiBy.h", "gpu": "h"}
# Vertex AI accelerator type -> a pattern of its SKU description (the Billing Catalog has no GPU field).
VERTEX_GPU_PATTERNS = {
    "NVIDIA_TESLA_T4": r"\bT4\b",
    "NVIDIA_TESLA_P100": r"\bP100\b",
    "NVIDIA_TESLA_V100": r"\bV100\b",
    "NVIDIA_L4": r"\bL4\b",
    "NVIDIA_TESLA_A100": r"\bA100\b(?!\s*80\s*GB)",
    "NVIDIA_A100_80GB": r"\bA100 80\s*GB\b",
    "NVIDIA_H100_80GB": r"\bH100\b(?!.*\bMega\b)",  # not the A3 Mega's "H100 80GB Mega"
}


@dataclass
class BackendRefresh:
    """What a refresh found for one backend: the instance types whose price it updated, and those
    it kept (the answer did not price them)."""

    backend: str
    source: str
    updated: list[str] = field(default_factory=list)
    kept: list[str] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        """JSON for XCom; ``provider`` repeats ``backend`` for one release (deprecated)."""
        return {
            "backend": self.backend,
            "source": self.source,
            "updated": self.updated,
            "kept": self.kept,
            "provider": self.backend,
        }


def __getattr__(name: str) -> Any:
    if name == "ProviderRefresh":
        deprecated("airflow_trainkit.costs.refresh.ProviderRefresh is deprecated; use BackendRefresh")
        return BackendRefresh
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def http_get_json(url: str, *, timeout: float = 60.0) -> Any:
    """GET ``url`` and decode its JSON; errors name the URL without its query's secrets."""
    request = urllib.request.Request(
        url, headers={"Accept": "application/json", "User-Agent": "airflow-trainkit"}
    )
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:  # noqa: S310 - https price APIs
            body = response.read()
    except OSError as err:
        raise OSError(f"GET {redact_url(url)} failed: {getattr(err, 'reason', None) or err}") from None
    try:
        return json.loads(body)
    except json.JSONDecodeError as err:
        raise ValueError(f"GET {redact_url(url)}: the answer is not JSON ({err})") from None


def redact_url(url: str) -> str:
    """``url`` with the values of ``key``/``token`` query parameters replaced, for messages and logs."""
    parts = urllib.parse.urlsplit(url)
    query = [
        (k, "***" if k.lower() in ("key", "api_key", "token", "access_token") else v)
        for k, v in urllib.parse.parse_qsl(parts.query, keep_blank_values=True)
    ]
    return urllib.parse.urlunsplit(parts._replace(query=urllib.parse.urlencode(query, safe="$'(), *")))


def refreshable_backends(registry: PricingRegistry | None = None) -> dict[str, PricingEntry]:
    """The backends (and quote-only price sources) whose pricing names a price API, by name."""
    from airflow_trainkit.training.pricing import pricing_registry

    reg = registry if registry is not None else pricing_registry()
    return {name: e for name, e in reg.entries.items() if e.pricing.price_api in _REFRESHERS}


def refresh_catalog(
    backends: Iterable[str] | str | None = None,
    *,
    path: str | None = None,
    source_path: str | None = None,
    fetch: Fetch | None = None,
    pricing_client: Any = None,
    google_api_key: str | None = None,
    today: date | None = None,
    providers: Iterable[str] | str | None = None,
) -> dict[str, Any]:
    """Fetch current prices for ``backends`` and write a new catalog that takes precedence over the shipped one.

    :param backends: backends whose pricing names a price API (default all of them: ``sagemaker``,
        ``vertex_ai``, ``azure_ml`` and any installed backend that declares one).
    :param path: the catalog file to write (default ``<trainkit home>/costs/price_catalog.csv``).
    :param source_path: the catalog whose rows are refreshed (default: the one in force).
    :param fetch: ``url -> decoded JSON`` for Azure and Google (default: an HTTPS GET).
    :param pricing_client: a boto3 ``pricing`` client (default: one for us-east-1 from the default chain).
    :param google_api_key: Cloud Billing API key (default ``$TRAINKIT_GOOGLE_BILLING_API_KEY``).
    :param providers: deprecated alias of ``backends``.
    :return: a summary: the path written, and per backend the rows updated and the rows kept
        (``providers``/``provider`` repeat ``backends``/``backend`` for one release, deprecated).
    :raises ValueError: an answer in an unexpected shape or a backend unknown or without a price API;
        nothing is written.
    """
    import os

    from airflow_trainkit.training.pricing import pricing_registry

    backends = renamed_parameter("refresh_catalog", "providers", "backends", providers, backends)
    registry = pricing_registry()
    refreshable = refreshable_backends(registry)
    names = list(refreshable) if backends is None else registry.check_names("backends", backends)
    for name in names:
        if name not in refreshable:
            raise ValueError(
                f"backends: cannot refresh {name!r}: its pricing names no price API; "
                f"refreshable: {', '.join(refreshable)}"
            )
    current = [row for row in load_catalog(source_path, onprem=[]).rows]
    day = today or date.today()
    get = fetch or http_get_json
    new_rows: list[PriceRow] = []
    summaries = []
    keys = [refreshable[name].pricing.catalog_key for name in names]
    for name, key in zip(names, keys, strict=True):
        targets = [row for row in current if row.backend == key]
        if not targets:
            raise ValueError(
                f"backends: the catalog {catalog_location(source_path)} has no {name} rows to refresh"
            )
        refresher = _REFRESHERS[str(refreshable[name].pricing.price_api)]
        rows, summary = refresher(
            targets,
            fetch=get,
            client=pricing_client,
            api_key=google_api_key or os.environ.get(GOOGLE_KEY_ENV),
            today=day,
        )
        summary.backend = name
        new_rows.extend(rows)
        summaries.append(summary)
    written = write_catalog(replace_rows(current, new_rows, keys), path or refreshed_catalog_path())
    for summary in summaries:
        log.info(
            "Refreshed %s from %s: %s rows updated, %s kept (%s)",
            summary.backend,
            summary.source,
            len(summary.updated),
            len(summary.kept),
            ", ".join(summary.kept) or "none",
        )
    done = [s.to_dict() for s in summaries]
    return {"path": written, "backends": done, "providers": done}


def _merge(
    backend: str,
    targets: Sequence[PriceRow],
    found: Mapping[tuple[str, str], tuple[float | None, float | None]],
    source: str,
    today: date,
    *,
    note: str = "",
    hint: str = "",
) -> tuple[list[PriceRow], BackendRefresh]:
    """``targets`` with the prices ``found`` by (region, instance type): published as of ``today``."""
    summary = BackendRefresh(backend=backend, source=source)
    rows = []
    for row in targets:
        on_demand, spot = found.get((row.region, row.instance_type), (None, None))
        if on_demand is None:
            summary.kept.append(row.instance_type)
            rows.append(row)
            continue
        summary.updated.append(row.instance_type)
        rows.append(
            row.replaced(
                on_demand_per_hour=round(on_demand, 6),
                spot_per_hour=round(spot, 6) if spot is not None else None,
                as_of=today,
                source=source,
                provenance="published",
                note=note,
            )
        )
    if not summary.updated:
        raise ValueError(
            f"{backend} refresh: the answer from {source} priced none of the catalog's "
            f"{len(targets)} rows ({', '.join(r.instance_type for r in targets[:5])}, ...); catalog unchanged"
            + (f"; {hint}" if hint else "")
        )
    return rows, summary


def _keep_first(found: dict[Any, Any], key: Any, value: Any, what: str) -> None:
    """Record ``value`` for ``key`` unless one is recorded already: a second row never overwrites the first."""
    if key not in found:
        found[key] = value
    elif found[key] != value:
        log.warning("%s: a second row gives %s, the first gave %s; kept the first", what, value, found[key])


# --- AWS Price List ---------------------------------------------------------------------------------


def refresh_sagemaker(
    targets: Sequence[PriceRow], *, client: Any = None, today: date
) -> tuple[list[PriceRow], BackendRefresh]:
    """SageMaker training prices from the AWS Price List ``GetProducts`` answer, one query per region."""
    if client is None:
        import boto3  # heavy, and only needed for this refresh

        client = boto3.client("pricing", region_name=AWS_PRICING_REGION)
    found: dict[tuple[str, str], tuple[float | None, float | None]] = {}
    for region in sorted({row.region for row in targets}):
        paginator = client.get_paginator("get_products")
        pages = paginator.paginate(
            ServiceCode="AmazonSageMaker",
            Filters=[{"Type": "TERM_MATCH", "Field": "regionCode", "Value": region}],
            FormatVersion="aws_v1",
        )
        for page_number, page in enumerate(pages, start=1):
            items = page.get("PriceList")
            if not isinstance(items, list):
                raise ValueError(
                    f"AWS Price List answer, page {page_number}: no PriceList list; got keys {sorted(page)}"
                )
            for index, item in enumerate(items):
                where = f"AWS Price List page {page_number}, PriceList[{index}]"
                parsed = parse_aws_price_item(item, where=where)
                if parsed is not None and parsed[1] == region:
                    _keep_first(found, (region, parsed[0]), (parsed[2], None), f"{where} ({parsed[0]})")
    source = f"aws-pricing:GetProducts AmazonSageMaker ({', '.join(sorted({r.region for r in targets}))})"
    note = "component Training, usage type <region>-Train; SageMaker publishes no spot price"
    return _merge("sagemaker", targets, found, source, today, note=note)


def parse_aws_price_item(item: Any, *, where: str) -> tuple[str, str, float] | None:
    """``(instance type, region, on-demand USD per hour)`` of one training product, ``None`` for others.

    A training product has component ``Training`` and a usage type ``<region>-Train:ml.*``; a
    training product without an hourly on-demand price (a fee per quantity, say) is skipped too.

    :raises ValueError: the item is not a Price List product document.
    """
    doc, attributes = _aws_product(item, where=where)
    usage = str(attributes.get("usagetype", ""))
    if attributes.get("component") != "Training" or not AWS_TRAINING_USAGE.match(usage):
        return None
    instance = attributes.get("instanceName") or usage.rpartition(":")[2]
    if not str(instance).startswith("ml."):
        return None
    on_demand = (doc.get("terms") or {}).get("OnDemand")
    if not isinstance(on_demand, Mapping) or not on_demand:
        log.info("%s: %s has no terms.OnDemand; skipped", where, instance)
        return None
    prices = _aws_hourly_prices(on_demand, where=f"{where}: {instance}")
    if not prices:
        log.info("%s: %s has no hourly on-demand price; skipped", where, instance)
        return None
    return str(instance), str(attributes.get("regionCode", "")), max(prices)


def _aws_product(item: Any, *, where: str) -> tuple[Mapping[str, Any], Mapping[str, Any]]:
    """A Price List product document (JSON text or decoded) and its ``product.attributes``."""
    try:
        doc = json.loads(item) if isinstance(item, str) else item
    except json.JSONDecodeError as err:
        raise ValueError(f"{where}: not a JSON product document ({err})") from None
    if not isinstance(doc, Mapping) or not isinstance(doc.get("product"), Mapping):
        raise ValueError(f"{where}: no 'product' object")
    attributes = doc["product"].get("attributes")
    if not isinstance(attributes, Mapping):
        raise ValueError(f"{where}: no product.attributes")
    return doc, attributes


def _aws_hourly_prices(on_demand: Mapping[str, Any], *, where: str) -> list[float]:
    """The USD prices per hour in ``terms.OnDemand`` (dimensions in other units are left out)."""
    prices = []
    for term in on_demand.values():
        for dimension in (term or {}).get("priceDimensions", {}).values():
            if str(dimension.get("unit", "")).lower() not in AWS_HOURLY_UNITS:
                continue
            value: Any = (dimension.get("pricePerUnit") or {}).get("USD")
            try:
                prices.append(float(value))
            except (TypeError, ValueError):
                raise ValueError(f"{where} pricePerUnit.USD is not a number: {value!r}") from None
    return prices


# --- Azure Retail Prices ----------------------------------------------------------------------------


def azure_prices_url(region: str, arm_skus: Sequence[str]) -> str:
    """The Retail Prices query for ``arm_skus`` in ``region``: Consumption prices of primary meters."""
    skus = " or ".join(f"armSkuName eq '{sku}'" for sku in arm_skus)
    query = (
        f"serviceName eq 'Virtual Machines' and priceType eq 'Consumption' "
        f"and armRegionName eq '{region}' and ({skus})"
    )
    # Since 2023-01-01-preview the API returns non-primary meters too unless meterRegion='primary'.
    return f"{AZURE_PRICES_URL}?" + urllib.parse.urlencode(
        {"api-version": AZURE_API_VERSION, "meterRegion": "'primary'", "$filter": query},
        quote_via=urllib.parse.quote,
    )


def refresh_azure(
    targets: Sequence[PriceRow], *, fetch: Fetch, today: date, spot_meter: str = AZURE_SPOT_METER
) -> tuple[list[PriceRow], BackendRefresh]:
    """Azure ML compute prices (Linux VM rates: pay-as-you-go and the ``spot_meter`` one) from the
    Azure Retail Prices API.

    :param spot_meter: ``"spot"`` (the default, :data:`AZURE_SPOT_METER`) or ``"low_priority"``: which
        discounted meter is the catalog's spot price. The other is never used instead.
    """
    if spot_meter not in AZURE_METERS:
        raise ValueError(f"spot_meter must be one of {', '.join(AZURE_METERS)}, got {spot_meter!r}")
    found: dict[tuple[str, str], tuple[float | None, float | None]] = {}
    for region in sorted({row.region for row in targets}):
        skus = [row.instance_type for row in targets if row.region == region]
        prices: dict[tuple[str, str], float] = {}
        for page_number, page in enumerate(
            _pages(fetch, azure_prices_url(region, skus), "NextPageLink"), start=1
        ):
            items = page.get("Items") if isinstance(page, Mapping) else None
            if not isinstance(items, list):
                keys = sorted(page) if isinstance(page, Mapping) else type(page).__name__
                raise ValueError(f"Azure Retail Prices answer, page {page_number}: no Items list; got {keys}")
            for index, item in enumerate(items):
                where = f"Azure Retail Prices page {page_number}, Items[{index}]"
                parsed = parse_azure_item(item, where=where)
                if parsed is not None and parsed[1] == region:
                    _keep_first(
                        prices, (parsed[0], parsed[2]), parsed[3], f"{where} ({parsed[0]} {parsed[2]})"
                    )
        for sku in skus:
            if (sku, "on_demand") in prices:
                found[(region, sku)] = (prices[(sku, "on_demand")], prices.get((sku, spot_meter)))
    meter = AZURE_METERS[spot_meter].strip()
    note = f"Linux pay-as-you-go meter; spot = the {meter} meter"
    return _merge(
        "azure_ml", targets, found, f"{AZURE_PRICES_URL} (Virtual Machines, Linux)", today, note=note
    )


def parse_azure_item(item: Any, *, where: str) -> tuple[str, str, str, float] | None:
    """``(arm sku, region, tier, USD/hour)`` of a Linux Consumption VM meter (tier ``on_demand``,
    ``spot`` or ``low_priority``), ``None`` for others: Windows ("Windows" or "Win") and Cloud
    Services products, other price types, non-primary meters, units other than an hour, and prices
    of zero (sizes not on sale)."""
    if not isinstance(item, Mapping):
        raise ValueError(f"{where}: not an object: {item!r}")
    for key in ("armSkuName", "armRegionName", "retailPrice", "type", "skuName", "productName"):
        if key not in item:
            raise ValueError(f"{where}: no {key!r}")
    if item["type"] != "Consumption" or AZURE_EXCLUDED_PRODUCTS.search(str(item["productName"])):
        return None
    if item.get("isPrimaryMeterRegion") is False or item.get("unitOfMeasure", "1 Hour") != "1 Hour":
        return None
    sku_name = str(item["skuName"])
    tier = next((t for t, suffix in AZURE_METERS.items() if sku_name.endswith(suffix)), "on_demand")
    try:
        price = float(item["retailPrice"])
    except (TypeError, ValueError):
        raise ValueError(f"{where}: retailPrice is not a number: {item['retailPrice']!r}") from None
    if price <= 0:
        return None
    return str(item["armSkuName"]), str(item["armRegionName"]), tier, price


# --- Google Cloud Billing Catalog -------------------------------------------------------------------


def refresh_vertex(
    targets: Sequence[PriceRow],
    *,
    fetch: Fetch,
    api_key: str,
    today: date,
    service_id: str = VERTEX_AI_SERVICE_ID,
) -> tuple[list[PriceRow], BackendRefresh]:
    """Vertex AI custom training prices: machine types from per-vCPU and per-GiB SKUs, GPUs from GPU SKUs.

    Only the SKUs whose description passes :data:`VERTEX_TRAINING_SKU` are parsed; the others (most
    of the service) are not looked at beyond their description.
    """
    url = f"{GOOGLE_BILLING_URL}/services/{service_id}/skus?" + urllib.parse.urlencode(
        {"key": api_key, "currencyCode": "USD", "pageSize": 5000}
    )
    parsed: list[_Sku] = []
    for page_number, page in enumerate(_pages(fetch, url, "nextPageToken", token_param="pageToken"), start=1):
        items = page.get("skus") if isinstance(page, Mapping) else None
        if not isinstance(items, list):
            keys = sorted(page) if isinstance(page, Mapping) else type(page).__name__
            raise ValueError(f"Cloud Billing Catalog answer, page {page_number}: no skus list; got {keys}")
        for index, sku in enumerate(items):
            if is_vertex_training_sku(sku):
                parsed.append(
                    parse_google_sku(sku, where=f"Cloud Billing Catalog page {page_number}, skus[{index}]")
                )
    found: dict[tuple[str, str], tuple[float | None, float | None]] = {}
    for row in targets:
        if row.kind == "accelerator":
            pattern = VERTEX_GPU_PATTERNS.get(row.instance_type)
            if pattern is None:
                continue
            on_demand = _google_price(parsed, row.region, "gpu", "OnDemand", pattern)
            spot = _google_price(parsed, row.region, "gpu", "Preemptible", pattern)
            found[(row.region, row.instance_type)] = (on_demand, spot)
        elif row.kind == "machine" and row.vcpus is not None and row.memory_gib is not None:
            family = rf"\b{re.escape(row.instance_type.split('-')[0].upper())}\b"
            prices = []
            for usage in ("OnDemand", "Preemptible"):
                core = _google_price(parsed, row.region, "core", usage, family)
                ram = _google_price(parsed, row.region, "ram", usage, family)
                prices.append(
                    None if core is None or ram is None else core * row.vcpus + ram * row.memory_gib
                )
            found[(row.region, row.instance_type)] = (prices[0], prices[1])
    hint = (
        f"{len(parsed)} SKU(s) passed the training filter {VERTEX_TRAINING_SKU.pattern!r}; if Vertex AI "
        "words its training SKUs otherwise, see docs/costs.md"
    )
    note = "machines: vCPUs x core SKU + GiB x RAM SKU of the family; spot = Preemptible SKUs"
    return _merge(
        "vertex_ai",
        targets,
        found,
        f"{GOOGLE_BILLING_URL}/services/{service_id}/skus",
        today,
        note=note,
        hint=hint,
    )


def is_vertex_training_sku(sku: Any) -> bool:
    """Whether a Billing Catalog SKU is a custom-training compute SKU, judged by its description only."""
    description = sku.get("description") if isinstance(sku, Mapping) else None
    if not isinstance(description, str):
        return False
    return (
        bool(VERTEX_TRAINING_SKU.search(description))
        and not VERTEX_NOT_TRAINING.search(description)
        and any(pattern.search(description) for pattern in VERTEX_RESOURCES.values())
    )


@dataclass(frozen=True)
class _Sku:
    description: str
    group: str
    usage: str
    regions: tuple[str, ...]
    unit: str
    price: float


def parse_google_sku(sku: Any, *, where: str) -> _Sku:
    """One SKU's description, category, regions and USD price per unit (the last tier's ``units + nanos``)."""
    if not isinstance(sku, Mapping):
        raise ValueError(f"{where}: not an object: {sku!r}")
    try:
        category = sku["category"]
        info = sku["pricingInfo"][0]["pricingExpression"]
        rate = info["tieredRates"][-1]["unitPrice"]
        price = int(rate.get("units") or 0) + int(rate.get("nanos") or 0) / 1e9
        regions = tuple(sku.get("serviceRegions") or (sku.get("geoTaxonomy") or {}).get("regions") or ())
        return _Sku(
            description=str(sku["description"]),
            group=str(category.get("resourceGroup", "")),
            usage=str(category.get("usageType", "")),
            regions=regions,
            unit=str(info["usageUnit"]),
            price=price,
        )
    except (KeyError, IndexError, TypeError, AttributeError) as err:
        raise ValueError(
            f"{where}: not a Billing Catalog SKU (need description, category, "
            f"pricingInfo[0].pricingExpression.tieredRates[].unitPrice; missing {err})"
        ) from None
    except ValueError:
        raise ValueError(
            f"{where}: unitPrice units/nanos are not numbers: {sku.get('pricingInfo')!r}"
        ) from None


def _google_price(skus: Sequence[_Sku], region: str, resource: str, usage: str, pattern: str) -> float | None:
    """The price of the first training SKU in ``region`` for ``resource`` (core, ram or gpu) of
    ``usage`` whose description matches ``pattern``, in the unit that resource is billed in."""
    regex = re.compile(pattern)
    word = VERTEX_RESOURCES[resource]
    others = [p for name, p in VERTEX_RESOURCES.items() if name != resource]
    matches = [
        sku.price
        for sku in skus
        if region in sku.regions
        and sku.usage == usage
        and word.search(sku.description)
        and not any(p.search(sku.description) for p in others)
        and regex.search(sku.description)
        and sku.unit == VERTEX_UNITS[resource]
    ]
    if len(set(matches)) > 1:
        log.warning(
            "Vertex AI %s %s SKUs in %s matching %s disagree (%s); kept the first",
            usage,
            resource,
            region,
            pattern,
            ", ".join(f"{m:g}" for m in matches),
        )
    return matches[0] if matches else None


def _pages(fetch: Fetch, url: str, next_key: str, *, token_param: str | None = None) -> Iterable[Any]:
    """Pages of a paged JSON API: ``next_key`` holds a full next URL, or a token for ``token_param``."""
    current: str | None = url
    for _ in range(MAX_PAGES):
        if current is None:
            return
        page = fetch(current)
        yield page
        following = page.get(next_key) if isinstance(page, Mapping) else None
        if not following:
            return
        if token_param:
            parts = urllib.parse.urlsplit(url)
            query = [(k, v) for k, v in urllib.parse.parse_qsl(parts.query) if k != token_param]
            query.append((token_param, str(following)))
            current = urllib.parse.urlunsplit(parts._replace(query=urllib.parse.urlencode(query)))
        else:
            current = str(following)
    raise ValueError(f"{redact_url(url)}: more than {MAX_PAGES} pages; stopped")


def _sagemaker(
    targets: Sequence[PriceRow], *, client: Any, today: date, **_: Any
) -> tuple[list[PriceRow], BackendRefresh]:
    return refresh_sagemaker(targets, client=client, today=today)


def _azure(
    targets: Sequence[PriceRow], *, fetch: Fetch, today: date, **_: Any
) -> tuple[list[PriceRow], BackendRefresh]:
    return refresh_azure(targets, fetch=fetch, today=today)


def _vertex(
    targets: Sequence[PriceRow], *, fetch: Fetch, api_key: str | None, today: date, **_: Any
) -> tuple[list[PriceRow], BackendRefresh]:
    if not api_key:
        raise ValueError(
            f"google_api_key: a Cloud Billing API key is needed to refresh vertex_ai; set ${GOOGLE_KEY_ENV}"
        )
    return refresh_vertex(targets, fetch=fetch, api_key=api_key, today=today)


# Price API (a backend's ``pricing.price_api``) -> how its prices are fetched; each is called with
# targets, fetch, client, api_key, today.
_REFRESHERS: dict[str, Callable[..., tuple[list[PriceRow], BackendRefresh]]] = {
    "aws_price_list": _sagemaker,
    "azure_retail_prices": _azure,
    "google_cloud_billing": _vertex,
}
