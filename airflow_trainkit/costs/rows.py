"""A price row: one priced thing, with where its figure comes from; and the CSV cells it is read from.

The row is a strict settings model (:class:`~airflow_trainkit.config_model.StrictModel`). A price
file is text, so its cells are converted before the strict checks: an empty cell is a missing value,
numbers and dates are read from their text. The on-prem cost settings (:mod:`airflow_trainkit.costs.onprem`) use the same
cells. Light (pydantic and the stdlib): the CLI and DAGs import it at parse time.
"""

from __future__ import annotations

import csv
import io
import math
from collections.abc import Mapping
from datetime import date
from typing import Annotated, Any

from pydantic import BeforeValidator, Field, ValidationInfo, field_validator, model_validator

from airflow_trainkit.config_model import StrictModel
from airflow_trainkit.training.spec import KNOWN_GPUS
from airflow_trainkit.vocabulary import deprecated

KINDS = ("instance", "machine", "accelerator")
# How sure a figure is, surest first: a price page or API answer with its date; a dated third-party
# capture; computed from such figures by a rule stated in the row's note; no cited source. Rows made
# from your own cost settings (on-prem) are "settings".
PROVENANCES = ("published", "observed", "derived", "unverified", "settings")
# The columns of a price file, in the order a catalog is written.
COLUMNS = (
    "backend",
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


# --- cells: text as a price file holds it, converted before the strict checks ------------------------


def blank(value: Any) -> bool:
    """Whether a cell is empty (``None`` or only spaces): a missing value."""
    return value is None or (isinstance(value, str) and not value.strip())


def without_blanks(data: Any) -> Any:
    """A mapping without its empty cells (so defaults and "required" apply); anything else as given."""
    if isinstance(data, Mapping):
        return {key: value for key, value in data.items() if not blank(value)}
    return data


def csv_records(text: str, *, source: str) -> tuple[list[str], list[tuple[int, dict[str, str]]]]:
    """The header of CSV ``text`` and its records, each with its line in the file (the header is line 1).

    :raises ValueError: naming ``source`` and the row, for a row with more cells than the header.
    """
    reader = csv.DictReader(io.StringIO(text))
    header = list(reader.fieldnames or [])
    records = []
    for record in reader:
        # The record's (last) line: blank lines are skipped and a quoted cell may span lines.
        line = reader.line_num
        extra = record.pop(None, None)  # type: ignore[call-overload]
        if extra:
            raise ValueError(f"{source} row {line}: {len(extra)} more cell(s) than the header has columns")
        records.append((line, record))
    return header, records


def _text(value: Any) -> Any:
    return value.strip() if isinstance(value, str) else value


def number_cell(value: Any) -> Any:
    """A cell as a finite number of at least 0 (from its text, or a number)."""
    if isinstance(value, bool) or not isinstance(value, int | float | str):
        raise ValueError("must be a number")
    try:
        number = float(value)
    except ValueError:
        raise ValueError("not a number") from None
    if not math.isfinite(number) or number < 0:
        raise ValueError("must be a finite number of at least 0")
    return number


def _whole(value: Any) -> Any:
    """A cell as a whole number of at least 0 (``"4"`` and ``4.0`` are 4)."""
    number = number_cell(value)
    if number != int(number):
        raise ValueError("not a whole number")
    return int(number)


def _day(value: Any) -> Any:
    """A cell as a date: ``YYYY-MM-DD`` (a time after it is ignored), or a ``date``."""
    if isinstance(value, str):
        try:
            return date.fromisoformat(value.strip()[:10])
        except ValueError:
            raise ValueError("not a date (YYYY-MM-DD)") from None
    return value


def _gpu(value: Any) -> Any:
    """A GPU model by its name in ``KNOWN_GPUS``, in any letter case (``t4`` is ``T4``)."""
    if not isinstance(value, str):
        return value
    known = {gpu.upper(): gpu for gpu in KNOWN_GPUS}
    found = known.get(value.strip().upper())
    if found is None:
        raise ValueError(f"unknown GPU; known: {', '.join(KNOWN_GPUS)}")
    return found


def _currency(value: Any) -> Any:
    return value.strip().upper() if isinstance(value, str) else value


Text = Annotated[str, BeforeValidator(_text)]
Currency = Annotated[str, BeforeValidator(_currency)]
Number = Annotated[float, BeforeValidator(number_cell)]
Count = Annotated[int, BeforeValidator(_whole)]
Day = Annotated[date, BeforeValidator(_day)]
GpuModel = Annotated[str, BeforeValidator(_gpu)]


def one_of(choices: tuple[str, ...], what: str) -> Any:
    """A before-validator that accepts only ``choices`` (the message lists them)."""

    def check(value: Any) -> Any:
        value = _text(value)
        if value not in choices:
            raise ValueError(f"unknown {what}; known: {', '.join(choices)}")
        return value

    return BeforeValidator(check)


class CellsModel(StrictModel):
    """A strict model read from text cells: an empty cell is a missing value (defaults apply)."""

    @model_validator(mode="before")
    @classmethod
    def _cells(cls, data: Any) -> Any:
        return without_blanks(data)


# --- the row -----------------------------------------------------------------------------------------


class PriceRow(CellsModel):
    """One priced thing. ``kind`` is ``instance`` (a whole machine with its GPUs), or, for Vertex AI,
    ``machine`` (the machine type alone) or ``accelerator`` (one GPU of ``instance_type``, e.g.
    ``NVIDIA_TESLA_T4``), which a quote adds together.

    ``backend`` is the ``catalog_key`` of a declared pricing (the backend whose price this is).
    ``as_of`` is the day the figure was published or observed, ``None`` when no date can be recovered
    (then ``note`` describes the snapshot); ``provenance`` is one of :data:`PROVENANCES` and ``note``
    says how a derived figure was computed, or what an undated snapshot is.

    Validated with ``context={"keys": [...]}`` (as a price file is), ``backend`` must be one of those keys.
    """

    backend: Text
    service: Text
    region: Text
    kind: Annotated[str, one_of(KINDS, "kind")]
    instance_type: Text
    gpu_model: GpuModel | None = None
    # Checked against gpu_model, which is validated before it.
    gpu_count: Count = Field(default=0, validate_default=True)
    vcpus: Number | None = None
    memory_gib: Number | None = None
    on_demand_per_hour: Number
    spot_per_hour: Number | None = None
    currency: Currency
    note: Text = ""
    # Checked against note, which is validated before it: an undated figure says which snapshot it is.
    as_of: Day | None = Field(default=None, validate_default=True)
    source: Text
    retired_after: Day | None = None
    provenance: Annotated[str, one_of(PROVENANCES, "provenance")] = "unverified"

    @field_validator("backend")
    @classmethod
    def _declared(cls, value: str, info: ValidationInfo) -> str:
        keys = (info.context or {}).get("keys")
        if keys is not None and value not in keys:
            raise ValueError(
                "no installed backend or quote-only price source declares this key "
                f"(BackendPricing.catalog_key); known: {', '.join(keys)}"
            )
        return value

    @field_validator("gpu_count")
    @classmethod
    def _gpus_of_the_model(cls, value: int, info: ValidationInfo) -> int:
        if info.data.get("gpu_model") is not None and value < 1:
            raise ValueError("must be at least 1 when gpu_model is set")
        return value

    @field_validator("as_of")
    @classmethod
    def _dated_or_described(cls, value: date | None, info: ValidationInfo) -> date | None:
        if value is None and "note" in info.data and not info.data["note"]:
            raise ValueError(
                "empty; give the day the figure was published or observed, or say in column note "
                "which snapshot it comes from"
            )
        return value

    @property
    def key(self) -> tuple[str, str, str, str]:
        """What a price file may hold once: (backend, service, region, instance type)."""
        return (self.backend, self.service, self.region, self.instance_type)

    @property
    def provider(self) -> str:
        """Deprecated alias of :attr:`backend`."""
        deprecated("PriceRow.provider is deprecated; use PriceRow.backend", stacklevel=3)
        return self.backend

    def cited(self) -> dict[str, Any]:
        """The short form carried in quotes and actual costs (``provider`` repeats ``backend``, deprecated)."""
        return {
            "backend": self.backend,
            "service": self.service,
            "region": self.region,
            "instance_type": self.instance_type,
            "as_of": self.as_of.isoformat() if self.as_of else None,
            "source": self.source,
            "provenance": self.provenance,
            "note": self.note,
            "provider": self.backend,
        }

    def replaced(self, **changes: Any) -> PriceRow:
        """A copy with ``changes``, checked like a new row."""
        return PriceRow.model_validate({**self.model_dump(), **changes})

    def to_csv_row(self) -> dict[str, str]:
        """The row's cells, as a price file holds them."""
        out: dict[str, str] = {}
        for column in COLUMNS:
            value = getattr(self, column)
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
        """Whether the size is retired on ``today`` (after its ``retired_after`` day)."""
        return self.retired_after is not None and today > self.retired_after


__all__ = ["COLUMNS", "KINDS", "PROVENANCES", "PriceRow"]
