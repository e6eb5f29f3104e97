"""The search space: which hyperparameters a search varies, and over what.

JSON in, so a DAG can write it as a plain, templated dict::

    {
        "max_depth": {"type": "int", "low": 3, "high": 10},
        "learning_rate": {"type": "float", "low": 0.01, "high": 0.3, "log": true},
        "subsample": {"type": "float", "low": 0.5, "high": 1.0, "step": 0.1},
        "grow_policy": {"type": "categorical", "choices": ["depthwise", "lossguide"]},
    }

A bare list is short for a categorical. Light on purpose (no Optuna import): a DAG builds and checks
one at parse time, and Optuna's distributions are made only when a search runs.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from optuna.distributions import BaseDistribution

KINDS = ("int", "float", "categorical")
# A grid over more points than this is a mistake, not a search (and would be written to XCom).
MAX_GRID_POINTS = 100_000


@dataclass(frozen=True)
class Dimension:
    """One hyperparameter's range: ``int`` or ``float`` from ``low`` to ``high`` (both included;
    ``log`` for a log scale, ``step`` for a grid of values), or ``categorical`` over ``choices``."""

    name: str
    kind: str
    low: float | None = None
    high: float | None = None
    log: bool = False
    step: float | None = None
    choices: tuple[Any, ...] = ()

    def distribution(self) -> BaseDistribution:
        """This dimension as Optuna's distribution (Optuna imported now)."""
        from optuna.distributions import (  # heavy: only when a search runs
            CategoricalDistribution,
            FloatDistribution,
            IntDistribution,
        )

        if self.kind == "categorical":
            return CategoricalDistribution(list(self.choices))
        if self.kind == "int":
            return IntDistribution(
                int(self.low or 0), int(self.high or 0), log=self.log, step=int(self.step or 1)
            )
        return FloatDistribution(float(self.low or 0), float(self.high or 0), log=self.log, step=self.step)

    def grid_values(self) -> list[Any]:
        """Every value of this dimension on a grid.

        :raises ValueError: a float range without a step (it has no finite grid).
        """
        if self.kind == "categorical":
            return list(self.choices)
        low, high = float(self.low or 0), float(self.high or 0)
        if self.kind == "float" and self.step is None:
            raise ValueError(
                f"search_space.{self.name}: the grid sampler needs a step on a float range, "
                f"got low={low:g}, high={high:g} and no step"
            )
        step = float(self.step or 1)
        count = int(math.floor((high - low) / step + 1e-9)) + 1
        values = [low + i * step for i in range(count)]
        if self.kind == "int":
            return [int(round(v)) for v in values]
        return [round(v, 12) for v in values]


@dataclass(frozen=True)
class SearchSpace:
    """The dimensions of one search, in the order given."""

    dimensions: tuple[Dimension, ...]

    @classmethod
    def parse(cls, value: Any) -> SearchSpace:
        """Build and check a space from a mapping or its JSON text.

        :raises ValueError: naming the dimension, the field and the value (``search_space.<name>.low``).
        """
        if isinstance(value, SearchSpace):
            return value
        if isinstance(value, str):
            try:
                value = json.loads(value)
            except json.JSONDecodeError as err:
                raise ValueError(f"search_space: not a JSON object ({err})") from None
        if not isinstance(value, Mapping):
            raise ValueError(f"search_space: expected a mapping of hyperparameter -> range, got {value!r}")
        if not value:
            raise ValueError("search_space: empty; name at least one hyperparameter to vary, got {}")
        return cls(tuple(_dimension(str(name), raw) for name, raw in value.items()))

    @property
    def names(self) -> list[str]:
        """The hyperparameters the search varies."""
        return [d.name for d in self.dimensions]

    def distributions(self) -> dict[str, BaseDistribution]:
        """Name -> Optuna distribution (Optuna imported now)."""
        return {d.name: d.distribution() for d in self.dimensions}

    def grid(self) -> dict[str, list[Any]]:
        """Name -> every value, for the grid sampler.

        :raises ValueError: a float range without a step, or a grid too large to search.
        """
        grid = {d.name: d.grid_values() for d in self.dimensions}
        if self.grid_size(grid) > MAX_GRID_POINTS:
            raise ValueError(
                f"search_space: the grid has {self.grid_size(grid)} points, more than {MAX_GRID_POINTS}; "
                "use larger steps or the tpe or random sampler"
            )
        return grid

    @staticmethod
    def grid_size(grid: Mapping[str, list[Any]]) -> int:
        """How many points a grid has."""
        return math.prod(len(values) for values in grid.values())


