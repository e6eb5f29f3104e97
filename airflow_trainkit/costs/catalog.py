"""The price catalog: one CSV row per (backend, service, region, instance type), each with its provenance.

Every row says where its figure comes from (``source``), how sure it is (``provenance``: published,
observed, derived, unverified) and when the figure was published or observed (``as_of``; empty, with
the snapshot described in ``note``, when no date can be recovered). A row is a
:class:`~airflow_trainkit.costs.rows.PriceRow`, a strict settings model.

Light (pydantic and the stdlib), so ``trainkit costs`` works from the core install. Which file is
read, first match wins: an explicit path, ``$TRAINKIT_PRICE_CATALOG``, the refreshed
``<trainkit home>/costs/price_catalog.csv``, then the snapshot shipped with the package. On-prem rows
are computed from the on-prem cost settings (:mod:`airflow_trainkit.costs.onprem`). A row's ``backend`` is the
``catalog_key`` of a declared pricing (:mod:`airflow_trainkit.training.pricing`): a row no installed
backend or quote-only price source declares is refused.
"""

from __future__ import annotations

import csv
import io
import logging
import os
from dataclasses import dataclass
from datetime import date
from importlib import resources
from pathlib import Path
from typing import TYPE_CHECKING, Any

from pydantic import ValidationError

from airflow_trainkit.config_model import error_lines
from airflow_trainkit.costs.onprem import load_onprem_rows
from airflow_trainkit.costs.rows import COLUMNS, KINDS, PROVENANCES, PriceRow, csv_records
from airflow_trainkit.durations import parse_duration
from airflow_trainkit.home import trainkit_home
from airflow_trainkit.vocabulary import deprecated

if TYPE_CHECKING:
    from collections.abc import Collection, Iterable, Mapping, Sequence

log = logging.getLogger(__name__)

SHIPPED_FILE = "price_catalog.csv"
CATALOG_ENV = "TRAINKIT_PRICE_CATALOG"
MAX_AGE_ENV = "TRAINKIT_PRICE_MAX_AGE"  # a duration: 90d, 12w, 2160h, ...
OLD_MAX_AGE_ENV = "TRAINKIT_PRICE_MAX_AGE_DAYS"  # deprecated: a whole number of days
DEFAULT_MAX_PRICE_AGE = "90d"
DAY = 86400.0
# Columns a catalog written by an earlier release lacks; their rows read as unverified.
OPTIONAL_COLUMNS = {"provenance": "unverified", "note": ""}
# The column the backend's key had before it was called backend (read with a deprecation warning).
OLD_BACKEND_COLUMN = "provider"


@dataclass(frozen=True)
class Catalog:
    """The rows in force and where they were read from."""

    rows: tuple[PriceRow, ...]
    path: str

    def for_backend(self, backend: str) -> list[PriceRow]:
        """The rows of catalog key ``backend``, in file order."""
        return [row for row in self.rows if row.backend == backend]

    def for_provider(self, provider: str) -> list[PriceRow]:
        """Deprecated alias of :meth:`for_backend`."""
        deprecated("Catalog.for_provider() is deprecated; use Catalog.for_backend()")
        return self.for_backend(provider)

    def find(
        self, backend: str, instance_type: str, *, kind: str | None = None, region: str | None = None
    ) -> PriceRow | None:
        """The row of ``instance_type`` on ``backend`` in ``region`` (any region: the first in the
        file), or ``None``."""
        for row in self.rows:
            if (
                row.backend == backend
                and row.instance_type == instance_type
                and kind in (None, row.kind)
                and region in (None, row.region)
            ):
                return row
        return None

    def backends(self) -> list[str]:
        """The catalog keys that have rows, in file order."""
        return list(dict.fromkeys(row.backend for row in self.rows))

    def providers(self) -> list[str]:
        """Deprecated alias of :meth:`backends`."""
        deprecated("Catalog.providers() is deprecated; use Catalog.backends()")
        return self.backends()

    def regions(self, backend: str) -> list[str]:
        """The regions ``backend`` has rows in, in file order."""
        return list(dict.fromkeys(row.region for row in self.rows if row.backend == backend))

    def with_rows(self, rows: Iterable[PriceRow], *, path: str | None = None) -> Catalog:
        """This catalog with ``rows`` added (and read from ``path``, when given)."""
        return Catalog(rows=(*self.rows, *rows), path=path or self.path)


def refreshed_catalog_path() -> Path:
    """Where a refresh writes, and where the loader looks before the shipped snapshot."""
    return trainkit_home() / "costs" / SHIPPED_FILE


