"""How each backend is priced, declared by the backend as data, and the one registry the costs read.

A backend class sets ``pricing = BackendPricing(...)``; a price source with no training backend yet
is declared here, once, as quote-only. :func:`pricing_registry` returns every declared entry: the
built-in backends, those registered through the ``airflow_trainkit.backends`` entry point group, and
the quote-only ones. Stdlib only: DAGs and the cost CLI import it.
"""

from __future__ import annotations

import logging
import math
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from collections.abc import Callable, Iterable

    from airflow_trainkit.training.backend import TrainingBackend

log = logging.getLogger(__name__)

SPOT_RATES = ("spot", "on_demand")
# Where a backend's price rows come from: the price catalog CSV, or the on-prem cost settings
# (``costs/onprem.py``), which make rows with the key ``onprem``.
ROW_SOURCES = ("catalog", "onprem_settings")
# The public price APIs ``trainkit costs refresh`` can read (one parser each in costs/refresh.py).
PRICE_APIS = ("aws_price_list", "azure_retail_prices", "google_cloud_billing")
# Geographies a quote may name instead of a region; each backend maps them to one of its regions.
GEOGRAPHIES = ("us", "eu", "asia")
_KEY = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]*$")
_REGION = re.compile(r"^[a-z0-9][a-z0-9-]*$")
_NOT_IMPORTABLE = "not importable here"


@dataclass(frozen=True)
class BackendPricing:
    """How one backend turns a job into money.

    :param catalog_key: the ``backend`` value of this backend's price rows (in the price catalog,
        or made from the on-prem cost settings); usually its own name.
    :param basis: one line for quotes and reports saying what is multiplied.
    :param instance_table: the provider key of the rows of ``training/accelerator_instances.csv``
        that map a spec's accelerator to this backend's instance types (``sagemaker``, ...).
        ``None``: the backend's price rows carry their own GPUs (``gpu_model``, ``gpu_count``), a
        job is priced on the cheapest row with enough of the GPU asked for, and pays for the share
        of that row's GPUs it takes (on-prem hosts; a third-party backend's own rows).
    :param rows: ``"catalog"``: the rows are in the price catalog CSV; ``"onprem_settings"``: they
        are made from the on-prem cost settings (only with ``catalog_key="onprem"``).
    :param spot_rate: ``"spot"``: a spot run's seconds are billed at the spot price;
        ``"on_demand"``: the backend already shrinks the billable seconds of a spot run (SageMaker
        managed spot) or has no spot capacity, and bills them at the on-demand price.
    :param minimum_billed_seconds: the least a run is billed per instance; 0 for per-second billing
        with no minimum (all the built-in backends, as far as this project knows).
    :param price_api: which public price API ``trainkit costs refresh`` reads the rows from (one of
        :data:`PRICE_APIS`); ``None``: the rows are kept as written.
    :param trainable: whether a job can run on it here; ``False`` for a price source that is quoted
        but never picked to train on.
    :param default_region: the region a quote prices when none is asked for and no connection
        names one; ``None``: the region of the backend's price rows (on-prem has none).
    :param geographies: geography (``us``, ``eu``, ``asia``) -> the region a quote for that
        geography prices on this backend.
    :param region_conn_id: the connection whose extra names the region jobs run in (the backend's
        default connection); ``None`` when the backend has no such connection.
    :param region_extra_keys: the keys of that connection's extra that hold the region, first match wins.
    """

    catalog_key: str
    basis: str
    instance_table: str | None = None
    rows: str = "catalog"
    spot_rate: str = "spot"
    minimum_billed_seconds: float = 0.0
    price_api: str | None = None
    trainable: bool = True
    default_region: str | None = None
    geographies: Mapping[str, str] = field(default_factory=dict, hash=False)
    region_conn_id: str | None = None
    region_extra_keys: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        for name, valid, expected in _FIELD_CHECKS:
            if not valid(getattr(self, name)):
                raise ValueError(f"pricing.{name} must be {expected}, got {getattr(self, name)!r}")
        if self.rows == "onprem_settings" and (self.catalog_key != "onprem" or self.instance_table):
            raise ValueError(
                "pricing.rows: 'onprem_settings' makes rows with the key 'onprem' and no instance table, "
                f"got catalog_key={self.catalog_key!r}, instance_table={self.instance_table!r}"
            )
        if bool(self.region_conn_id) != bool(self.region_extra_keys):
            raise ValueError(
                "pricing.region_conn_id and pricing.region_extra_keys go together: the connection and "
                f"the extra keys that hold its region, got {self.region_conn_id!r} and {self.region_extra_keys!r}"
            )


