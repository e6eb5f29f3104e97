"""``TrainingJobSpec``: what to train and on what, the same for every backend.

The spec is JSON in and JSON out (``parse`` / ``to_dict``) so a DAG author can write it as a plain,
templated dict. Every check raises ``ValueError`` naming the field and the value it got.
"""

from __future__ import annotations

import dataclasses
import json
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

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
_DURATION = re.compile(
    r"^\s*(?:(?P<h>\d+(?:\.\d+)?)h)?\s*(?:(?P<m>\d+(?:\.\d+)?)m)?\s*(?:(?P<s>\d+(?:\.\d+)?)s)?\s*$"
)


@dataclass(frozen=True)
class Accelerator:
    """A request for ``count`` GPUs; ``model`` is ``None`` for "any GPU" (``"gpu:N"``)."""

    model: str | None
    count: int

    @classmethod
    def parse(cls, value: str | None) -> Accelerator | None:
        """``"gpu:1"``, ``"T4:1"``, ``"A100:8"``, ``"T4"`` (one) or ``None``/``"cpu"`` (no GPU)."""
        if value is None or str(value).strip().lower() in ("", "none", "cpu"):
            return None
        text = str(value).strip()
        name, _, count_text = text.partition(":")
        try:
            count = int(count_text) if count_text else 1
        except ValueError:
            raise ValueError(
                f"spec.accelerator: count in {value!r} must be a whole number, e.g. 'T4:1'"
            ) from None
        if count < 1:
            raise ValueError(f"spec.accelerator: count in {value!r} must be at least 1")
        if name.strip().lower() == "gpu":
            return cls(None, count)
        model = _GPU_LOOKUP.get(name.strip().upper())
        if model is None:
            raise ValueError(
                f"spec.accelerator: unknown accelerator {value!r}; use 'gpu:N' or one of {', '.join(KNOWN_GPUS)}"
            )
        return cls(model, count)

    def __str__(self) -> str:
        return f"{self.model or 'gpu'}:{self.count}"


