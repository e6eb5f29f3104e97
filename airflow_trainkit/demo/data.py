"""A deterministic churn-like table, so the demo and the tests need no download.

Numeric and categorical features, a few percent of missing values, an imbalanced ``churned``
label (about 15 % positive) that depends on the features, and a ``drift`` knob that shifts
the ``DRIFT_COLUMNS`` by that many standard deviations, as a later week's data would.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import pandas as pd

TARGET = "churned"
NUMERIC_COLUMNS = ["tenure_months", "monthly_charges", "support_calls", "data_usage_gb", "age"]
CATEGORICAL_COLUMNS = ["contract", "payment_method", "region"]
# The features the drift knob moves; the others keep their distribution.
DRIFT_COLUMNS = ["monthly_charges", "support_calls", "data_usage_gb"]
CONTRACTS = ["month-to-month", "one-year", "two-year"]
PAYMENT_METHODS = ["card", "bank-transfer", "paper-check"]
REGIONS = ["north", "south", "east", "west"]


def make_churn_frame(
    rows: int = 5000, *, seed: int = 7, drift: float = 0.0, missing: float = 0.02
) -> pd.DataFrame:
    """Build the table.

    :param rows: number of customers.
    :param seed: the same seed gives the same table, row for row.
    :param drift: shift of each of ``DRIFT_COLUMNS``, in standard deviations of that column.
    :param missing: share of values blanked in the nullable columns.
    """
    import numpy as np  # heavy: only when a table is built
    import pandas as pd

    if rows <= 0:
        raise ValueError(f"rows must be positive, got {rows!r}")
    if not 0 <= missing < 1:
        raise ValueError(f"missing must be in [0, 1), got {missing!r}")
    rng = np.random.default_rng(seed)
    contract = rng.choice(CONTRACTS, size=rows, p=[0.55, 0.25, 0.20])
    tenure = rng.gamma(shape=2.0, scale=12.0, size=rows).clip(0, 120).round()
    charges = rng.normal(70.0, 20.0, size=rows).clip(15, 200)
    calls = rng.poisson(1.5, size=rows).astype(float)
    usage = rng.lognormal(mean=2.5, sigma=0.6, size=rows)
    age = rng.integers(18, 90, size=rows).astype(float)

    # The label depends on the undrifted features, so a drifted week also changes the churn rate.
    # Strong enough that a good model reaches the team guide's AUC-ROC >= 0.80 (about 0.89 at best).
    logit = -4.2 + 2.0 * (
        1.4 * (contract == "month-to-month")
        - 0.035 * tenure
        + 0.02 * (charges - 70)
        + 0.45 * calls
        - 0.01 * (age - 50)
    )
    churned = (rng.random(rows) < 1 / (1 + np.exp(-logit))).astype(int)

    if drift:
        charges = charges + drift * 20.0
        calls = calls + drift * np.sqrt(1.5)
        usage = usage * np.exp(drift * 0.6)

    frame = pd.DataFrame(
        {
            "customer_id": np.arange(1, rows + 1),
            "tenure_months": tenure,
            "monthly_charges": charges.round(2),
            "support_calls": calls,
            "data_usage_gb": usage.round(3),
            "age": age,
            "contract": contract,
            "payment_method": rng.choice(PAYMENT_METHODS, size=rows, p=[0.5, 0.35, 0.15]),
            "region": rng.choice(REGIONS, size=rows),
            TARGET: churned,
        }
    )
    for column in ("monthly_charges", "data_usage_gb", "payment_method"):
        frame.loc[rng.random(rows) < missing, column] = None
    return frame


def write_churn_dataset(path: str | Path, rows: int = 5000, *, seed: int = 7, drift: float = 0.0) -> Path:
    """Write the table to ``path`` (``.csv`` or ``.parquet``), atomically; returns the path."""
    import io

    from airflow_trainkit.storage import table_format, write_bytes_atomic

    path = Path(path)
    frame = make_churn_frame(rows, seed=seed, drift=drift)
    buffer = io.BytesIO()
    if table_format(str(path)) == "parquet":
        frame.to_parquet(buffer, index=False)
    else:
        frame.to_csv(buffer, index=False)
    write_bytes_atomic(str(path), buffer.getvalue())
    return path
