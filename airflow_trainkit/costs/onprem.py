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

import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Annotated, Any

from pydantic import BeforeValidator, Field, ValidationError, ValidationInfo, field_validator

from airflow_trainkit.config_model import error_lines
from airflow_trainkit.costs.rows import (
    CellsModel,
    Count,
    Currency,
    Day,
    GpuModel,
    Number,
    PriceRow,
    Text,
    csv_records,
    number_cell,
)
from airflow_trainkit.home import trainkit_home

ONPREM_ENV = "TRAINKIT_ONPREM_COSTS"
HOURS_PER_YEAR = 8760
# What a machine you own is costed from; a rented one gives hourly_price instead.
_OWNED_COSTS = ("purchase_price", "amortization_years", "power_watts", "electricity_per_kwh", "utilization")


def _share(value: Any) -> Any:
    """A share of the year in (0, 1]."""
    number = number_cell(value)
    if not 0 < number <= 1:
        raise ValueError("must be a share in (0, 1]")
    return number


def _positive(value: Any) -> Any:
    number = number_cell(value)
    if number <= 0:
        raise ValueError("must be greater than 0")
    return number


Share = Annotated[float, BeforeValidator(_share)]
Positive = Annotated[float, BeforeValidator(_positive)]


class OnPremHost(CellsModel):
    """One kind of on-prem machine and what it costs: either what you paid for it and what it draws
    (a machine you own), or ``hourly_price`` (one you rent).

    :param name: the host or machine class, shown in quotes (e.g. ``"gpu-box-t4"``).
    :param gpu_model: the GPU it carries (one of ``KNOWN_GPUS``, any letter case), or ``None`` for a
        CPU-only host.
    :param gpu_count: GPUs per machine (at least 1 with a ``gpu_model``); a job pays for the share it uses.
    :param hourly_price: what an hour of a rented machine costs (e.g. the on-demand price of the cloud
        VM a Ray node runs on), in ``currency``; instead of the five settings below.
    :param purchase_price: what the machine cost, in ``currency``.
    :param amortization_years: years over which it is written off.
    :param power_watts: draw under training load, in watts.
    :param electricity_per_kwh: price of a kWh, in ``currency``.
    :param utilization: share of the year the machine does paid work, in (0, 1].
    :param yearly_other_costs: space, cooling, support and admin per year, in ``currency``.
    """

    name: Text
    gpu_model: GpuModel | None = None
    # Checked against gpu_model, and the owned costs against hourly_price: both validated before them.
    gpu_count: Count = Field(default=0, validate_default=True)
    hourly_price: Number | None = None
    purchase_price: Number | None = Field(default=None, validate_default=True)
    amortization_years: Positive | None = Field(default=None, validate_default=True)
    power_watts: Number | None = Field(default=None, validate_default=True)
    electricity_per_kwh: Number | None = Field(default=None, validate_default=True)
    utilization: Share | None = Field(default=None, validate_default=True)
    yearly_other_costs: Number = 0.0
    currency: Currency = "USD"
    vcpus: Number | None = None
    memory_gib: Number | None = None
    as_of: Day | None = None

    @field_validator("gpu_count")
    @classmethod
    def _gpus_of_the_model(cls, value: int, info: ValidationInfo) -> int:
        if info.data.get("gpu_model") is not None and value < 1:
            raise ValueError("must be at least 1 when gpu_model is set")
        return value

    @field_validator(*_OWNED_COSTS)
    @classmethod
    def _owned_or_rented(cls, value: float | None, info: ValidationInfo) -> float | None:
        rented = info.data.get("hourly_price") is not None
        if rented and value is not None:
            raise ValueError("not with hourly_price: a machine is rented (hourly_price) or owned, not both")
        if not rented and value is None and "hourly_price" in info.data:
            raise ValueError("required for a machine you own (or give hourly_price for one you rent)")
        return value

    @property
    def hourly_cost(self) -> float:
        """What an hour of the machine costs: its hourly price, or its share of the yearly costs plus power."""
        if self.hourly_price is not None:
            return self.hourly_price
        # A host without hourly_price has all five owned costs (checked when it was built).
        purchase, years, watts, kwh, utilization = (getattr(self, name) or 0.0 for name in _OWNED_COSTS)
        fixed = (purchase / years + self.yearly_other_costs) / (HOURS_PER_YEAR * utilization)
        return fixed + watts / 1000.0 * kwh

    def to_row(self, *, source: str) -> PriceRow:
        """The host as a price row of the ``onprem`` catalog key, with the settings it was computed from."""
        return PriceRow(
            backend="onprem",
            service="onprem",
            region="local",
            kind="instance",
            instance_type=self.name,
            gpu_model=self.gpu_model,
            gpu_count=self.gpu_count,
            vcpus=self.vcpus,
            memory_gib=self.memory_gib,
            on_demand_per_hour=round(self.hourly_cost, 6),
            currency=self.currency,
            as_of=self.as_of,
            provenance="settings",
            note=f"your own cost settings ({source})",
            source=f"onprem settings {source}: {self._settings()}",
        )

    def _settings(self) -> str:
        if self.hourly_price is not None:
            return f"hourly_price={self.hourly_price:g}"
        return ", ".join(
            f"{name}={float(getattr(self, name) or 0):g}" for name in (*_OWNED_COSTS, "yearly_other_costs")
        )


def parse_host(raw: Mapping[str, Any], *, where: str = "onprem", source: str | None = None) -> OnPremHost:
    """One host from a dict of settings (numbers may be text, as in a CSV file; an empty cell is unset).

    :param where: the settings' name, put before each setting in errors (``onprem[0].utilization``).
    :param source: for settings read from a file, the file and row instead (``onprem.csv row 2: utilization``).
    :raises ValueError: naming each bad setting and its value.
    """
    try:
        return OnPremHost.model_validate(raw)
    except ValidationError as error:
        lines = error_lines(error, source=source) if source else error_lines(error, prefix=where)
        raise ValueError("; ".join(lines)) from None


def default_onprem_path() -> Path:
    """The on-prem cost settings file read when none is given: ``$TRAINKIT_ONPREM_COSTS`` or
    ``<trainkit home>/costs/onprem.csv``."""
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
        where = f"onprem cost settings {path}"
        hosts = [
            parse_host(raw, source=f"{where} row {line}") for line, raw in csv_records(text, source=where)[1]
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
