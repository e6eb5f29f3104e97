"""Actual cost after a run: the backend's billable facts times the catalog price that applied.

How a backend bills is declared by the backend (``pricing``, see :mod:`airflow_trainkit.training.pricing`),
not kept here.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from datetime import date, datetime
from typing import TYPE_CHECKING, Any

from airflow_trainkit.costs.catalog import Catalog, PriceRow, load_catalog, price_age_limit, row_warnings
from airflow_trainkit.training.instances import instance_for
from airflow_trainkit.training.spec import Accelerator

if TYPE_CHECKING:
    from airflow_trainkit.training.pricing import BackendPricing

log = logging.getLogger(__name__)


def actual_cost(
    result: Mapping[str, Any],
    *,
    catalog: Catalog | None = None,
    onprem: Any = None,
    today: date | None = None,
    max_price_age: str | float | None = None,
    max_age: int | None = None,
) -> dict[str, Any] | None:
    """What a finished (or failed) training run cost, from its result dict.

    :param result: the training result (``backend``, ``billable_seconds`` or ``started_at``/``ended_at``,
        ``instance_type``, ``instance_count``, ``spot``, ``accelerator``, ``details``, ``region``). The
        price row of the region the job ran in is used; a result without a region (earlier releases)
        is priced in the backend's default region, with a warning.
    :param catalog: prices to use (default :func:`load_catalog` with ``onprem`` settings).
    :param max_price_age: how old a price may be before the cost warns it is stale: a duration
        (``90d``); default ``$TRAINKIT_PRICE_MAX_AGE`` or 90 days.
    :param max_age: deprecated: ``max_price_age`` in whole days.
    :return: ``{"amount", "currency", "region", "billable_seconds", "minimum_billed_seconds",
        "billable_hours", "hourly_price", "pricing", "price_row", "price_rows", "basis", "warnings"}``,
        or ``None`` when the backend declares no pricing, the instance has no price in the region the
        job ran in (logged as a warning), or the run has no time to bill.
        ``billable_hours`` is what is billed: at least the backend's minimum billed seconds.
    :raises ValueError: ``result`` is not a training result (the message names the field and value).
    """
    backend, count = _checked_result(result)
    limit = price_age_limit(max_price_age, max_age, owner="actual_cost")
    seconds = _billable_seconds(result)
    if seconds is None:
        log.info(
            "No cost for %s job %s: it has no billable seconds and no start/end time",
            backend,
            result.get("job_id"),
        )
        return None
    from airflow_trainkit.training.pricing import pricing_registry

    entry = pricing_registry().get(backend)
    if entry is None:
        log.info(
            "No cost for %s job %s: the %s backend declares no pricing",
            backend,
            result.get("job_id"),
            backend,
        )
        return None
    rule = entry.pricing
    cat = catalog if catalog is not None else load_catalog(onprem=onprem)
    region, warnings = _region(rule, result, backend)
    priced = _price_rows(rule, result, cat, region)
    if priced is None:
        log.warning(
            "No cost for %s job %s: no price for %s %s%s in %s",
            backend,
            result.get("job_id"),
            backend,
            result.get("instance_type"),
            f" in {region}" if region else "",
            cat.path,
        )
        return None
    day = today or date.today()
    for row, _ in priced:
        warnings.extend(row_warnings(row, today=day, max_price_age=limit))
    spot = bool(result.get("spot"))
    hourly = _hourly(rule, priced, spot, warnings)
    hours = max(seconds, rule.minimum_billed_seconds) / 3600.0
    minimum = (
        f"; at least {rule.minimum_billed_seconds:g} s billed per run" if rule.minimum_billed_seconds else ""
    )
    return {
        "amount": round(hours * hourly * count, 6),
        "currency": priced[0][0].currency,
        "region": priced[0][0].region,
        "billable_seconds": seconds,
        "minimum_billed_seconds": rule.minimum_billed_seconds,
        "billable_hours": round(hours, 6),
        "instance_count": count,
        "hourly_price": round(hourly, 6),
        "pricing": "spot" if spot else "on_demand",
        "price_row": priced[0][0].cited(),
        "price_rows": [row.cited() for row, _ in priced],
        "basis": rule.basis + minimum,
        "warnings": warnings,
    }


def _checked_result(result: Any) -> tuple[str, int]:
    """The backend and instance count of a training result.

    :raises ValueError: naming the field and the value when ``result`` is not a training result.
    """
    if not isinstance(result, Mapping):
        raise ValueError(f"result must be a training result dict, got {type(result).__name__}")
    backend = result.get("backend")
    if not isinstance(backend, str) or not backend:
        raise ValueError(f"result.backend must be a backend name, got {backend!r}")
    count = result.get("instance_count", 1)
    if isinstance(count, bool) or not isinstance(count, int) or count < 1:
        raise ValueError(f"result.instance_count must be a whole number of at least 1, got {count!r}")
    return backend, count


def _region(rule: BackendPricing, result: Mapping[str, Any], backend: str) -> tuple[str | None, list[str]]:
    """The region whose price applies (``None`` for rows that are not regional) and a warning when
    it is the backend's default because the result names none."""
    if rule.rows != "catalog":
        return None, []
    region = result.get("region")
    if region is not None and not isinstance(region, str):
        raise ValueError(f"result.region must be a region name, got {region!r}")
    if region is None and rule.default_region:
        warning = f"the result names no region: priced in {rule.default_region}, the {backend} backend's default region"
        return rule.default_region, [warning]
    return region, []


