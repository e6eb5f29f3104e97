"""The base of every typed settings model (training spec, data contract, drift settings, price rows).

Models are pydantic v2 (installed with Airflow, already imported by any DAG parse, so free here):
strict types, unknown keys refused, and errors that keep saying what the hand-written validators
said: the field, the value and, for a YAML file, the file and line. Import nothing heavy here.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, TypeVar

from pydantic import BaseModel, ConfigDict, ValidationError
from pydantic_core import PydanticCustomError

Model = TypeVar("Model", bound=BaseModel)
KeyPath = tuple[Any, ...]


class StrictModel(BaseModel):
    """Strict types, unknown keys refused, immutable once built."""

    model_config = ConfigDict(extra="forbid", strict=True, frozen=True, validate_default=False)


def dotted(path: KeyPath, prefix: str = "") -> str:
    """``("columns", 2, "max")`` -> ``"columns[2].max"`` (after ``prefix.`` when given)."""
    out = prefix
    for part in path:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else str(part))
    return out


def error_lines(
    error: ValidationError,
    *,
    prefix: str = "",
    source: str | None = None,
    lines: Mapping[KeyPath, int] | None = None,
) -> list[str]:
    """One line per problem: ``[source:line: ]field: message, got value``.

    :param prefix: put before each field, e.g. ``spec`` for ``spec.max_runtime``.
    :param source: the file the data came from; ``lines`` maps key paths to its line numbers.
    """
    out = []
    for problem in error.errors(include_url=False):
        ctx = problem.get("ctx") or {}
        path = (*(part for part in problem["loc"] if not _is_union_tag(part)), *ctx.get("at", ()))
        where = ""
        if source is not None:
            line = _nearest_line(path, lines or {})
            where = f"{source}:{line}: " if line else f"{source}: "
        message = problem["msg"]
        if message.startswith("Value error, "):  # our own ValueError, already naming what it wants
            message = message[len("Value error, ") :]
        field = dotted(path, prefix) or prefix or "value"
        if problem["type"] == "extra_forbidden":
            out.append(f"{where}{field}: unknown key")
        elif problem["type"] == "missing":
            out.append(f"{where}{field}: required, missing")
        elif "at" in ctx or (not problem["loc"] and isinstance(problem["input"], Mapping)):
            # A model validator's problem: its input is the whole model, and showing it could
            # repeat a secret (a spec's env). The message names the field instead.
            out.append(f"{where}{field}: {message}")
        else:
            out.append(f"{where}{field}: {message}, got {problem['input']!r}")
    return out


def problem_at(at: KeyPath, message: str) -> PydanticCustomError:
    """The error a model validator raises about one of the model's keys rather than the whole model.

    ``at`` is the key path below the model (``("columns", 3, "name")``); the message then names that
    key and, for a YAML file, its line, and shows no value (the validator had the whole model).
    """
    return PydanticCustomError("trainkit", "{message}", {"message": message, "at": tuple(at)})


def build(
    model: type[Model],
    data: Any,
    *,
    prefix: str = "",
    source: str | None = None,
    lines: Mapping[KeyPath, int] | None = None,
) -> Model:
    """``model`` from ``data``; a ``ValueError`` listing every problem (see ``error_lines``) if invalid."""
    try:
        return model.model_validate(data)
    except ValidationError as error:
        raise ValueError("; ".join(error_lines(error, prefix=prefix, source=source, lines=lines))) from None


def _is_union_tag(part: Any) -> bool:
    # pydantic puts the tried member of a union into the location ("function-after[...]", "str", ...)
    return isinstance(part, str) and ("[" in part or part in {"str", "int", "float", "bool", "dict", "list"})


def _nearest_line(path: KeyPath, lines: Mapping[KeyPath, int]) -> int | None:
    for i in range(len(path), -1, -1):  # the key's own line, or the nearest enclosing one
        if path[:i] in lines:
            return lines[path[:i]]
    return None
