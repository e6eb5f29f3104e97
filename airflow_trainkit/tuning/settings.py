"""What a search is asked to do, checked before any trial starts: objective, trials, budget, sampler.

Light (pydantic only): the operator builds these in ``execute()``, after its fields are rendered.
"""

from __future__ import annotations

import math
import re
from typing import Any, Literal

from pydantic import Field, ValidationError, ValidationInfo, field_validator

from airflow_trainkit.config_model import StrictModel, error_lines
from airflow_trainkit.durations import parse_duration
from airflow_trainkit.tuning.space import SearchSpace

SAMPLERS = ("tpe", "random", "grid")
DIRECTIONS = ("maximize", "minimize")
# Pruning never judges a trial on its first few rounds, nor before this many trials have finished.
DEFAULT_WARMUP_ROUNDS = 5
DEFAULT_STARTUP_TRIALS = 2
_UNITS = re.compile(r"[a-zA-Z]")


def trial_hours_of(value: Any) -> float:
    """Hours in ``value``: a number of hours (as a quote's ``hours``) or a duration with units (``"20m"``).

    :raises ValueError: saying what is wrong (the caller names the field and the value).
    """
    if isinstance(value, str) and _UNITS.search(value):
        try:
            return parse_duration(value) / 3600.0
        except ValueError:
            raise ValueError("must be a number of hours or a duration such as '20m' or '1h30m'") from None
    if isinstance(value, bool) or not isinstance(value, int | float | str):
        raise ValueError("must be a number of hours or a duration such as '20m' or '1h30m'")
    try:
        hours = float(value)
    except ValueError:
        raise ValueError("must be a number of hours or a duration such as '20m' or '1h30m'") from None
    if not math.isfinite(hours) or hours <= 0:
        raise ValueError("must be a positive number of hours")
    return hours


class PruningSettings(StrictModel):
    """When a trial is stopped early: a median rule on a per-round metric the trainer writes.

    :param metric: a key of the trial's ``progress.json`` history, e.g. ``validation-auc``.
    :param direction: whether that metric is better high or low; default the search's direction.
    :param warmup_rounds: rounds a trial trains before it may be judged.
    :param startup_trials: trials that must have finished before any is judged.
    :param check_every: at least this long between two resumes of the task for a pruning decision
        (each costs a worker start); default three poll intervals.
    """

    metric: str = Field(min_length=1)
    direction: Literal["maximize", "minimize"] | None = None
    warmup_rounds: int = Field(default=DEFAULT_WARMUP_ROUNDS, ge=0)
    startup_trials: int = Field(default=DEFAULT_STARTUP_TRIALS, ge=0)
    check_every: float | None = None

    @field_validator("check_every", mode="before")
    @classmethod
    def _duration(cls, value: Any) -> Any:
        if value is None:
            return None
        try:
            return parse_duration(value, allow_zero=True)
        except ValueError:  # said again by the model's error, with the field and the value
            raise ValueError("must be a duration such as '30s' or '2m', or 0 for every poll") from None


class TuneSettings(StrictModel):
    """A search's inputs beyond the spec and the space; field names are the operator's parameters."""

    objective: str = Field(min_length=1)
    direction: Literal["maximize", "minimize"] = "maximize"
    n_trials: int = Field(ge=1)
    parallel: int = Field(default=1, ge=1)
    budget: float | None = None
    trial_hours: float | None = None
    sampler: Literal["tpe", "random", "grid"] = "tpe"
    seed: int | None = None
    pruning: PruningSettings | None = None

    def __init__(self, **data: Any) -> None:
        try:
            super().__init__(**data)
        except ValidationError as error:
            raise ValueError("; ".join(error_lines(error))) from None

    @field_validator("parallel")
    @classmethod
    def _not_above_trials(cls, value: int, info: ValidationInfo) -> int:
        n_trials = info.data.get("n_trials")
        if n_trials is not None and value > n_trials:
            raise ValueError(f"must not be above n_trials ({n_trials})")
        return value

    @field_validator("budget", mode="before")
    @classmethod
    def _positive_money(cls, value: Any) -> Any:
        if value is None:
            return None
        if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
            raise ValueError("must be an amount of money (a number)")
        if value <= 0:
            raise ValueError("must be greater than 0")
        return float(value)

    @field_validator("trial_hours", mode="before")
    @classmethod
    def _hours(cls, value: Any, info: ValidationInfo) -> Any:
        if value is None:
            if info.data.get("budget") is not None:
                raise ValueError(
                    "required when budget is set: each trial is quoted for trial_hours before it starts "
                    "(spec.max_runtime is a limit, not an estimate)"
                )
            return None
        return trial_hours_of(value)

    @classmethod
    def parse(cls, **values: Any) -> TuneSettings:
        """Build from the operator's rendered parameters; ``pruning`` may be a mapping or ``None``.

        ``trial_hours`` is checked after ``budget`` even when left out (the rule needs both).
        """
        values.setdefault("trial_hours", None)
        pruning = values.get("pruning")
        if pruning is not None and not isinstance(pruning, PruningSettings):
            if not isinstance(pruning, dict):
                raise ValueError(
                    f"pruning: a mapping such as {{'metric': 'validation-auc'}}, got {pruning!r}"
                )
            try:
                values["pruning"] = PruningSettings(**pruning)
            except ValidationError as error:
                raise ValueError("; ".join(error_lines(error, prefix="pruning"))) from None
        return cls(**values)

    def check_space(self, space: SearchSpace) -> int:
        """Check ``space`` against the sampler; return how many trials the search can run.

        A grid has finitely many points: ``n_trials`` above that runs the whole grid once.

        :raises ValueError: the grid sampler over a float range without a step (naming it).
        """
        if self.sampler != "grid":
            return self.n_trials
        return min(self.n_trials, SearchSpace.grid_size(space.grid()))

    @property
    def pruning_direction(self) -> str | None:
        """The direction of the pruning metric (the search's unless pruning says otherwise)."""
        if self.pruning is None:
            return None
        return self.pruning.direction or self.direction