def _is_key(value: object) -> bool:
    return isinstance(value, str) and bool(_KEY.match(value))


def _is_seconds(value: object) -> bool:
    return (
        not isinstance(value, bool) and isinstance(value, int | float) and math.isfinite(value) and value >= 0
    )


def _is_geographies(value: object) -> bool:
    return isinstance(value, Mapping) and all(
        geo in GEOGRAPHIES and _is_region(region) for geo, region in value.items()
    )


def _is_extra_keys(value: object) -> bool:
    return isinstance(value, tuple) and all(isinstance(k, str) and k for k in value)


# Each field of a BackendPricing: how a valid value looks, and how the error message says so.
_FIELD_CHECKS: tuple[tuple[str, Callable[[Any], bool], str], ...] = (
    ("catalog_key", _is_key, "a price-row key (letters, digits, '_', '.', '-')"),
    ("basis", lambda v: isinstance(v, str) and bool(v.strip()), "a line saying what is multiplied"),
    (
        "instance_table",
        lambda v: v is None or _is_key(v),
        "None or a provider key of the accelerator instance table",
    ),
    ("rows", lambda v: v in ROW_SOURCES, " or ".join(map(repr, ROW_SOURCES))),
    ("spot_rate", lambda v: v in SPOT_RATES, " or ".join(map(repr, SPOT_RATES))),
    ("minimum_billed_seconds", _is_seconds, "a number of seconds of at least 0"),
    ("price_api", lambda v: v is None or v in PRICE_APIS, f"None or one of {', '.join(PRICE_APIS)}"),
    ("trainable", lambda v: isinstance(v, bool), "true or false"),
    ("default_region", lambda v: v is None or _is_region(v), "None or a region name (e.g. 'us-east-1')"),
    ("geographies", _is_geographies, f"a mapping of {', '.join(GEOGRAPHIES)} to region names"),
    ("region_conn_id", lambda v: v is None or _is_key(v), "None or a connection id"),
    ("region_extra_keys", _is_extra_keys, "a tuple of connection extra keys"),
)


def _is_region(value: object) -> bool:
    return isinstance(value, str) and bool(_REGION.match(value))


# Price sources that no training backend of this package runs on yet: quoted, never picked to
# train on. A backend registered under the same name (built in or through the entry point
# group) replaces its entry here.
QUOTE_ONLY: Mapping[str, BackendPricing] = {
    # Azure ML was quoted here until its backend landed: backends/azure_ml declares its own pricing.
}


@dataclass(frozen=True)
class PricingEntry:
    """One priced name: its declaration, and the backend class when one is installed."""

    name: str
    pricing: BackendPricing
    backend: type[TrainingBackend] | None = None

    @property
    def trainable(self) -> bool:
        """Whether a job can be trained on it here: its backend is installed and declares it trainable."""
        return self.backend is not None and self.pricing.trainable

    def why_not_trainable(self) -> str | None:
        """Why a job cannot be trained on this entry here, or ``None`` when it can."""
        if self.backend is None:
            return f"quote only: no {self.name} training backend is installed"
        if not self.pricing.trainable:
            return f"quote only: the {self.name} backend declares pricing.trainable=False"
        return None


