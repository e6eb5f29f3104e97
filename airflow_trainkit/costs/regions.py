"""Which region a quote prices on each backend: asked for, read from the backend's connection, or
the backend's declared default.

A region can be asked for as a geography (``us``, ``eu``, ``asia``), which each backend maps to one of
its regions in its ``BackendPricing.geographies``, or per backend (``{"vertex_ai": "europe-west4"}``).
Stdlib only; Airflow is imported only when a connection is read.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from airflow_trainkit.training.pricing import GEOGRAPHIES

if TYPE_CHECKING:
    from airflow_trainkit.training.pricing import PricingEntry, PricingRegistry

log = logging.getLogger(__name__)

Regions = str | Mapping[str, str]


@dataclass(frozen=True)
class RegionChoice:
    """The region a backend is priced in and why; ``region`` is ``None`` when its rows are not
    regional (on-prem) or it declares none (then the region of its rows), and ``missing`` says why a
    geography has no region on this backend."""

    region: str | None
    source: str
    missing: str | None = None


def parse_region_args(values: Sequence[str] | None) -> Regions | None:
    """``--region`` words: one geography, and/or ``BACKEND=REGION`` pairs (a pair's region may be a
    geography too). A geography with pairs is the default for the backends no pair names.

    :raises ValueError: a word that is neither, or two geographies.
    """
    if not values:
        return None
    geography: str | None = None
    pairs: dict[str, str] = {}
    for value in values:
        name, sep, region = value.partition("=")
        if sep:
            if not name or not region:
                raise ValueError(f"--region: {value!r} is not BACKEND=REGION")
            pairs[name.strip()] = region.strip()
        elif value in GEOGRAPHIES:
            if geography is not None and geography != value:
                raise ValueError(f"--region: give one geography, got {geography!r} and {value!r}")
            geography = value
        else:
            raise ValueError(
                f"--region: {value!r} is neither a geography ({', '.join(GEOGRAPHIES)}) nor BACKEND=REGION "
                f"(e.g. sagemaker={value})"
            )
    if not pairs:
        return geography
    if geography is not None:
        pairs.setdefault("*", geography)
    return pairs


def choose_regions(
    registry: PricingRegistry,
    names: Sequence[str],
    regions: Regions | None = None,
    *,
    region_conn_ids: bool | Mapping[str, str] | None = None,
) -> dict[str, RegionChoice]:
    """The region of each backend in ``names``.

    :param regions: a geography for every backend, or backend -> region or geography (the key
        ``"*"`` is the default for backends not named).
    :param region_conn_ids: read the region of backends not named in ``regions`` from their connection:
        ``True`` for each backend's declared ``region_conn_id``, or backend -> connection id.
    :raises ValueError: a geography that is not one of ``us``, ``eu``, ``asia``, or a backend name
        no backend declares.
    """
    if isinstance(regions, str):
        regions = {"*": regions}
    asked = dict(regions or {})
    named = [n for n in asked if n != "*"]
    if named:
        registry.check_names("regions", named)
    conns = dict(region_conn_ids) if isinstance(region_conn_ids, Mapping) else {}
    if conns:
        registry.check_names("region_conn_ids", list(conns))
    out: dict[str, RegionChoice] = {}
    for name in names:
        entry = registry.get(name)
        if entry is None:
            continue
        wanted = asked.get(name, asked.get("*"))
        if wanted is not None:
            out[name] = _asked(entry, str(wanted), explicit=name in asked)
            continue
        conn_id = conns.get(name) or (entry.pricing.region_conn_id if region_conn_ids is True else None)
        if conn_id and entry.pricing.region_extra_keys:
            region = connection_region(conn_id, entry.pricing.region_extra_keys)
            if region:
                out[name] = RegionChoice(region, f"connection {conn_id}")
                continue
        if entry.pricing.default_region:
            out[name] = RegionChoice(entry.pricing.default_region, "the backend's default region")
        else:
            out[name] = RegionChoice(None, "the region of its price rows")
    return out


def _asked(entry: PricingEntry, wanted: str, *, explicit: bool) -> RegionChoice:
    pricing = entry.pricing
    if pricing.rows != "catalog":  # rows made from cost settings: hosts you own, no regions
        return RegionChoice(None, "not regional: hosts you own")
    if wanted in GEOGRAPHIES:
        region = pricing.geographies.get(wanted)
        if region is None:
            return RegionChoice(
                None,
                f"geography {wanted!r}",
                missing=f"the {entry.name} backend declares no region for geography {wanted!r} "
                "(BackendPricing.geographies)",
            )
        return RegionChoice(region, f"geography {wanted!r}")
    if not explicit:
        raise ValueError(
            f"regions: {wanted!r} is not a geography ({', '.join(GEOGRAPHIES)}); name a region per backend"
        )
    return RegionChoice(wanted, "asked for")


def connection_region(conn_id: str, keys: Sequence[str]) -> str | None:
    """The region in connection ``conn_id``'s extra (the first of ``keys`` set), or ``None`` when the
    connection does not exist or names none."""
    try:
        # Airflow is only needed to read a connection, and only when asked to.
        from airflow_trainkit._compat import BaseHook

        conn = BaseHook.get_connection(conn_id)
        extra: Any = conn.extra_dejson
    except Exception as err:  # noqa: BLE001 - a missing or unreadable connection falls back to the default
        log.info("Connection %s gives no region (%s: %s)", conn_id, type(err).__name__, err)
        return None
    if not isinstance(extra, Mapping):
        return None
    for key in keys:
        for name in (key, f"extra__{conn.conn_type}__{key}"):
            value = extra.get(name)
            if isinstance(value, str) and value.strip():
                return value.strip()
    return None


__all__ = ["RegionChoice", "choose_regions", "connection_region", "parse_region_args"]