def _dimension(name: str, raw: Any) -> Dimension:
    where = f"search_space.{name}"
    if not name:
        raise ValueError("search_space: a hyperparameter name is empty")
    if isinstance(raw, list | tuple):
        raw = {"type": "categorical", "choices": list(raw)}
    if not isinstance(raw, Mapping):
        raise ValueError(
            f"{where}: expected {{'type': 'int'|'float'|'categorical', ...}} or a list of choices, got {raw!r}"
        )
    known = {"type", "low", "high", "log", "step", "choices"}
    unknown = sorted(set(raw) - known)
    if unknown:
        raise ValueError(f"{where}.{unknown[0]}: unknown key (known: {', '.join(sorted(known))})")
    kind = raw.get("type")
    if kind not in KINDS:
        raise ValueError(f"{where}.type: must be one of {', '.join(KINDS)}, got {kind!r}")
    if kind == "categorical":
        return _categorical(name, raw)
    return _range(name, kind, raw)


def _categorical(name: str, raw: Mapping[str, Any]) -> Dimension:
    where = f"search_space.{name}"
    extra = sorted(set(raw) - {"type", "choices"})
    if extra:
        raise ValueError(f"{where}.{extra[0]}: not used by a categorical (give choices only)")
    choices = raw.get("choices")
    if not isinstance(choices, list | tuple) or not choices:
        raise ValueError(f"{where}.choices: a non-empty list of values, got {choices!r}")
    for choice in choices:
        if not isinstance(choice, str | bool | int | float):
            raise ValueError(
                f"{where}.choices: each choice must be a string, number or boolean, got {choice!r}"
            )
    if len(set(map(json.dumps, choices))) != len(choices):
        raise ValueError(f"{where}.choices: a value is given twice, got {list(choices)!r}")
    return Dimension(name, "categorical", choices=tuple(choices))


def _range(name: str, kind: str, raw: Mapping[str, Any]) -> Dimension:
    where = f"search_space.{name}"
    if "choices" in raw:
        raise ValueError(f"{where}.choices: only a categorical has choices (this is {kind!r})")
    bounds = {key: _number(f"{where}.{key}", raw.get(key), kind) for key in ("low", "high")}
    low, high = bounds["low"], bounds["high"]
    if low > high:
        raise ValueError(f"{where}.high: must be at least low ({low:g}), got {high:g}")
    log = raw.get("log", False)
    if not isinstance(log, bool):
        raise ValueError(f"{where}.log: true or false, got {log!r}")
    if log and low <= 0:
        raise ValueError(f"{where}.low: a log scale needs low > 0, got {low:g}")
    step = raw.get("step")
    if step is not None:
        step = _number(f"{where}.step", step, kind)
        if step <= 0:
            raise ValueError(f"{where}.step: must be greater than 0, got {step:g}")
        if log:
            raise ValueError(f"{where}.step: a log scale cannot have a step, got {step:g}")
    return Dimension(name, kind, low=low, high=high, log=log, step=step)


def _number(field: str, value: Any, kind: str) -> float:
    if value is None:
        raise ValueError(f"{field}: required, missing")
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        raise ValueError(f"{field}: must be a finite number, got {value!r}")
    if kind == "int" and float(value) != int(value):
        raise ValueError(f"{field}: must be a whole number on an int range, got {value!r}")
    return float(value)