@dataclass(frozen=True)
class PricingRegistry:
    """Every priced name, and the backends that could not be priced here with the reason."""

    entries: Mapping[str, PricingEntry]
    unpriced: Mapping[str, str] = field(default_factory=dict)

    def names(self) -> list[str]:
        """Every priced name, in registry order (built-in and installed backends, then quote-only)."""
        return list(self.entries)

    def get(self, name: str) -> PricingEntry | None:
        """The entry of ``name``, or ``None`` when it is not priced here."""
        return self.entries.get(name)

    def catalog_keys(self) -> list[str]:
        """The ``backend`` values of price rows some entry reads, without repeats."""
        return list(dict.fromkeys(e.pricing.catalog_key for e in self.entries.values()))

    def not_importable(self) -> list[str]:
        """Installed backends (entry points) whose module cannot be imported here."""
        return [name for name, why in self.unpriced.items() if why.startswith(_NOT_IMPORTABLE)]

    def settings_keys(self) -> set[str]:
        """Keys whose rows are made from cost settings, never written to a catalog file."""
        return {e.pricing.catalog_key for e in self.entries.values() if e.pricing.rows != "catalog"}

    def check_names(self, field_name: str, values: Iterable[str] | str) -> list[str]:
        """``values`` as a list of declared names, without repeats.

        :raises ValueError: naming ``field_name`` and the first name that is not declared here.
        """
        items = [values] if isinstance(values, str) else list(values)
        if not items:
            raise ValueError(f"{field_name}: name at least one backend")
        known = sorted({*self.entries, *self.unpriced})
        for item in items:
            if not isinstance(item, str) or item not in known:
                raise ValueError(
                    f"{field_name}: unknown backend {item!r}: no installed backend or quote-only price "
                    f"source has that name; known: {', '.join(known)}"
                )
        return list(dict.fromkeys(items))


def pricing_registry() -> PricingRegistry:
    """Every declared pricing: installed backends (built-in and entry points), then quote-only ones.

    A backend whose module cannot be imported here, or that declares no pricing, is listed in
    ``unpriced`` with the reason instead.

    :raises ValueError: a backend declares malformed pricing (naming the backend, field and value).
    """
    from airflow_trainkit.training.backend import available_backends, get_backend

    entries: dict[str, PricingEntry] = {}
    unpriced: dict[str, str] = {}
    for name in available_backends():
        try:
            cls = get_backend(name)
        except (ImportError, AttributeError) as err:  # a missing SDK or module, a wrong entry point
            unpriced[name] = f"{_NOT_IMPORTABLE}: {type(err).__name__}: {err}"
            log.warning("Backend %s is not importable here, so it is not priced: %s", name, err)
            continue
        except ValueError as err:
            raise ValueError(f"backend {name!r}: {err}") from None
        pricing = getattr(cls, "pricing", None)
        if pricing is None:
            unpriced[name] = f"declares no pricing ({cls.__qualname__}.pricing is None)"
            continue
        entries[name] = _checked_entry(PricingEntry(name, pricing, cls))
    for name, pricing in QUOTE_ONLY.items():
        if name in entries or name in unpriced:
            continue
        if pricing.trainable:
            raise ValueError(f"quote-only {name!r}: pricing.trainable must be False, got True")
        entries[name] = _checked_entry(PricingEntry(name, pricing))
    return PricingRegistry(entries=entries, unpriced=unpriced)


def _checked_entry(entry: PricingEntry) -> PricingEntry:
    """Checks that need the backend class or the accelerator table (not done at class definition)."""
    pricing = entry.pricing
    if not isinstance(pricing, BackendPricing):
        raise ValueError(
            f"backend {entry.name!r}: pricing must be a BackendPricing or None, got {type(pricing).__name__}: "
            f"{pricing!r}"
        )
    if pricing.instance_table is not None:
        from airflow_trainkit.training.instances import table_providers

        if pricing.instance_table not in table_providers():
            raise ValueError(
                f"backend {entry.name!r}: pricing.instance_table {pricing.instance_table!r} has no rows in "
                f"the accelerator instance table; known: {', '.join(table_providers())}"
            )
    declared = getattr(getattr(entry.backend, "capabilities", None), "instance_table", None)
    if declared and pricing.instance_table != declared:
        raise ValueError(
            f"backend {entry.name!r}: pricing.instance_table must match capabilities.instance_table "
            f"({declared!r}), got {pricing.instance_table!r}"
        )
    return entry


__all__ = [
    "GEOGRAPHIES",
    "PRICE_APIS",
    "QUOTE_ONLY",
    "BackendPricing",
    "PricingEntry",
    "PricingRegistry",
    "pricing_registry",
]
