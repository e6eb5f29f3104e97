"""The statistics equal Evidently 0.7.23's stattests and scipy's on the same rows."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from scipy import stats

from airflow_trainkit.drift import methods


def _pair(n1, n2, seed=0, shift=0.0, decimals=None):
    rng = np.random.default_rng(seed)
    a, b = rng.normal(size=n1), rng.normal(shift, size=n2)
    if decimals is not None:  # ties
        a, b = np.round(a, decimals), np.round(b, decimals)
    return a, b


@pytest.mark.parametrize(
    ("n1", "n2", "shift", "decimals"),
    [
        (300, 500, 0.0, None),
        (8000, 9000, 0.05, 2),
        (20_000, 15_000, 0.0, 2),
        (250_000, 200_000, 0.02, None),
        (120_000, 120_000, 0.0, 1),
    ],
)
def test_ks_equals_scipy_exactly(n1, n2, shift, decimals):
    a, b = _pair(n1, n2, shift=shift, decimals=decimals)
    expected = stats.ks_2samp(a, b)
    got = methods.ks(np.sort(a), np.sort(b))
    assert got.statistic == expected.statistic
    assert got.value == expected.pvalue


@pytest.mark.parametrize("case", ["shared values", "few distinct values", "tiny shift"])
def test_ks_equals_scipy_where_only_some_points_are_evaluated(case):
    # From 16,384 rows a side KS evaluates the CDFs only in blocks that can hold the extremes.
    rng = np.random.default_rng(7)
    a, b = rng.normal(size=180_000), rng.normal(0.004, size=150_001)
    if case == "shared values":
        b[::2] = a[: b[::2].size]
    elif case == "few distinct values":
        a, b = rng.integers(0, 30, 180_000).astype(float), rng.integers(0, 31, 150_001).astype(float)
    expected = stats.ks_2samp(a, b)
    got = methods.ks(np.sort(a), np.sort(b))
    assert (got.statistic, got.value) == (expected.statistic, expected.pvalue)


def test_ks_equals_scipy_when_reference_and_current_swap_sizes():
    a, b = _pair(30_000, 11_000, shift=0.03, decimals=2)
    assert methods.ks(np.sort(b), np.sort(a)).value == stats.ks_2samp(b, a).pvalue


@pytest.fixture(scope="module")
def evidently_stattests():
    from evidently.legacy.calculations.stattests import chisquare_stattest, jensenshannon, ks_stattest, psi
    from evidently.legacy.calculations.stattests import wasserstein_distance_norm as wd
    from evidently.legacy.core import ColumnType

    return {
        "ks": (ks_stattest._ks_stat_test, ColumnType.Numerical),
        "chisquare": (chisquare_stattest._chi_stat_test, ColumnType.Categorical),
        "psi": (psi._psi, None),
        "jensenshannon": (jensenshannon._jensenshannon, None),
        "wasserstein": (wd._wasserstein_distance_norm, ColumnType.Numerical),
    }


@pytest.mark.parametrize("method", ["ks", "psi", "jensenshannon", "wasserstein"])
@pytest.mark.parametrize("decimals", [None, 0])  # continuous, and few distinct values (<= 20 bins path)
def test_numeric_methods_equal_evidently(evidently_stattests, method, decimals):
    from evidently.legacy.core import ColumnType

    a, b = _pair(40_000, 30_000, seed=3, shift=0.08, decimals=decimals)
    func, _ = evidently_stattests[method]
    threshold = methods.METHODS[method].default_threshold
    ev_value, ev_drift = func(pd.Series(a), pd.Series(b), ColumnType.Numerical, threshold)
    got = methods.compute(method, np.sort(a), np.sort(b))
    assert got.value == pytest.approx(ev_value, rel=1e-9, abs=1e-300)
    assert methods.METHODS[method].drifted(got.value, threshold) == bool(ev_drift)


@pytest.mark.parametrize("method", ["chisquare", "psi", "jensenshannon"])
def test_categorical_methods_equal_evidently(evidently_stattests, method):
    from evidently.legacy.core import ColumnType

    rng = np.random.default_rng(5)
    ref = pd.Series(rng.choice(["a", "b", "c", "d"], size=5000, p=[0.4, 0.3, 0.2, 0.1]))
    cur = pd.Series(rng.choice(["a", "b", "c", "e"], size=4000, p=[0.35, 0.3, 0.25, 0.1]))  # "e" is new
    func, _ = evidently_stattests[method]
    threshold = methods.METHODS[method].default_threshold
    ev_value, ev_drift = func(ref, cur, ColumnType.Categorical, threshold)
    counts = lambda s: {str(k): int(v) for k, v in s.value_counts().items()}  # noqa: E731
    got = methods.compute(method, counts(ref), counts(cur))
    assert got.value == pytest.approx(ev_value, rel=1e-9, abs=1e-300)
    assert methods.METHODS[method].drifted(got.value, threshold) == bool(ev_drift)


def test_chisquare_unchanged_shares_do_not_drift():
    ref = {"a": 500, "b": 300, "c": 200}
    cur = {"a": 1000, "b": 600, "c": 400}
    got = methods.chisquare(ref, cur)
    assert got.value == pytest.approx(1.0)
    assert got.effect == pytest.approx(0.0)


def test_benjamini_hochberg_matches_the_step_up_procedure():
    p = [0.001, 0.008, 0.039, 0.041, 0.042, 0.06, 0.074, 0.205, 0.212, 0.216]
    adjusted = methods.adjust_p_values(p, "bh")
    # Step-up at 0.05: the largest k with p_(k) <= k/m * 0.05 is k=2.
    assert [q <= 0.05 for q in adjusted] == [True, True] + [False] * 8
    assert methods.adjust_p_values(p, "bonferroni")[0] == pytest.approx(0.01)
    assert methods.adjust_p_values(p, "none") == p
    with pytest.raises(ValueError, match="correction"):
        methods.adjust_p_values(p, "holm")
