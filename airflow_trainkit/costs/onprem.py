"""What an hour of your own GPUs costs, from what you paid for them and what they draw.

hourly = (purchase_price / amortization_years + yearly_other_costs) / (8760 x utilization)
         + power_watts / 1000 x electricity_per_kwh

Capital and running costs are spread over the hours the machine is actually used (``utilization``);
energy is paid for the hours the job runs. A machine you rent by the hour (the cloud VMs a Ray cluster
runs on, say) declares its ``hourly_price`` instead. Settings come from a list of dicts or a CSV file
with these columns (the default file is ``<trainkit home>/costs/onprem.csv`` or
``$TRAINKIT_ONPREM_COSTS``).
"""

from __future__ import annotations

import csv
import io
import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, fields
from datetime import date
from pathlib import Path
from typing import Any

from airflow_trainkit.costs.catalog import PriceRow
from airflow_trainkit.home import trainkit_home

ONPREM_ENV = "TRAINKIT_ONPREM_COSTS"
HOURS_PER_YEAR = 8760
# What a machine you own is costed from; a rented one gives hourly_price instead.
_OWNED_COSTS = ("purchase_price", "amortization_years", "power_watts", "electricity_per_kwh", "utilization")


@dataclass(frozen=True)
class OnPremHost:
    """One kind of on-prem machine and what it costs.

    :param name: the host or machine class, shown in quotes (e.g. ``"gpu-box-t4"``).
    :param gpu_model: the GPU it carries (one of ``KNOWN_GPUS``), or ``None`` for a CPU-only host.
    :param gpu_count: GPUs per machine; a job pays for the share it uses.
    :param purchase_price: what the machine cost, in ``currency``.
    :param amortization_years: years over which it is written off.
    :param power_watts: draw under training load, in watts.
    :param electricity_per_kwh: price of a kWh, in ``currency``.
    :param utilization: share of the year the machine does paid work, in (0, 1].
    :param yearly_other_costs: space, cooling, support and admin per year, in ``currency``.
    :param hourly_price: instead of the five settings above, what an hour of a rented machine costs
        (e.g. the on-demand price of the cloud VM a Ray node runs on), in ``currency``.
    """

    name: str
    gpu_model: str | None
    gpu_count: int
    purchase_price: float
    amortization_years: float
    power_watts: float
    electricity_per_kwh: float
    utilization: float
    yearly_other_costs: float = 0.0
    currency: str = "USD"
    vcpus: float | None = None
    memory_gib: float | None = None
    as_of: str | None = None
    hourly_price: float | None = None

    @property
    def hourly_cost(self) -> float:
        if self.hourly_price is not None:
            return self.hourly_price
        fixed = (self.purchase_price / self.amortization_years + self.yearly_other_costs) / (
            HOURS_PER_YEAR * self.utilization
        )
        return fixed + self.power_watts / 1000.0 * self.electricity_per_kwh

    def to_row(self, *, source: str) -> PriceRow:
        return PriceRow(
            provider="onprem",
            service="onprem",
            region="local",
            kind="instance",
            instance_type=self.name,
            gpu_model=self.gpu_model,
            gpu_count=self.gpu_count,
            vcpus=self.vcpus,
            memory_gib=self.memory_gib,
            on_demand_per_hour=round(self.hourly_cost, 6),
            spot_per_hour=None,
            currency=self.currency,
            as_of=date.fromisoformat(self.as_of) if self.as_of else None,
            provenance="settings",
            note=f"your own cost settings ({source})",
            source=(
                f"onprem settings {source}: hourly_price={self.hourly_price:g}"
                if self.hourly_price is not None
                else f"onprem settings {source}: purchase_price={self.purchase_price:g}, "
                f"amortization_years={self.amortization_years:g}, power_watts={self.power_watts:g}, "
                f"electricity_per_kwh={self.electricity_per_kwh:g}, utilization={self.utilization:g}, "
                f"yearly_other_costs={self.yearly_other_costs:g}"
            ),
        )


