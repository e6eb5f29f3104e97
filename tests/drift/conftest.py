"""Fixtures for the drift tests: each test gets its own trainkit home."""

from __future__ import annotations

import pytest


@pytest.fixture(autouse=True)
def trainkit_home(tmp_path, monkeypatch):
    """Every test gets its own trainkit home (profile cache, reports, demo data)."""
    home = tmp_path / "trainkit-home"
    monkeypatch.setenv("TRAINKIT_HOME", str(home))
    return home
