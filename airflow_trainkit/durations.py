"""The one duration syntax of the package: plain seconds, or ``90s``, ``30m``, ``2h``, ``1d``, ``1w``
and their combinations (``1h30m``, ``1d 12h``).

Every duration a user writes (a training spec's ``max_runtime``, a contract's ``max_age``, a price's
age, an environment setting) goes through ``parse_duration``, so one spelling works everywhere.
This module imports nothing heavy: DAG files may use it at parse time.
"""

from __future__ import annotations

import math
import re
from datetime import timedelta
from typing import Annotated, Any

from pydantic import BeforeValidator

UNITS = {"w": 604800, "d": 86400, "h": 3600, "m": 60, "s": 1}
_PART = re.compile(r"\s*(\d+(?:\.\d+)?)\s*([wdhms])")
_NUMBER = re.compile(r"^\s*\d+(?:\.\d+)?\s*$")


def parse_duration(value: Any, *, field: str = "duration", allow_zero: bool = False) -> float:
    """Seconds in ``value``: a number of seconds, a ``timedelta``, or a string such as ``"90m"``,
    ``"1h30m"`` or ``"2d"`` (units ``w``, ``d``, ``h``, ``m``, ``s``; a bare number is seconds).

    :param field: the name the error message gives the value, e.g. ``spec.max_runtime``.
    :param allow_zero: accept zero (a setting that may be switched off); otherwise it must be positive.
    :raises ValueError: naming ``field`` and the value, for anything else.
    """
    try:
        return _seconds_in(value, allow_zero=allow_zero)
    except ValueError as problem:
        raise ValueError(f"{field} {problem}, got {value!r}") from None


def _seconds_in(value: Any, *, allow_zero: bool = False) -> float:
    if isinstance(value, bool):
        seconds = math.nan  # True is not one second
    elif isinstance(value, timedelta):
        seconds = value.total_seconds()
    elif isinstance(value, int | float):
        seconds = float(value)
    elif isinstance(value, str) and _NUMBER.match(value):
        seconds = float(value)
    elif isinstance(value, str):
        seconds = _from_units(value)
    else:
        seconds = math.nan
    if not math.isfinite(seconds):
        raise ValueError("must be seconds or a duration such as '90s', '30m', '2h', '1d' or '1h30m'")
    if seconds < 0 or (seconds == 0 and not allow_zero):
        raise ValueError("must be a positive duration")
    return seconds


def _from_units(text: str) -> float:
    """Seconds in ``"1d 2h30m"``; NaN when the text is not only such parts, each unit at most once, largest first."""
    position, seconds, seen = 0, 0.0, ""
    for match in _PART.finditer(text):
        unit = match.group(2)
        if match.start() != position or (seen and list(UNITS).index(unit) <= list(UNITS).index(seen[-1])):
            return math.nan
        seconds += float(match.group(1)) * UNITS[unit]
        position, seen = match.end(), seen + unit
    if not seen or text[position:].strip():
        return math.nan
    return seconds


def format_duration(seconds: float) -> str:
    """``5400`` -> ``"1h30m"``: the shortest spelling ``parse_duration`` reads back to the same seconds."""
    if seconds <= 0 or seconds != int(seconds):
        return f"{seconds:g}s"
    out, left = "", int(seconds)
    for unit, size in UNITS.items():
        if left >= size:
            out += f"{left // size}{unit}"
            left %= size
    return out


def _whole_seconds(value: Any) -> int:
    return int(round(_seconds_in(value)))


# For pydantic models: a field typed ``Seconds`` (or ``WholeSeconds``) takes any spelling above and
# holds the number of seconds. Pydantic adds the field's location to the message.
Seconds = Annotated[float, BeforeValidator(_seconds_in)]
WholeSeconds = Annotated[int, BeforeValidator(_whole_seconds)]
