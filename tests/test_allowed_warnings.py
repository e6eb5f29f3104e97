"""The warning policy holds: Airflow's deprecations fail a test, and every exception has its why and who."""

from __future__ import annotations

import warnings

import pytest
from allowed_warnings import ALLOWED, FAILING, filter_lines


def test_every_allowed_warning_says_why_and_who_and_comes_after_the_errors():
    for entry in ALLOWED:
        assert len(entry.reason.split()) >= 5 and entry.owner.strip(), entry
    lines = filter_lines()
    assert lines[: len(FAILING)] == [f"error::{category}" for category in FAILING]
    assert len(lines) == len(FAILING) + 1 + len(ALLOWED)


def test_an_airflow_deprecation_fails_the_test_that_raises_it():
    from airflow.exceptions import AirflowProviderDeprecationWarning

    with pytest.raises(AirflowProviderDeprecationWarning):
        warnings.warn("a deprecated provider call", AirflowProviderDeprecationWarning, stacklevel=1)


def test_our_own_deprecation_fails_a_test_that_did_not_ask_for_it():
    from airflow_trainkit import cli

    with pytest.raises(DeprecationWarning, match="--provider is deprecated"):
        cli.main(["costs", "catalog", "--provider", "azure_ml"])
