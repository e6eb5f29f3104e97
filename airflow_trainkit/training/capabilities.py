"""What a backend can do with each spec field, declared as data instead of ``if`` branches in callers.

For every field a backend either supports it (the default), refuses it (a ``ValueError`` naming the
field, the value and the backend, before anything starts) or treats it as not applicable (a documented
no-op, logged once at submit). The same spec therefore runs on every backend whose capabilities accept
it, and the cost comparison can tell which backends would refuse a spec without importing any SDK.
Light (the spec model only): DAGs and the cost CLI import it.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from airflow_trainkit.training.spec import TrainingJobSpec


@dataclass(frozen=True)
class Capabilities:
    """One backend's declared capabilities.

    :param refused: spec field -> why the backend cannot honour a non-default value of it.
    :param not_applicable: spec field -> why a non-default value changes nothing on this backend.
    :param max_instance_count: most machines one job may use; ``None`` for no limit.
    :param instance_table: the provider key of the rows of the accelerator table this backend runs
        on (``training/accelerator_instances.csv``); a GPU request with no row there is refused.
        ``None`` for backends whose GPUs are not a table (on-prem: the host's own).
    """

    refused: Mapping[str, str] = field(default_factory=dict)
    not_applicable: Mapping[str, str] = field(default_factory=dict)
    max_instance_count: int | None = None
    instance_table: str | None = None

    def __post_init__(self) -> None:
        from airflow_trainkit.training.spec import TrainingJobSpec

        fields = set(TrainingJobSpec.model_fields)
        for kind in ("refused", "not_applicable"):
            unknown = sorted(set(getattr(self, kind)) - fields)
            if unknown:
                raise ValueError(f"capabilities.{kind}: unknown spec field(s) {', '.join(unknown)}")
        if self.max_instance_count is not None and self.max_instance_count < 1:
            raise ValueError(
                f"capabilities.max_instance_count must be at least 1, got {self.max_instance_count}"
            )

    def check(self, spec: TrainingJobSpec, backend: str) -> list[str]:
        """Refuse what ``backend`` cannot do with ``spec``; return one note per ignored field.

        :raises ValueError: ``spec.<field>: the <backend> backend <reason> (got <value>)``.
        """
        used = _non_default_fields(spec)
        for name, reason in self.refused.items():
            if name in used:
                raise ValueError(f"spec.{name}: the {backend} backend {reason} (got {used[name]!r})")
        if self.max_instance_count is not None and spec.instance_count > self.max_instance_count:
            raise ValueError(
                f"spec.instance_count: the {backend} backend runs at most {self.max_instance_count} "
                f"machine(s) per job (got {spec.instance_count})"
            )
        accelerator = spec.parsed_accelerator
        if self.instance_table and accelerator is not None and not spec.instance_type_for(backend):
            from airflow_trainkit.training.instances import instance_for

            try:
                instance_for(self.instance_table, accelerator)
            except ValueError as err:
                raise ValueError(f"spec.{err} (the {backend} backend)") from None
        return [
            f"spec.{name} is not applicable on the {backend} backend and is ignored: {reason}"
            for name, reason in self.not_applicable.items()
            if name in used
        ]

    def refusal(self, spec: TrainingJobSpec, backend: str) -> str | None:
        """Why ``backend`` would refuse ``spec``, or ``None`` when it accepts it."""
        try:
            self.check(spec, backend)
        except ValueError as err:
            return str(err)
        return None


def _non_default_fields(spec: TrainingJobSpec) -> dict[str, Any]:
    """The spec's fields that differ from their defaults, with their values."""
    used: dict[str, Any] = {}
    for name, info in type(spec).model_fields.items():
        if info.is_required():
            continue  # required fields (command) are always used
        value = getattr(spec, name)
        if value != info.get_default(call_default_factory=True):
            used[name] = value
    return used