def shipped_catalog_text() -> str:
    """The text of the price catalog shipped with the package."""
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
    :raises ValueError: the file is malformed; the message names the file, row, column and value.
    """
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

    A file whose key column is still called ``provider`` (written by an earlier release) is read with
    a deprecation warning.

    :param keys: the ``backend`` values allowed; default the catalog keys of every declared pricing.
    :raises ValueError: naming ``source``, the row (file line), the column and the value of every bad
        cell of the first bad row.
    """
    header = next(csv.reader(io.StringIO(text)), [])
    old_header = OLD_BACKEND_COLUMN in header and "backend" not in header
    if old_header:
        deprecated(
            f"price catalog {source}: the column {OLD_BACKEND_COLUMN!r} is deprecated; call it 'backend' "
            "(`trainkit costs refresh` writes the new header)",
            stacklevel=2,
        )
        header = ["backend" if c == OLD_BACKEND_COLUMN else c for c in header]
    _check_header(header, source)
    _, records = csv_records(text, source=f"price catalog {source}")
    if old_header:
        records = [(line, _renamed_column(record)) for line, record in records]
    known = declared_keys() if keys is None else keys
    rows = [row_from_mapping(raw, source=source, line=line, keys=known) for line, raw in records]
    seen: dict[tuple[str, str, str, str], int] = {}
    for (line, _), row in zip(records, rows, strict=True):
        if row.key in seen:
            raise ValueError(
                f"price catalog {source}: row {line} repeats row {seen[row.key]} "
                f"({row.backend}, {row.service}, {row.region}, {row.instance_type})"
            )
        seen[row.key] = line
    return tuple(rows)


def _renamed_column(record: dict[str, str]) -> dict[str, str]:
    return {
        ("backend" if column == OLD_BACKEND_COLUMN else column): value for column, value in record.items()
    }


def _check_header(header: Sequence[str], source: str) -> None:
    missing = [c for c in COLUMNS if c not in header and c not in OPTIONAL_COLUMNS]
    if missing:
        raise ValueError(f"price catalog {source}: missing column(s) {', '.join(missing)}")
    unknown = [c for c in header if c not in COLUMNS]
    if unknown:
        raise ValueError(
            f"price catalog {source}: unknown column(s) {', '.join(map(repr, unknown))}; "
            f"known: {', '.join(COLUMNS)}"
        )


