"""The words every operator shares: the failure policy of gate-like operators, and how a renamed
parameter or value keeps working for one release with a deprecation warning.

Light on purpose (no Airflow, no SDK): DAG files and the settings models import it at parse time.
"""

from __future__ import annotations

import enum
import warnings
from collections.abc import Mapping
from typing import Any


class TrainkitDeprecationWarning(DeprecationWarning):
    """A spelling airflow-trainkit still accepts for one release; the message names its replacement."""


class FailurePolicy(enum.StrEnum):
    """What a gate-like operator (validation, drift, promotion) does when its check does not pass.

    ``fail``: the task fails (after the report is stored). ``warn``: the task succeeds and logs a
    warning. ``skip``: the task is skipped, and so are the tasks downstream of it.
    """

    FAIL = "fail"
    WARN = "warn"
    SKIP = "skip"


def failure_policy(
    value: Any, *, field: str = "on_failure", old_spellings: Mapping[str, str] | None = None
) -> FailurePolicy:
    """``value`` as a ``FailurePolicy``; an old spelling in ``old_spellings`` is accepted with a warning.

    :raises ValueError: naming ``field`` and the value when it is none of them.
    """
    text = value.value if isinstance(value, FailurePolicy) else value
    if isinstance(text, str) and old_spellings and text in old_spellings:
        new = old_spellings[text]
        deprecated(f"{field}={text!r} is deprecated; use {field}={new!r}")
        text = new
    try:
        return FailurePolicy(text)
    except ValueError:
        words = ", ".join(repr(p.value) for p in FailurePolicy)
        raise ValueError(f"{field} must be one of {words}, got {value!r}") from None


def deprecated(message: str, *, stacklevel: int = 3) -> None:
    """Warn that a spelling is deprecated (it still works for one release)."""
    warnings.warn(message, TrainkitDeprecationWarning, stacklevel=stacklevel)


def renamed_parameter(
    owner: str, old: str, new: str, old_value: Any, new_value: Any, default: Any = None
) -> Any:
    """The value of parameter ``new``, taking the deprecated ``old`` one when only it was given.

    Call it in ``__init__`` with both values as passed; it warns when ``old`` is used and refuses
    both at once.

    :param owner: the class or function, for the messages (``"DriftCheckOperator"``).
    :param default: the value of ``new`` when it was not passed (to tell "not passed" from the default).
    """
    if old_value is None:
        return new_value
    if new_value is not default and new_value != default:
        raise ValueError(f"{owner}: pass {new} only ({old} is its deprecated name), got both")
    deprecated(f"{owner}({old}=...) is deprecated; use {new}=...", stacklevel=4)
    return old_value
