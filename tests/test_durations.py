"""The one duration syntax (airflow_trainkit.durations)."""

from __future__ import annotations

from datetime import timedelta

import pytest
from pydantic import BaseModel, ValidationError

from airflow_trainkit.durations import Seconds, WholeSeconds, format_duration, parse_duration


@pytest.mark.parametrize(
    ("text", "seconds"),
    [
        (90, 90),
        (1.5, 1.5),
        ("90", 90),
        ("2.5", 2.5),
        ("90s", 90),
        ("30m", 1800),
        ("2h", 7200),
        ("1d", 86400),
        ("1w", 604800),
        ("1h30m", 5400),
        ("1d 12h", 129600),
        ("1.5h", 5400),
        (" 2h ", 7200),
        (timedelta(minutes=3), 180),
    ],
)
def test_every_spelling_reads_as_seconds(text, seconds):
    assert parse_duration(text) == seconds


@pytest.mark.parametrize(
    "text", ["", "h", "2x", "30m1h", "1h1h", "1h 3", "-5m", True, None, [], float("inf")]
)
def test_anything_else_is_refused_naming_the_field_and_value(text):
    with pytest.raises(ValueError, match=r"^spec\.max_runtime must be .*, got ") as caught:
        parse_duration(text, field="spec.max_runtime")
    assert repr(text) in str(caught.value)


def test_zero_only_where_allowed():
    with pytest.raises(ValueError, match="positive"):
        parse_duration("0s")
    assert parse_duration("0", allow_zero=True) == 0


@pytest.mark.parametrize("seconds", [1, 59, 60, 5400, 86400 + 3661, 604800 * 2 + 1])
def test_format_reads_back(seconds):
    assert parse_duration(format_duration(seconds)) == seconds


def test_model_fields_take_the_same_syntax_and_name_the_field():
    class Settings(BaseModel):
        timeout: Seconds
        runtime: WholeSeconds

    settings = Settings(timeout="1m30s", runtime="1.5h")
    assert (settings.timeout, settings.runtime) == (90.0, 5400)
    with pytest.raises(ValidationError, match="runtime"):
        Settings(timeout=1, runtime="soon")
