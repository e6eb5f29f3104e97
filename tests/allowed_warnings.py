"""Deprecation warnings from Airflow and its providers that the tests let pass, each with the reason
and who removes it. Any other such warning fails the test that raised it (``tests/conftest.py``
turns them into errors): a deprecated call in our code is found the day it lands, not the day
Airflow removes it.
"""

from __future__ import annotations

from dataclasses import dataclass

# The warning classes that fail a test unless listed below.
FAILING = (
    "airflow.exceptions.AirflowProviderDeprecationWarning",
    "airflow.exceptions.RemovedInAirflow4Warning",
    "airflow.utils.deprecation_tools.DeprecatedImportWarning",
    # Our own old spellings (airflow_trainkit.vocabulary): a test of the current API that trips one
    # is using the old one; a test that means to use it says so with pytest.warns.
    "airflow_trainkit.vocabulary.TrainkitDeprecationWarning",
)


@dataclass(frozen=True)
class Allowed:
    category: str  # the warning's class, dotted
    message: str  # a regular expression the start of the message matches
    reason: str  # why it cannot be fixed in our code now
    owner: str  # who removes the entry, and when


ALLOWED: list[Allowed] = []


# Our own deprecations, raised from our code (a test that means to use an old spelling says so
# with pytest.warns): a test of the current API that trips one is using the old one.
OURS = r"airflow_trainkit(\..*)?"


def filter_lines() -> list[str]:
    """``filterwarnings`` lines, in the order pytest applies them (the last match wins)."""
    errors = [f"error::{category}" for category in FAILING] + [f"error::DeprecationWarning:{OURS}"]
    allowed = [f"ignore:{entry.message}:{entry.category}" for entry in ALLOWED]
    return errors + allowed
