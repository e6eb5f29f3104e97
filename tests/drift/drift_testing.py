"""Helpers shared by the drift tests (importable, unlike conftest)."""

from __future__ import annotations

from pathlib import Path

EXAMPLE_DAGS = Path(__file__).resolve().parents[2] / "example_dags"


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