def _hourly(
    rule: BackendPricing, priced: list[tuple[PriceRow, float]], spot: bool, warnings: list[str]
) -> float:
    """The hourly price of one instance: spot when the run was spot and the backend bills spot at
    the spot price (and the catalog has one), else on-demand."""
    on_demand = sum(row.on_demand_per_hour * share for row, share in priced)
    if not spot or rule.spot_rate != "spot":
        return on_demand
    if all(row.spot_per_hour is not None for row, _ in priced):
        return sum((row.spot_per_hour or 0.0) * share for row, share in priced)
    warnings.append("no spot price in the catalog: costed at the on-demand price (an upper bound)")
    return on_demand


def _billable_seconds(result: Mapping[str, Any]) -> float | None:
    billable = result.get("billable_seconds")
    if billable is not None:
        if isinstance(billable, bool) or not isinstance(billable, (int, float)) or billable < 0:
            raise ValueError(f"result.billable_seconds must be a number of at least 0, got {billable!r}")
        return float(billable)
    started, ended = result.get("started_at"), result.get("ended_at")
    if not started or not ended:
        return None
    start, end = _when("started_at", started), _when("ended_at", ended)
    seconds = (end - start).total_seconds()
    if seconds < 0:
        raise ValueError(f"result.ended_at ({ended!r}) is before result.started_at ({started!r})")
    return seconds


def _when(name: str, value: Any) -> datetime:
    try:
        return datetime.fromisoformat(str(value).replace("Z", "+00:00"))
    except ValueError:
        raise ValueError(f"result.{name} must be an ISO date-time, got {value!r}") from None


def _accelerator(result: Mapping[str, Any]) -> Accelerator | None:
    try:
        return Accelerator.parse(result.get("accelerator"))
    except ValueError:
        raise ValueError(f"result.accelerator is not an accelerator: {result.get('accelerator')!r}") from None


def _price_rows(
    pricing: BackendPricing, result: Mapping[str, Any], catalog: Catalog, region: str | None
) -> list[tuple[PriceRow, float]] | None:
    """The rows that price one instance of this run (in ``region`` when given) and the share of
    each, or ``None``."""
    instance_type = result.get("instance_type")
    details = result.get("details") or {}
    key, table = pricing.catalog_key, pricing.instance_table
    if table is None:  # rows that carry their own GPUs: pay for the GPUs the run held
        return _gpu_share_rows(key, instance_type, details, _accelerator(result), catalog)
    if not instance_type:
        return None
    row = catalog.find(key, instance_type, kind="instance", region=region) or catalog.find(
        key, instance_type, kind="machine", region=region
    )
    if row is None:
        return None
    if row.kind == "instance":
        return [(row, 1.0)]
    if row.kind != "machine":
        return None
    # Machine plus accelerators: the accelerator type from the result, else from the shared table.
    accelerator = _accelerator(result)
    accelerator_type = details.get("accelerator_type") if isinstance(details, Mapping) else None
    gpus = details.get("accelerator_count") if isinstance(details, Mapping) else None
    if accelerator is not None and not accelerator_type:
        try:
            accelerator_type = instance_for(table, accelerator).accelerator_type
        except ValueError:
            return None
    rows: list[tuple[PriceRow, float]] = [(row, 1.0)]
    if accelerator_type:
        gpu = catalog.find(key, accelerator_type, kind="accelerator", region=row.region)
        if gpu is None:
            return None
        rows.append((gpu, float(gpus or (accelerator.count if accelerator else 1))))
    return rows


def _gpu_share_rows(
    key: str, instance_type: Any, details: Any, accelerator: Accelerator | None, catalog: Catalog
) -> list[tuple[PriceRow, float]] | None:
    rows = catalog.for_backend(key)
    named = [row for row in rows if row.instance_type == instance_type]
    if named:
        rows = named
    used_gpus = details.get("gpus") if isinstance(details, Mapping) else None
    used = len(used_gpus) if isinstance(used_gpus, list) else (accelerator.count if accelerator else 0)
    if used == 0:
        cpu = [row for row in rows if row.gpu_model is None]
        return [(cpu[0], 1.0)] if cpu else None
    model = accelerator.model if accelerator else None
    for row in sorted(rows, key=lambda r: r.on_demand_per_hour / max(r.gpu_count, 1)):
        if row.gpu_model is not None and model in (None, row.gpu_model) and row.gpu_count >= used:
            return [(row, used / row.gpu_count)]
    return None