@dataclass(frozen=True)
class TrainingJobSpec:
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
    :param max_runtime: seconds the job may run (default 24 hours); also ``timedelta`` or ``"1h30m"``.
    :param max_wait: seconds to wait for spot capacity plus runtime; at least ``max_runtime``.
    :param checkpoint_uri: where the job writes checkpoints to resume from after an interruption.
    :param tags: labels carried to the backend's job.
    :param options: backend-specific settings (e.g. a SageMaker role), checked by that backend.
    """

    command: list[str]
    image: str | None = None
    hyperparameters: dict[str, Any] = field(default_factory=dict)
    env: dict[str, str] = field(default_factory=dict)
    inputs: dict[str, str] = field(default_factory=dict)
    output_uri: str | None = None
    accelerator: str | None = None
    allow_cpu: bool = False
    instance_type: str | dict[str, str] | None = None
    instance_count: int = 1
    spot: bool = False
    allow_spot_without_checkpoint: bool = False
    max_runtime: int = DEFAULT_MAX_RUNTIME
    max_wait: int | None = None
    checkpoint_uri: str | None = None
    tags: dict[str, str] = field(default_factory=dict)
    options: dict[str, Any] = field(default_factory=dict)

    @classmethod
    def parse(cls, value: TrainingJobSpec | Mapping[str, Any] | str) -> TrainingJobSpec:
        """Build and check a spec from a spec, a mapping or a JSON string.

        :raises ValueError: naming the field and the value at the first problem found.
        """
        if isinstance(value, TrainingJobSpec):
            data: dict[str, Any] = value.to_dict()
        elif isinstance(value, str):
            try:
                data = json.loads(value)
            except json.JSONDecodeError as err:
                raise ValueError(f"spec: not a JSON object ({err})") from None
        elif isinstance(value, Mapping):
            data = dict(value)
        else:
            raise ValueError(f"spec: expected a TrainingJobSpec or a dict, got {type(value).__name__}")
        if not isinstance(data, dict):
            raise ValueError(f"spec: expected a JSON object, got {type(data).__name__}")
        known = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(data) - known)
        if unknown:
            raise ValueError(
                f"spec: unknown field(s) {', '.join(map(repr, unknown))}; known: {', '.join(sorted(known))}"
            )
        if "command" not in data:
            raise ValueError("spec.command is required: the program and its arguments, as a list of strings")
        return cls(**_checked(data))

    def to_dict(self) -> dict[str, Any]:
        """A JSON-serializable dict that ``parse`` turns back into an equal spec."""
        return dataclasses.asdict(self)

    @property
    def parsed_accelerator(self) -> Accelerator | None:
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


def parse_duration(name: str, value: Any) -> int:
    """Seconds from an int/float, a ``timedelta`` or a string like ``"90m"`` or ``"1h30m"``."""
    if isinstance(value, bool):
        raise ValueError(f"spec.{name} must be a number of seconds, got {value!r}")
    if isinstance(value, timedelta):
        seconds = value.total_seconds()
    elif isinstance(value, (int, float)):
        seconds = float(value)
    elif isinstance(value, str):
        stripped = value.strip()
        match = _DURATION.match(stripped)
        if stripped.replace(".", "", 1).lstrip("-").isdigit():
            seconds = float(stripped)
        elif match and any(match.groupdict().values()):
            parts = {k: float(v) for k, v in match.groupdict().items() if v}
            seconds = parts.get("h", 0) * 3600 + parts.get("m", 0) * 60 + parts.get("s", 0)
        else:
            raise ValueError(f"spec.{name} must be seconds or a duration like '2h' or '90m', got {value!r}")
    else:
        raise ValueError(f"spec.{name} must be a number of seconds, got {value!r}")
    if seconds <= 0:
        raise ValueError(f"spec.{name} must be positive, got {value!r}")
    return int(round(seconds))


def _str_map(name: str, value: Any, *, values_as_str: bool) -> dict[str, Any]:
    if value is None:
        return {}
    if not isinstance(value, Mapping):
        raise ValueError(f"spec.{name} must be a mapping, got {type(value).__name__}: {value!r}")
    out: dict[str, Any] = {}
    for key, item in value.items():
        if not isinstance(key, str) or not key:
            raise ValueError(f"spec.{name} keys must be non-empty strings, got {key!r}")
        if values_as_str and not isinstance(item, str):
            raise ValueError(f"spec.{name}[{key!r}] must be a string, got {item!r}")
        if not values_as_str and not isinstance(item, (str, int, float, bool)):
            raise ValueError(f"spec.{name}[{key!r}] must be a string, number or boolean, got {item!r}")
        out[key] = item
    return out


def _checked(data: dict[str, Any]) -> dict[str, Any]:
    out = dict(data)
    command = data["command"]
    if not isinstance(command, list) or not command or not all(isinstance(a, str) for a in command):
        raise ValueError(f"spec.command must be a non-empty list of strings, got {command!r}")
    for name in ("image", "output_uri", "checkpoint_uri", "accelerator"):
        if out.get(name) is not None and not isinstance(out[name], str):
            raise ValueError(f"spec.{name} must be a string, got {out[name]!r}")
    Accelerator.parse(out.get("accelerator"))
    out["hyperparameters"] = _str_map("hyperparameters", data.get("hyperparameters"), values_as_str=False)
    out["env"] = _str_map("env", data.get("env"), values_as_str=True)
    out["inputs"] = _str_map("inputs", data.get("inputs"), values_as_str=True)
    out["tags"] = _str_map("tags", data.get("tags"), values_as_str=True)
    options = data.get("options") or {}
    if not isinstance(options, Mapping):
        raise ValueError(f"spec.options must be a mapping, got {options!r}")
    out["options"] = dict(options)
    instance_type = data.get("instance_type")
    if instance_type is not None and not isinstance(instance_type, str):
        out["instance_type"] = _str_map("instance_type", instance_type, values_as_str=True)
    count = data.get("instance_count", 1)
    if isinstance(count, bool) or not isinstance(count, int) or count < 1:
        raise ValueError(f"spec.instance_count must be a whole number of at least 1, got {count!r}")
    for flag in ("spot", "allow_cpu", "allow_spot_without_checkpoint"):
        if not isinstance(data.get(flag, False), bool):
            raise ValueError(f"spec.{flag} must be true or false, got {data[flag]!r}")
    max_runtime = data.get("max_runtime")
    out["max_runtime"] = (
        DEFAULT_MAX_RUNTIME if max_runtime is None else parse_duration("max_runtime", max_runtime)
    )
    if data.get("max_wait") is not None:
        out["max_wait"] = parse_duration("max_wait", data["max_wait"])
        if out["max_wait"] < out["max_runtime"]:
            raise ValueError(
                f"spec.max_wait ({out['max_wait']} s) must be at least spec.max_runtime ({out['max_runtime']} s)"
            )
    if out.get("spot") and not out.get("checkpoint_uri") and not out.get("allow_spot_without_checkpoint"):
        raise ValueError(
            "spec.checkpoint_uri is required when spec.spot is true (got None): a spot job that is "
            "interrupted restarts from its last checkpoint; set allow_spot_without_checkpoint=true to opt out"
        )
    return out