def parse_host(raw: Mapping[str, Any], *, where: str) -> OnPremHost:
    """One host from a dict of settings; ``where`` names it in errors (``"onprem[0]"``, ``"file.csv row 2"``)."""
    from airflow_trainkit.training.spec import KNOWN_GPUS

    known = {f.name for f in fields(OnPremHost)}
    unknown = sorted(set(raw) - known)
    if unknown:
        raise ValueError(
            f"{where}: unknown setting(s) {', '.join(unknown)}; known: {', '.join(sorted(known))}"
        )

    def value(name: str) -> Any:
        item = raw.get(name)
        return None if item is None or (isinstance(item, str) and not item.strip()) else item

    def number(name: str, *, required: bool = True, low: float = 0.0, strict: bool = False) -> float | None:
        item = value(name)
        if item is None:
            if required:
                raise ValueError(f"{where}.{name} is required")
            return None
        try:
            result = float(item)
        except (TypeError, ValueError):
            raise ValueError(f"{where}.{name} must be a number, got {item!r}") from None
        if result != result or result < low or (strict and result == low):
            bound = "greater than" if strict else "at least"
            raise ValueError(f"{where}.{name} must be {bound} {low:g}, got {item!r}")
        return result

    name = str(value("name") or "").strip()
    if not name:
        raise ValueError(f"{where}.name is required")
    gpu_model = value("gpu_model")
    if gpu_model is not None:
        gpu_model = {g.upper(): g for g in KNOWN_GPUS}.get(str(gpu_model).strip().upper())
        if gpu_model is None:
            raise ValueError(
                f"{where}.gpu_model: unknown GPU {raw.get('gpu_model')!r}; known: {', '.join(KNOWN_GPUS)}"
            )
    gpu_count = number("gpu_count", required=gpu_model is not None, strict=gpu_model is not None) or 0.0
    if gpu_count != int(gpu_count):
        raise ValueError(f"{where}.gpu_count must be a whole number, got {raw.get('gpu_count')!r}")
    hourly_price = number("hourly_price", required=False)
    owned = [key for key in _OWNED_COSTS if value(key) is not None]
    if hourly_price is not None and owned:
        raise ValueError(
            f"{where}: give hourly_price (a rented machine) or {', '.join(_OWNED_COSTS)} (one you own), "
            f"not both; got hourly_price and {', '.join(owned)}"
        )
    rented = hourly_price is not None
    purchase_price = number("purchase_price", required=not rented) or 0.0
    amortization_years = number("amortization_years", strict=True, required=not rented) or 1.0
    power_watts = number("power_watts", required=not rented) or 0.0
    electricity_per_kwh = number("electricity_per_kwh", required=not rented) or 0.0
    utilization = number("utilization", strict=True, required=not rented) or (1.0 if rented else 0.0)
    if utilization > 1:
        raise ValueError(f"{where}.utilization must be a share in (0, 1], got {raw.get('utilization')!r}")
    as_of = value("as_of")
    if as_of is not None:
        try:
            as_of = date.fromisoformat(str(as_of)[:10]).isoformat()
        except ValueError:
            raise ValueError(f"{where}.as_of must be a date (YYYY-MM-DD), got {as_of!r}") from None
    return OnPremHost(
        name=name,
        gpu_model=gpu_model,
        gpu_count=int(gpu_count),
        purchase_price=purchase_price,
        amortization_years=amortization_years,
        power_watts=power_watts,
        electricity_per_kwh=electricity_per_kwh,
        utilization=utilization,
        yearly_other_costs=number("yearly_other_costs", required=False) or 0.0,
        currency=str(value("currency") or "USD").strip().upper(),
        vcpus=number("vcpus", required=False),
        memory_gib=number("memory_gib", required=False),
        as_of=as_of,
        hourly_price=hourly_price,
    )


def default_onprem_path() -> Path:
    return Path(os.environ.get(ONPREM_ENV) or trainkit_home() / "costs" / "onprem.csv").expanduser()


def load_onprem_hosts(settings: Any = None) -> tuple[list[OnPremHost], str]:
    """Hosts from ``settings`` (a list of dicts, one dict, or a CSV path) or the default file; and their source."""
    if settings is None:
        path = default_onprem_path()
        if not path.exists():
            return [], str(path)
        settings = path
    if isinstance(settings, Mapping):
        settings = [settings]
    if isinstance(settings, (str, os.PathLike)):
        path = Path(settings).expanduser()
        try:
            text = path.read_text(encoding="utf-8")
        except OSError as err:
            raise ValueError(f"onprem cost settings {path}: cannot read it ({err.strerror or err})") from None
        reader = csv.DictReader(io.StringIO(text))
        hosts = [
            parse_host(raw, where=f"onprem cost settings {path}: row {line}")
            for line, raw in enumerate(reader, 2)
        ]
        return hosts, str(path)
    if isinstance(settings, Sequence):
        hosts = []
        for index, item in enumerate(settings):
            if not isinstance(item, Mapping):
                raise ValueError(f"onprem[{index}] must be a mapping of settings, got {item!r}")
            hosts.append(parse_host(item, where=f"onprem[{index}]"))
        return hosts, "argument"
    raise ValueError(
        f"onprem must be a list of settings, a mapping or a CSV path, got {type(settings).__name__}"
    )


def load_onprem_rows(settings: Any = None) -> list[PriceRow]:
    """Catalog rows for the on-prem hosts (see :func:`load_onprem_hosts`)."""
    hosts, source = load_onprem_hosts(settings)
    names = [h.name for h in hosts]
    duplicates = sorted({n for n in names if names.count(n) > 1})
    if duplicates:
        raise ValueError(f"onprem cost settings {source}: host name(s) repeated: {', '.join(duplicates)}")
    return [host.to_row(source=source) for host in hosts]
