"""``TrainingJobSpec``: what to train and on what, the same for every backend.

The spec is JSON in and JSON out (``parse`` / ``to_dict``) so a DAG author can write it as a plain,
templated dict. It is a strict pydantic model (``config_model.StrictModel``): unknown keys and
wrong types are refused with a ``ValueError`` that names the field (``spec.<field>``) and the value.
Light on purpose: DAG files import it at parse time.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Annotated, Any

from pydantic import (
    Field,
    PlainValidator,
    StringConstraints,
    ValidationError,
    ValidationInfo,
    field_validator,
)

from airflow_trainkit.config_model import StrictModel, error_lines
from airflow_trainkit.durations import WholeSeconds

DEFAULT_MAX_RUNTIME = 24 * 3600  # seconds; SageMaker's own default for MaxRuntimeInSeconds

# GPU models a spec may name. Which instance carries each one is each backend's (and the cost
# catalog's) business; this list only decides which names are valid at all.
KNOWN_GPUS = (
    "K80",
    "P4",
    "P100",
    "T4",
    "V100",
    "A10",
    "A10G",
    "L4",
    "L40S",
    "A100",
    "A100-80GB",
    "H100",
    "H200",
)
_GPU_LOOKUP = {name.upper(): name for name in KNOWN_GPUS}


@dataclass(frozen=True)
class Accelerator:
    """A request for ``count`` GPUs; ``model`` is ``None`` for "any GPU" (``"gpu:N"``)."""

    model: str | None
    count: int

    @classmethod
    def parse(cls, value: str | None) -> Accelerator | None:
        """``"gpu:1"``, ``"T4:1"``, ``"A100:8"``, ``"T4"`` (one) or ``None``/``"cpu"`` (no GPU).

        :raises ValueError: ``spec.accelerator: ...`` naming the value.
        """
        try:
            return cls._read(value)
        except ValueError as problem:
            raise ValueError(f"spec.accelerator: {problem}") from None

    @classmethod
    def _read(cls, value: str | None) -> Accelerator | None:
        """The request in ``value``; a ``ValueError`` saying what is wrong with it."""
        if value is None or str(value).strip().lower() in ("", "none", "cpu"):
            return None
        name, _, count_text = str(value).strip().partition(":")
        if count_text and not count_text.strip().isdigit():
            raise ValueError(f"count in {value!r} must be a whole number, e.g. 'T4:1'")
        count = int(count_text) if count_text else 1
        if count < 1:
            raise ValueError(f"count in {value!r} must be at least 1")
        if name.strip().lower() == "gpu":
            return cls(None, count)
        model = _GPU_LOOKUP.get(name.strip().upper())
        if model is None:
            raise ValueError(f"unknown accelerator {value!r} (use 'gpu:N' or one of {', '.join(KNOWN_GPUS)})")
        return cls(model, count)

    def __str__(self) -> str:
        return f"{self.model or 'gpu'}:{self.count}"


def _scalar(value: Any) -> str | bool | int | float:
    if isinstance(value, str | bool | int | float):
        return value
    raise ValueError("must be a string, number or boolean")


Key = Annotated[str, StringConstraints(min_length=1)]
# A hyperparameter value: one message for the four JSON scalars instead of one per type.
Scalar = Annotated[str | bool | int | float, PlainValidator(_scalar)]

# Fields a templated spec may leave empty (``None``): read as their default.
_MAPPINGS = ("hyperparameters", "env", "inputs", "tags", "options")


class TrainingJobSpec(StrictModel):
    """What a training job runs and what it needs.

    :param command: the program and its arguments, as a list of strings.
    :param image: container image, for backends that run containers (the on-prem backend ignores it).
    :param hyperparameters: passed to the job; each backend hands them over in its own way.
    :param env: environment variables for the job.
    :param inputs: channel name -> URI of the data (``train``, ``validation``, ...).
    :param output_uri: where the job writes its model and ``metrics.json``.
    :param accelerator: ``"gpu:1"``, ``"T4:1"``, ``"A100:8"``, or ``None`` for CPU only.
    :param allow_cpu: run on CPU when the host has no GPU instead of failing.
    :param instance_type: explicit instance type, either one string or a mapping backend -> type.
    :param instance_count: number of machines.
    :param spot: run on spot / low-priority capacity. Needs ``checkpoint_uri`` unless
        ``allow_spot_without_checkpoint`` is set.
    :param max_runtime: how long the job may run (default 24 hours): seconds, a ``timedelta``, or a
        duration such as ``"90m"``, ``"1h30m"`` or ``"1d"``; held as whole seconds.
    :param max_wait: how long to wait for spot capacity plus the runtime, in the same spellings; at
        least ``max_runtime``.
    :param checkpoint_uri: where the job writes checkpoints to resume from after an interruption.
    :param tags: labels carried to the backend's job.
    :param options: backend-specific settings (e.g. a SageMaker role), checked by that backend.
    """

    command: list[str] = Field(min_length=1)
    image: str | None = None
    hyperparameters: dict[Key, Scalar] = Field(default_factory=dict)
    env: dict[Key, str] = Field(default_factory=dict)
    inputs: dict[Key, str] = Field(default_factory=dict)
    output_uri: str | None = None
    accelerator: str | None = None
    allow_cpu: bool = False
    instance_type: str | dict[Key, str] | None = None
    instance_count: int = Field(default=1, ge=1)
    spot: bool = False
    allow_spot_without_checkpoint: bool = False
    max_runtime: WholeSeconds = DEFAULT_MAX_RUNTIME
    max_wait: WholeSeconds | None = None
    # Checked even when left out: a spot job needs one (after spot and its opt-out, which it reads).
    checkpoint_uri: str | None = Field(default=None, validate_default=True)
    tags: dict[Key, str] = Field(default_factory=dict)
    options: dict[str, Any] = Field(default_factory=dict)

    def __init__(self, **data: Any) -> None:
        """Build and check a spec; a ``ValueError`` lists every problem (``config_model.error_lines``).

        Pydantic's ``model_validate`` comes through here too, with this error wrapped in its own:
        use ``parse``.
        """
        try:
            super().__init__(**data)
        except ValidationError as error:
            raise ValueError("; ".join(error_lines(error, prefix="spec"))) from None

    @classmethod
    def parse(cls, value: TrainingJobSpec | Mapping[str, Any] | str) -> TrainingJobSpec:
        """Build and check a spec from a spec, a mapping or a JSON string.

        :raises ValueError: naming every field that is wrong, with its value.
        """
        if isinstance(value, TrainingJobSpec):
            return value
        if isinstance(value, str):
            try:
                value = json.loads(value)
            except json.JSONDecodeError as err:
                raise ValueError(f"spec: not a JSON object ({err})") from None
        if not isinstance(value, Mapping):
            raise ValueError(f"spec: expected a TrainingJobSpec or a JSON object, got {type(value).__name__}")
        odd = [key for key in value if not isinstance(key, str)]
        if odd:
            raise ValueError(f"spec.{odd[0]!r}: unknown key")
        return cls(**value)

    def to_dict(self) -> dict[str, Any]:
        """A JSON-serializable dict that ``parse`` turns back into an equal spec."""
        return self.model_dump(mode="json")

    @property
    def parsed_accelerator(self) -> Accelerator | None:
        """The ``accelerator`` request as an :class:`Accelerator`; ``None`` for CPU only."""
        return Accelerator.parse(self.accelerator)

    def instance_type_for(self, backend: str) -> str | None:
        """The instance type the user chose for ``backend``, if any."""
        if isinstance(self.instance_type, Mapping):
            return self.instance_type.get(backend)
        return self.instance_type

    @property
    def deadline_seconds(self) -> int:
        """Longest the job may take end to end: max wait for spot, else max runtime."""
        return max(self.max_runtime, self.max_wait or 0)

    # -- rules beyond each field's type ------------------------------------------------------------
    # Field validators that read the fields before them (``info.data``) rather than one validator on
    # the whole model: the error then names the field and its value, never the whole spec (its env).

    @field_validator(*_MAPPINGS, mode="before")
    @classmethod
    def _none_is_empty(cls, value: Any) -> Any:
        return {} if value is None else value

    @field_validator("max_runtime", mode="before")
    @classmethod
    def _none_is_the_default_runtime(cls, value: Any) -> Any:
        return DEFAULT_MAX_RUNTIME if value is None else value

    @field_validator("accelerator")
    @classmethod
    def _known_accelerator(cls, value: str | None) -> str | None:
        Accelerator._read(value)
        return value

    @field_validator("max_wait")
    @classmethod
    def _wait_covers_the_runtime(cls, value: int | None, info: ValidationInfo) -> int | None:
        runtime = info.data.get("max_runtime")
        if value is not None and runtime is not None and value < runtime:
            raise ValueError(f"{value} s must be at least spec.max_runtime ({runtime} s)")
        return value

    @field_validator("checkpoint_uri")
    @classmethod
    def _spot_has_a_checkpoint(cls, value: str | None, info: ValidationInfo) -> str | None:
        if not value and info.data.get("spot") and not info.data.get("allow_spot_without_checkpoint"):
            raise ValueError(
                "required when spec.spot is true (an interrupted spot job restarts from its last "
                "checkpoint), unless spec.allow_spot_without_checkpoint is true"
            )
        return value
