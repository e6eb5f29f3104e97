"""The price catalog: one CSV row per (provider, service, region, instance type), each with its provenance.

Every row says where its figure comes from (``source``), how sure it is (``provenance``: published,
observed, derived, unverified) and when the figure was published or observed (``as_of``; empty, with
the snapshot described in ``note``, when no date can be recovered).

Stdlib only (csv), so ``trainkit costs`` works from the core install. Which file is read, first match wins:
an explicit path, ``$TRAINKIT_PRICE_CATALOG``, the refreshed ``<trainkit home>/costs/price_catalog.csv``,
then the snapshot shipped with the package. On-prem rows are computed from the on-prem cost settings.
A row's ``provider`` is the ``catalog_key`` of a declared pricing (:mod:`airflow_trainkit.training.pricing`):
a row no installed backend or quote-only price source declares is refused.
"""

from __future__ import annotations

import csv
import io
import logging
import os
from dataclasses import asdict, dataclass
from datetime import date
from importlib import resources
from pathlib import Path
from typing import TYPE_CHECKING, Any

from airflow_trainkit.home import trainkit_home

if TYPE_CHECKING:
    from collections.abc import Collection, Iterable, Mapping, Sequence

log = logging.getLogger(__name__)

SHIPPED_FILE = "price_catalog.csv"
CATALOG_ENV = "TRAINKIT_PRICE_CATALOG"
MAX_AGE_ENV = "TRAINKIT_PRICE_MAX_AGE_DAYS"
DEFAULT_MAX_AGE_DAYS = 90
KINDS = ("instance", "machine", "accelerator")
# How sure a figure is, surest first: a price page or API answer with its date; a dated third-party
# capture; computed from such figures by a rule stated in the row's note; no cited source. Rows made
# from your own cost settings (on-prem) are "settings".
PROVENANCES = ("published", "observed", "derived", "unverified", "settings")
# Columns a catalog written by an earlier release lacks; their rows read as unverified.
OPTIONAL_COLUMNS = {"provenance": "unverified", "note": ""}
COLUMNS = (
    "provider",
    "service",
    "region",
    "kind",
    "instance_type",
    "gpu_model",
    "gpu_count",
    "vcpus",
    "memory_gib",
    "on_demand_per_hour",
    "spot_per_hour",
    "currency",
    "as_of",
    "source",
    "retired_after",
    "provenance",
    "note",
)


@dataclass(frozen=True)
class PriceRow:
    """One priced thing. ``kind`` is ``instance`` (a whole machine with its GPUs), or, for Vertex AI,
    ``machine`` (the machine type alone) or ``accelerator`` (one GPU of ``instance_type``, e.g.
    ``NVIDIA_TESLA_T4``), which a quote adds together.

    ``as_of`` is the day the figure was published or observed, ``None`` when no date can be recovered
    (then ``note`` describes the snapshot); ``provenance`` is one of :data:`PROVENANCES` and ``note``
    says how a derived figure was computed, or what an undated snapshot is."""

    provider: str
    service: str
    region: str
    kind: str
    instance_type: str
    gpu_model: str | None
    gpu_count: int
    vcpus: float | None
    memory_gib: float | None
    on_demand_per_hour: float
    spot_per_hour: float | None
    currency: str
    as_of: date | None
    source: str
    retired_after: date | None = None
    provenance: str = "unverified"
    note: str = ""

    @property
    def key(self) -> tuple[str, str, str, str]:
        return (self.provider, self.service, self.region, self.instance_type)

    def cited(self) -> dict[str, Any]:
        """The short form carried in quotes and actual costs."""
        return {
            "provider": self.provider,
            "service": self.service,
            "region": self.region,
            "instance_type": self.instance_type,
            "as_of": self.as_of.isoformat() if self.as_of else None,
            "source": self.source,
            "provenance": self.provenance,
            "note": self.note,
        }

    def to_csv_row(self) -> dict[str, str]:
        values = asdict(self)
        out: dict[str, str] = {}
        for column in COLUMNS:
            value = values[column]
            if value is None:
                out[column] = ""
            elif isinstance(value, date):
                out[column] = value.isoformat()
            elif isinstance(value, float):
                out[column] = f"{value:.10g}"
            else:
                out[column] = str(value)
        return out

    def age_days(self, today: date) -> int | None:
        """Days since the figure was published or observed; ``None`` when it carries no date."""
        return (today - self.as_of).days if self.as_of else None

    def retired_on(self, today: date) -> bool:
        return self.retired_after is not None and today > self.retired_after


