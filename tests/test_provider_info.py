"""The provider registers with Airflow and everything its metadata names exists."""

from __future__ import annotations

import importlib
import os
import subprocess
import sys
from importlib.metadata import entry_points

import pytest

from airflow_trainkit.get_provider_info import get_provider_info


def test_entry_point_returns_the_static_metadata():
    (ep,) = [
        ep for ep in entry_points(group="apache_airflow_provider") if ep.value.startswith("airflow_trainkit")
    ]
    assert ep.load()() == get_provider_info()
    assert get_provider_info()["package-name"] == "airflow-trainkit"


def test_every_module_class_and_link_named_in_the_metadata_exists():
    info = get_provider_info()
    for role in ("operators", "sensors", "triggers", "hooks"):
        for entry in info[role]:
            for module in entry["python-modules"]:
                importlib.import_module(module)
    for dotted in [c["hook-class-name"] for c in info["connection-types"]] + info["extra-links"]:
        module, _, name = dotted.rpartition(".")
        assert getattr(importlib.import_module(module), name)


def test_connection_types_are_our_own():
    for connection in get_provider_info()["connection-types"]:
        assert connection["connection-type"].startswith("trainkit_")


@pytest.mark.integration
def test_airflow_providers_list_shows_the_package():
    out = subprocess.run(
        [sys.executable, "-m", "airflow", "providers", "list"],
        capture_output=True,
        text=True,
        check=True,
        env={**os.environ},
    )
    assert "airflow-trainkit" in out.stdout
