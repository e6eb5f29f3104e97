"""Which instance type carries which GPUs on each cloud: one shipped table, shared by backends and costs.

The table is ``accelerator_instances.csv`` next to this module (stdlib only, so a DAG may import it).
Vertex AI rows name a machine type plus an accelerator type and count, the way a Vertex job asks for them.
"""

from __future__ import annotations

import csv
import io
from dataclasses import dataclass
from functools import lru_cache
from importlib import resources

from airflow_trainkit.training.spec import KNOWN_GPUS, Accelerator

TABLE_FILE = "accelerator_instances.csv"
COLUMNS = ("provider", "gpu_model", "gpu_count", "instance_type", "accelerator_type", "accelerator_count")


@dataclass(frozen=True)
class InstanceChoice:
    """One instance type (for Vertex AI: machine type plus accelerators) with its GPUs."""

    provider: str
    instance_type: str
    gpu_model: str
    gpu_count: int
    accelerator_type: str | None = None
    accelerator_count: int | None = None

    @property
    def accelerator(self) -> str:
        """The spec form of the GPUs, e.g. ``"T4:1"``."""
        return f"{self.gpu_model}:{self.gpu_count}"


@lru_cache(maxsize=1)
def instance_table() -> tuple[InstanceChoice, ...]:
    """Every row of the shipped table, in file order (the first row of a count is the preferred one)."""
    text = resources.files("airflow_trainkit.training").joinpath(TABLE_FILE).read_text(encoding="utf-8")
    return parse_instance_table(text, source=TABLE_FILE)


def parse_instance_table(text: str, *, source: str) -> tuple[InstanceChoice, ...]:
    """Parse the table's CSV text.

    :raises ValueError: naming the file, row and column of the first bad value.
    """
    reader = csv.DictReader(io.StringIO(text))
    missing = [c for c in COLUMNS if c not in (reader.fieldnames or [])]
    if missing:
        raise ValueError(f"{source}: missing column(s) {', '.join(missing)}")
    rows: list[InstanceChoice] = []
    for line, raw in enumerate(reader, start=2):
        model = raw["gpu_model"].strip()
        if model not in KNOWN_GPUS:
            raise ValueError(f"{source}: row {line}, column gpu_model: unknown GPU {model!r}")
        counts: dict[str, int | None] = {}
        for column in ("gpu_count", "accelerator_count"):
            value = (raw[column] or "").strip()
            if not value and column == "accelerator_count":
                counts[column] = None
                continue
            try:
                counts[column] = int(value)
            except ValueError:
                raise ValueError(
                    f"{source}: row {line}, column {column}: not a whole number: {value!r}"
                ) from None
        gpu_count = counts["gpu_count"]
        if gpu_count is None or gpu_count < 1:
            raise ValueError(f"{source}: row {line}, column gpu_count: must be at least 1, got {gpu_count!r}")
        instance_type = raw["instance_type"].strip()
        provider = raw["provider"].strip()
        if not instance_type or not provider:
            raise ValueError(f"{source}: row {line}: provider and instance_type are required")
        rows.append(
            InstanceChoice(
                provider=provider,
                instance_type=instance_type,
                gpu_model=model,
                gpu_count=gpu_count,
                accelerator_type=(raw["accelerator_type"] or "").strip() or None,
                accelerator_count=counts["accelerator_count"],
            )
        )
    return tuple(rows)


def table_providers() -> tuple[str, ...]:
    """Providers that have rows in the table (the clouds; on-prem uses the worker's own GPUs)."""
    return tuple(dict.fromkeys(row.provider for row in instance_table()))


def instances_for(provider: str, accelerator: Accelerator | str) -> list[InstanceChoice]:
    """Every instance of ``provider`` with exactly the requested GPUs; any model for ``"gpu:N"``.

    :raises ValueError: ``provider`` has no rows in the table, or the accelerator is not valid.
    """
    acc = _accelerator(accelerator)
    if provider not in table_providers():
        raise ValueError(
            f"provider: {provider!r} has no instance table; known: {', '.join(table_providers())}"
        )
    return [
        row
        for row in instance_table()
        if row.provider == provider and row.gpu_count == acc.count and acc.model in (None, row.gpu_model)
    ]


def instance_for(provider: str, accelerator: Accelerator | str) -> InstanceChoice:
    """The instance ``provider`` uses for ``accelerator``, e.g. ``T4:1`` on SageMaker -> ``ml.g4dn.xlarge``.

    :raises ValueError: naming the accelerator and the provider when the provider has no such instance,
        with what the provider does offer for that GPU.
    """
    acc = _accelerator(accelerator)
    found = instances_for(provider, acc)
    if found:
        return found[0]
    offered = sorted(
        {
            row.accelerator
            for row in instance_table()
            if row.provider == provider and acc.model in (None, row.gpu_model)
        }
    )
    hint = (
        f"; {provider} offers {', '.join(offered)}"
        if offered
        else f"; {provider} offers no {acc.model or 'GPU'}"
    )
    raise ValueError(f"accelerator: no {provider} instance with {acc}{hint}")


def lookup_instance(provider: str, instance_type: str) -> InstanceChoice | None:
    """The table row of ``instance_type`` on ``provider`` (first match for a Vertex machine type), or ``None``."""
    for row in instance_table():
        if row.provider == provider and row.instance_type == instance_type:
            return row
    return None


def _accelerator(value: Accelerator | str) -> Accelerator:
    if isinstance(value, Accelerator):
        return value
    parsed = Accelerator.parse(value)
    if parsed is None:
        raise ValueError(f"accelerator: {value!r} asks for no GPU; instance tables only map GPUs")
    return parsed
