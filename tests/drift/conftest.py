"""Fixtures for the drift tests: real frames with chosen shifts, and an Airflow home for dag.test()."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

import pytest

EXAMPLE_DAGS = Path(__file__).resolve().parents[2] / "example_dags"

# Airflow reads its configuration once, at first import: set what dag.test() needs before that.
# (The lead's top-level conftest will provide a shared Airflow home; these are only defaults.)
os.environ.setdefault("AIRFLOW_HOME", tempfile.mkdtemp(prefix="trainkit-drift-airflow-"))
os.environ.setdefault("AIRFLOW__CORE__DAGS_FOLDER", str(EXAMPLE_DAGS))
os.environ.setdefault("AIRFLOW__CORE__LOAD_EXAMPLES", "False")
os.environ.setdefault("AIRFLOW__CORE__UNIT_TEST_MODE", "True")


def make_frame(rows: int, *, numeric: int = 10, seed: int = 0, shift: dict[str, float] | None = None):
    """``rows`` x ``numeric`` normal columns ``x0..`` plus categorical ``cat`` and ``city``; ``shift``
    moves numeric columns by that many standard deviations, or ``cat``'s shares by that amount."""
    import numpy as np
    import pandas as pd

    rng = np.random.default_rng(seed)
    shift = shift or {}
    data = {f"x{i}": rng.normal(0.0, 1.0, rows) + shift.get(f"x{i}", 0.0) for i in range(numeric)}
    p_a = 0.5 + shift.get("cat", 0.0)
    data["cat"] = rng.choice(["a", "b", "c"], size=rows, p=[p_a, 0.3, 0.2 - shift.get("cat", 0.0)])
    data["city"] = rng.choice(["oslo", "lima", "pune", "kobe"], size=rows)
    return pd.DataFrame(data)


@pytest.fixture(autouse=True)
def trainkit_home(tmp_path, monkeypatch):
    """Every test gets its own trainkit home (profile cache, reports, demo data)."""
    home = tmp_path / "trainkit-home"
    monkeypatch.setenv("TRAINKIT_HOME", str(home))
    return home


@pytest.fixture(scope="session")
def airflow_db():
    """A migrated metadata database in this session's AIRFLOW_HOME."""
    from airflow.utils.db import resetdb

    resetdb(skip_init=False)
    return os.environ["AIRFLOW_HOME"]