def declared_keys() -> list[str]:
    """The ``backend`` values a price row may have: the catalog keys of every declared pricing.

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
    """One ``PriceRow`` from a file's cells (text; an empty cell is a missing value).

    :param keys: the ``backend`` values allowed; default the catalog keys of every declared pricing.
    :raises ValueError: ``price catalog <source> row <line>: <column>: <problem>, got <value>`` for
        every bad cell.
    """
    known = declared_keys() if keys is None else keys
    try:
        return PriceRow.model_validate(raw, context={"keys": list(known)})
    except ValidationError as error:
        raise ValueError("; ".join(error_lines(error, source=f"price catalog {source} row {line}"))) from None


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
    text = catalog_csv([row for row in rows if row.backend not in settings])
    parse_catalog(text, source=target)  # never write what the loader would refuse
    return write_bytes_atomic(target, text.encode("utf-8"))


def max_price_age_seconds(value: Any = None) -> float:
    """Seconds a price may be old before quotes flag it stale: ``value`` (any duration: ``90d``,
    ``12w``, seconds), else ``$TRAINKIT_PRICE_MAX_AGE``, else the deprecated
    ``$TRAINKIT_PRICE_MAX_AGE_DAYS`` (days), else 90 days. Zero flags every price older than today.

    :raises ValueError: naming the setting and the value when it is not a duration.
    """
    if value is not None and value != "":
        return parse_duration(value, field="max_price_age", allow_zero=True)
    if os.environ.get(MAX_AGE_ENV):
        return parse_duration(os.environ[MAX_AGE_ENV], field=f"${MAX_AGE_ENV}", allow_zero=True)
    if os.environ.get(OLD_MAX_AGE_ENV):
        deprecated(f"${OLD_MAX_AGE_ENV} is deprecated; set ${MAX_AGE_ENV} to a duration (e.g. 90d)")
        return days_as_seconds(os.environ[OLD_MAX_AGE_ENV], field=f"${OLD_MAX_AGE_ENV}")
    return parse_duration(DEFAULT_MAX_PRICE_AGE)


def days_as_seconds(value: Any, *, field: str) -> float:
    """A deprecated whole number of days (``max_age_days``, ``max_age``) as seconds.

    :raises ValueError: naming ``field`` and the value when it is not a whole number of at least 0.
    """
    try:
        days = int(value)
    except (TypeError, ValueError):
        raise ValueError(f"{field} must be a whole number of days, got {value!r}") from None
    if days < 0:
        raise ValueError(f"{field} must be at least 0, got {value!r}")
    return days * DAY


def price_age_limit(max_price_age: Any, max_age_days: Any, *, owner: str, old: str = "max_age") -> float:
    """Seconds a price may be old: ``max_price_age`` (a duration), or the deprecated ``old`` in days.

    :raises ValueError: both given; or a value that is not a duration (or whole days).
    """
    if max_age_days is None or max_age_days == "":
        return max_price_age_seconds(max_price_age)
    if max_price_age is not None and max_price_age != "":
        raise ValueError(f"{owner}: pass max_price_age only ({old} is its deprecated name), got both")
    deprecated(
        f"{owner}({old}=...) is deprecated; use max_price_age=... (a duration such as '90d')", stacklevel=4
    )
    return days_as_seconds(max_age_days, field=old)


def max_age_days(value: int | float | str | None = None) -> int:
    """Deprecated: :func:`max_price_age_seconds` in whole days."""
    deprecated("max_age_days() is deprecated; use max_price_age_seconds(), which takes any duration")
    seconds = days_as_seconds(value, field="max_age_days") if value is not None else max_price_age_seconds()
    return int(seconds // DAY)


def age_text(seconds: float) -> str:
    """``7776000`` -> ``"90 days"``; a duration that is not whole days in the duration syntax (``12h``)."""
    from airflow_trainkit.durations import format_duration

    if seconds >= DAY and seconds % DAY == 0:
        return f"{int(seconds // DAY)} days"
    return format_duration(seconds) if seconds else "0 days"


def row_warnings(
    row: PriceRow, *, today: date, max_price_age: float | None = None, max_age: int | None = None
) -> list[str]:
    """Warnings every quote or cost that uses ``row`` carries: unverified, undated or stale price,
    retired size.

    :param max_price_age: seconds after which a dated price is stale (default :func:`max_price_age_seconds`).
    :param max_age: deprecated: the same in days.
    """
    if max_age is not None:
        deprecated("row_warnings(max_age=...) is deprecated; use max_price_age= (seconds)")
        max_price_age = days_as_seconds(max_age, field="max_age")
    limit = max_price_age_seconds() if max_price_age is None else max_price_age
    what = f"{row.backend} {row.instance_type} ({row.region})"
    warnings = []
    if row.provenance == "unverified":
        warnings.append(
            f"unverified price: no cited source gives {what} this figure ({row.note or row.source})"
        )
    warnings.extend(_age_warnings(row, today, limit))
    warnings.extend(_retirement_warnings(row, today))
    return warnings


def _age_warnings(row: PriceRow, today: date, limit: float) -> list[str]:
    age = row.age_days(today)
    if row.provenance == "settings":
        return []  # your own cost settings: their date is yours to keep
    if age is None:
        return [
            f"undated price: the {row.provenance} figure for {row.backend} {row.instance_type} ({row.region}) "
            "has no recoverable date; run `trainkit costs refresh` where the price APIs are reachable"
        ]
    if age * DAY > limit:
        return [
            f"stale price: {row.backend} {row.instance_type} is priced as of {row.as_of} "
            f"({age} days old, more than {age_text(limit)}); run `trainkit costs refresh`"
        ]
    return []


def _retirement_warnings(row: PriceRow, today: date) -> list[str]:
    if row.retired_after is None:
        return []
    if row.retired_on(today):
        return [f"retired size: {row.backend} {row.instance_type} was retired after {row.retired_after}"]
    return [f"retiring size: {row.backend} {row.instance_type} retires after {row.retired_after}"]


def weakest_provenance(rows: Iterable[PriceRow]) -> str:
    """The least sure provenance among ``rows`` (settings count as sure as published)."""
    order = {"settings": 0, **{name: i for i, name in enumerate(PROVENANCES[:4])}}
    return max((row.provenance for row in rows), key=lambda p: order.get(p, len(order)), default="unverified")


def replace_rows(current: Sequence[PriceRow], new: Sequence[PriceRow], keys: Iterable[str]) -> list[PriceRow]:
    """``current`` with every row of the catalog ``keys`` replaced by ``new``'s, kept in a stable order."""
    refreshed = set(keys)
    kept = [row for row in current if row.backend not in refreshed]
    return kept + list(new)


__all__ = [
    "COLUMNS",
    "KINDS",
    "PROVENANCES",
    "Catalog",
    "PriceRow",
    "catalog_csv",
    "catalog_location",
    "declared_keys",
    "load_catalog",
    "max_age_days",
    "max_price_age_seconds",
    "parse_catalog",
    "refreshed_catalog_path",
    "row_from_mapping",
    "row_warnings",
    "weakest_provenance",
    "write_catalog",
]