@dataclass(frozen=True)
class Catalog:
    """The rows in force and where they were read from."""

    rows: tuple[PriceRow, ...]
    path: str

    def for_provider(self, provider: str) -> list[PriceRow]:
        return [row for row in self.rows if row.provider == provider]

    def find(
        self, provider: str, instance_type: str, *, kind: str | None = None, region: str | None = None
    ) -> PriceRow | None:
        """The row of ``instance_type`` on ``provider`` in ``region`` (any region: the first in the
        file), or ``None``."""
        for row in self.rows:
            if (
                row.provider == provider
                and row.instance_type == instance_type
                and kind in (None, row.kind)
                and region in (None, row.region)
            ):
                return row
        return None

    def providers(self) -> list[str]:
        return list(dict.fromkeys(row.provider for row in self.rows))

    def regions(self, provider: str) -> list[str]:
        """The regions ``provider`` has rows in, in file order."""
        return list(dict.fromkeys(row.region for row in self.rows if row.provider == provider))

    def with_rows(self, rows: Iterable[PriceRow], *, path: str | None = None) -> Catalog:
        return Catalog(rows=(*self.rows, *rows), path=path or self.path)


def refreshed_catalog_path() -> Path:
    """Where a refresh writes, and where the loader looks before the shipped snapshot."""
    return trainkit_home() / "costs" / SHIPPED_FILE


def shipped_catalog_text() -> str:
    return resources.files("airflow_trainkit.costs").joinpath(SHIPPED_FILE).read_text(encoding="utf-8")


def catalog_location(path: str | os.PathLike[str] | None = None) -> str:
    """The file ``load_catalog`` reads: explicit, ``$TRAINKIT_PRICE_CATALOG``, refreshed, else shipped."""
    if path:
        return str(path)
    if explicit := os.environ.get(CATALOG_ENV):
        return explicit
    refreshed = refreshed_catalog_path()
    if refreshed.exists():
        return str(refreshed)
    return f"package:airflow_trainkit.costs/{SHIPPED_FILE}"


def load_catalog(
    path: str | os.PathLike[str] | None = None,
    *,
    onprem: Any = None,
) -> Catalog:
    """Read the catalog in force, plus the on-prem rows.

    :param path: a catalog CSV to read instead of the default chain.
    :param onprem: on-prem cost settings: a list of dicts, a CSV path, or ``None`` for the default file
        (see :func:`airflow_trainkit.costs.onprem.load_onprem_rows`).
    :raises ValueError: the file is malformed; the message names the file, row and column.
    """
    from airflow_trainkit.costs.onprem import load_onprem_rows

    location = catalog_location(path)
    if location.startswith("package:"):
        text = shipped_catalog_text()
    else:
        try:
            text = Path(location).expanduser().read_text(encoding="utf-8")
        except OSError as err:
            raise ValueError(f"price catalog {location}: cannot read it ({err.strerror or err})") from None
    rows = parse_catalog(text, source=location)
    return Catalog(rows=rows + tuple(load_onprem_rows(onprem)), path=location)


def parse_catalog(text: str, *, source: str, keys: Collection[str] | None = None) -> tuple[PriceRow, ...]:
    """Parse catalog CSV text.

    :param keys: the ``provider`` values allowed; default the catalog keys of every declared pricing.
    :raises ValueError: naming ``source``, the row (file line) and the column of the first bad value.
    """
    reader = csv.DictReader(io.StringIO(text))
    header = reader.fieldnames or []
    missing = [c for c in COLUMNS if c not in header and c not in OPTIONAL_COLUMNS]
    if missing:
        raise ValueError(f"price catalog {source}: missing column(s) {', '.join(missing)}")
    known = declared_keys() if keys is None else keys
    rows = [
        row_from_mapping(raw, source=source, line=line, keys=known)
        for line, raw in enumerate(reader, start=2)
    ]
    seen: dict[tuple[str, str, str, str], int] = {}
    for line, row in enumerate(rows, start=2):
        if row.key in seen:
            raise ValueError(
                f"price catalog {source}: row {line} repeats row {seen[row.key]} "
                f"({row.provider}, {row.service}, {row.region}, {row.instance_type})"
            )
        seen[row.key] = line
    return tuple(rows)


def declared_keys() -> list[str]:
    """The ``provider`` values a price row may have: the catalog keys of every declared pricing.

    The names of backends that are declared but cannot be imported here are accepted too (their
    pricing is unknown, and one broken plugin must not make every price unreadable).
    """
    from airflow_trainkit.training.pricing import pricing_registry

    registry = pricing_registry()
    keys = registry.catalog_keys()
    return [*keys, *(name for name in registry.not_importable() if name not in keys)]


def row_from_mapping(
    raw: Mapping[str, Any], *, source: str, line: int | str, keys: Collection[str] | None = None
) -> PriceRow:
    """One ``PriceRow`` from strings, checked column by column.

    :param keys: the ``provider`` values allowed; default the catalog keys of every declared pricing.
    """

    def where(column: str) -> str:
        return f"price catalog {source}: row {line}, column {column}"

    def text(column: str, *, required: bool = True) -> str:
        value = raw.get(column, OPTIONAL_COLUMNS.get(column))
        value = "" if value is None else str(value).strip()
        if required and not value:
            raise ValueError(f"{where(column)}: a value is required")
        return value

    def number(column: str, *, required: bool = True) -> float | None:
        value = text(column, required=required)
        if not value:
            return None
        try:
            result = float(value)
        except ValueError:
            raise ValueError(f"{where(column)}: not a number: {value!r}") from None
        if result != result or result < 0 or result in (float("inf"),):
            raise ValueError(f"{where(column)}: must be a finite number of at least 0, got {value!r}")
        return result

    def day(column: str, *, required: bool = True) -> date | None:
        value = text(column, required=required)
        if not value:
            return None
        try:
            return date.fromisoformat(value[:10])
        except ValueError:
            raise ValueError(f"{where(column)}: not a date (YYYY-MM-DD): {value!r}") from None

    provider = text("provider")
    known = declared_keys() if keys is None else keys
    if provider not in known:
        raise ValueError(
            f"{where('provider')}: unknown provider {provider!r}: no installed backend or quote-only price "
            f"source declares it (BackendPricing.catalog_key); known: {', '.join(known)}"
        )
    kind = text("kind")
    if kind not in KINDS:
        raise ValueError(f"{where('kind')}: unknown kind {kind!r}; known: {', '.join(KINDS)}")
    gpu_count = number("gpu_count", required=False) or 0.0
    if gpu_count != int(gpu_count):
        raise ValueError(f"{where('gpu_count')}: not a whole number: {raw.get('gpu_count')!r}")
    gpu_model = text("gpu_model", required=False) or None
    if gpu_model is not None:
        from airflow_trainkit.training.spec import KNOWN_GPUS

        if gpu_model not in KNOWN_GPUS:
            raise ValueError(
                f"{where('gpu_model')}: unknown GPU {gpu_model!r}; known: {', '.join(KNOWN_GPUS)}"
            )
        if gpu_count < 1:
            raise ValueError(
                f"{where('gpu_count')}: must be at least 1 when gpu_model is set, got {gpu_count:g}"
            )
    provenance = text("provenance", required=False) or "unverified"
    if provenance not in PROVENANCES:
        raise ValueError(
            f"{where('provenance')}: unknown provenance {provenance!r}; known: {', '.join(PROVENANCES)}"
        )
    as_of = day("as_of", required=False)
    note = text("note", required=False)
    if as_of is None and not note:
        raise ValueError(
            f"{where('as_of')}: empty; give the day the figure was published or observed, or say in "
            "column note which snapshot it comes from"
        )
    return PriceRow(
        provider=provider,
        service=text("service"),
        region=text("region"),
        kind=kind,
        instance_type=text("instance_type"),
        gpu_model=gpu_model,
        gpu_count=int(gpu_count),
        vcpus=number("vcpus", required=False),
        memory_gib=number("memory_gib", required=False),
        on_demand_per_hour=number("on_demand_per_hour") or 0.0,
        spot_per_hour=number("spot_per_hour", required=False),
        currency=text("currency").upper(),
        as_of=as_of,
        source=text("source"),
        retired_after=day("retired_after", required=False),
        provenance=provenance,
        note=note,
    )


def catalog_csv(rows: Sequence[PriceRow]) -> str:
    """The CSV text of ``rows``, in the catalog's column order."""
    out = io.StringIO()
    writer = csv.DictWriter(out, fieldnames=list(COLUMNS), lineterminator="\n")
    writer.writeheader()
    for row in rows:
        writer.writerow(row.to_csv_row())
    return out.getvalue()


def write_catalog(rows: Sequence[PriceRow], path: str | os.PathLike[str] | None = None) -> str:
    """Write a catalog file whole or not at all (checked by parsing it back first); returns its location."""
    from airflow_trainkit.storage import write_bytes_atomic
    from airflow_trainkit.training.pricing import pricing_registry

    target = str(path or refreshed_catalog_path())
    settings = pricing_registry().settings_keys()  # made from cost settings each time, never stored
    text = catalog_csv([row for row in rows if row.provider not in settings])
    parse_catalog(text, source=target)  # never write what the loader would refuse
    return write_bytes_atomic(target, text.encode("utf-8"))


def max_age_days(value: int | float | str | None = None) -> int:
    """How old a price may be before quotes flag it: the argument, ``$TRAINKIT_PRICE_MAX_AGE_DAYS`` or 90."""
    raw: Any = value if value is not None else os.environ.get(MAX_AGE_ENV, DEFAULT_MAX_AGE_DAYS)
    try:
        days = int(raw)
    except (TypeError, ValueError):
        raise ValueError(f"max_age_days must be a whole number of days, got {raw!r}") from None
    if days < 0:
        raise ValueError(f"max_age_days must be at least 0, got {raw!r}")
    return days


def row_warnings(row: PriceRow, *, today: date, max_age: int) -> list[str]:
    """Warnings every quote or cost that uses ``row`` carries: unverified, undated or stale price,
    retired size."""
    warnings = []
    what = f"{row.provider} {row.instance_type} ({row.region})"
    if row.provenance == "unverified":
        warnings.append(
            f"unverified price: no cited source gives {what} this figure ({row.note or row.source})"
        )
    age = row.age_days(today)
    if row.provenance == "settings":
        pass  # your own cost settings: their date is yours to keep
    elif age is None:
        warnings.append(
            f"undated price: the {row.provenance} figure for {what} has no recoverable date; "
            "run `trainkit costs refresh` where the price APIs are reachable"
        )
    elif age > max_age:
        warnings.append(
            f"stale price: {row.provider} {row.instance_type} is priced as of {row.as_of.isoformat() if row.as_of else '-'} "
            f"({age} days old, more than {max_age}); run `trainkit costs refresh`"
        )
    if row.retired_after is not None:
        if row.retired_on(today):
            warnings.append(
                f"retired size: {row.provider} {row.instance_type} was retired after "
                f"{row.retired_after.isoformat()}"
            )
        else:
            warnings.append(
                f"retiring size: {row.provider} {row.instance_type} retires after {row.retired_after.isoformat()}"
            )
    return warnings


def weakest_provenance(rows: Iterable[PriceRow]) -> str:
    """The least sure provenance among ``rows`` (settings count as sure as published)."""
    order = {"settings": 0, **{name: i for i, name in enumerate(PROVENANCES[:4])}}
    return max((row.provenance for row in rows), key=lambda p: order.get(p, len(order)), default="unverified")


def replace_rows(
    current: Sequence[PriceRow], new: Sequence[PriceRow], providers: Iterable[str]
) -> list[PriceRow]:
    """``current`` with every row of ``providers`` replaced by ``new``'s, kept in a stable order."""
    refreshed = set(providers)
    kept = [row for row in current if row.provider not in refreshed]
    return kept + list(new)


__all__ = [
    "COLUMNS",
    "PROVENANCES",
    "Catalog",
    "PriceRow",
    "catalog_csv",
    "catalog_location",
    "declared_keys",
    "load_catalog",
    "max_age_days",
    "parse_catalog",
    "refreshed_catalog_path",
    "row_from_mapping",
    "row_warnings",
    "weakest_provenance",
    "write_catalog",
]
