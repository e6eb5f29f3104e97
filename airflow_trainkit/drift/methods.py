"""Drift statistics on prepared columns, equal to Evidently 0.7.23's stattests and scipy on the same rows.

Numeric columns arrive as sorted arrays of their finite values (Evidently drops NaN and +-inf before
testing); categorical columns as value counts. Sorted arrays let KS find its statistic by
evaluating the CDFs where the maximum can be, not at every point, and let a cached reference skip
its sort.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np

if TYPE_CHECKING:
    from collections.abc import Mapping

# scipy's ks_2samp(method="auto") is exact up to this many rows on either side, asymptotic above.
_SCIPY_KS_MAX_AUTO_N = 10000


@dataclass(frozen=True)
class Method:
    """One drift method with Evidently's semantics.

    :param kind: ``"p_value"`` (drift when the p-value is below the threshold) or ``"distance"``
        (drift when the distance reaches the threshold).
    :param strict: for p-value methods, Evidently's KS flags ``p <= threshold`` and chi-square
        ``p < threshold``; ``strict`` is True for the latter.
    """

    name: str
    kind: str
    default_threshold: float
    numeric: bool
    categorical: bool
    strict: bool = False

    def drifted(self, value: float, threshold: float) -> bool:
        """Evidently's decision for one column from its p-value or distance."""
        if self.kind == "p_value":
            return bool(value < threshold) if self.strict else bool(value <= threshold)
        return bool(value >= threshold)


METHODS: dict[str, Method] = {
    "ks": Method("ks", "p_value", 0.05, numeric=True, categorical=False),
    "chisquare": Method("chisquare", "p_value", 0.05, numeric=False, categorical=True, strict=True),
    "psi": Method("psi", "distance", 0.1, numeric=True, categorical=True),
    "wasserstein": Method("wasserstein", "distance", 0.1, numeric=True, categorical=False),
    "jensenshannon": Method("jensenshannon", "distance", 0.1, numeric=True, categorical=True),
}


@dataclass(frozen=True)
class Statistic:
    """What a method measured on one column.

    :param value: the p-value for p-value methods, the distance otherwise (what the threshold applies to).
    :param statistic: the test statistic (KS D, chi-square) or the distance again.
    :param effect: an effect size on a 0..1 scale that does not grow with the row count: KS D, or
        the total variation distance between category shares for chi-square; the distance for the others.
    """

    value: float
    statistic: float
    effect: float


def ks(reference: np.ndarray, current: np.ndarray) -> Statistic:
    """Two-sided two-sample KS test; equals ``scipy.stats.ks_2samp(reference, current)``.

    Both arrays must be sorted and hold no NaN. Up to 10,000 rows a side scipy's exact p-value is
    used (scipy itself, cheap at that size); above it the statistic is computed here and the
    p-value with scipy's own asymptotic formula, as ``ks_2samp(method="auto")`` does.
    """
    from scipy import stats  # heavy: only when a test runs

    n1, n2 = reference.shape[0], current.shape[0]
    if min(n1, n2) == 0:
        raise ValueError("KS needs at least one value on each side")
    if max(n1, n2) <= _SCIPY_KS_MAX_AUTO_N:
        result = stats.ks_2samp(reference, current)
        return Statistic(float(result.pvalue), float(result.statistic), float(result.statistic))
    max_s, min_d = _cdf_extremes(reference, current)
    min_s = float(np.clip(-min_d, 0, 1))
    d = min_s if min_s > max_s else max_s
    m, n = sorted([float(n1), float(n2)], reverse=True)
    en = m * n / (m + n)
    p = float(np.clip(stats.distributions.kstwo.sf(d, np.round(en)), 0, 1))
    return Statistic(p, d, d)


def _cdf_extremes(reference: np.ndarray, current: np.ndarray) -> tuple[float, float]:
    """Max and min of ``F_ref(x) - F_cur(x)`` over every value ``x`` of both samples.

    scipy evaluates both CDFs at every point (``searchsorted`` of the concatenated data into each
    sample). Here the CDFs are first read on a grid of every ``step``-th reference value; between
    two grid values each CDF only grows, so the grid bounds what any point in that block can reach.
    Only blocks whose bound beats the extremes already seen are evaluated point by point, with
    scipy's own ``searchsorted`` counts, so the result is the same float. Unchanged columns leave
    about 1 % of the points to evaluate; a pathological pair falls back to every point.
    """
    n1, n2 = reference.shape[0], current.shape[0]
    step = int(np.sqrt(min(n1, n2)) / 16)
    if step < 8:
        return _extremes_at(reference, current, np.concatenate([reference, current]))
    grid = reference[step - 1 :: step]
    # Counts at the block edges: block k holds the values in (edge k, edge k+1].
    c1 = np.concatenate([[0], np.searchsorted(reference, grid, "right"), [n1]])
    c2 = np.concatenate([[0], np.searchsorted(current, grid, "right"), [n2]])
    at_grid = c1 / n1 - c2 / n2  # exact values: every grid value is a reference value
    best_max, best_min = float(at_grid.max()), float(at_grid.min())
    upper = c1[1:] / n1 - c2[:-1] / n2
    lower = c1[:-1] / n1 - c2[1:] / n2
    blocks = np.flatnonzero((upper > best_max) | (lower < best_min))
    if int((c1[blocks + 1] - c1[blocks]).sum() + (c2[blocks + 1] - c2[blocks]).sum()) > (n1 + n2) // 4:
        return _extremes_at(reference, current, np.concatenate([reference, current]))
    points = np.concatenate(
        [
            _ranges(reference, c1[blocks], c1[blocks + 1]),
            _ranges(current, c2[blocks], c2[blocks + 1]),
        ]
    )
    if points.size == 0:
        return best_max, best_min
    high, low = _extremes_at(reference, current, points)
    return max(best_max, high), min(best_min, low)


def _extremes_at(reference: np.ndarray, current: np.ndarray, points: np.ndarray) -> tuple[float, float]:
    """Max and min of ``F_ref - F_cur`` at ``points``, computed exactly as scipy's ``ks_2samp`` does."""
    diff = np.searchsorted(reference, points, "right") / reference.shape[0]
    diff -= np.searchsorted(current, points, "right") / current.shape[0]
    return float(diff.max()), float(diff.min())


def _ranges(values: np.ndarray, starts: np.ndarray, stops: np.ndarray) -> np.ndarray:
    """``values[starts[0]:stops[0]]``, ``values[starts[1]:stops[1]]``, ... concatenated."""
    lengths = stops - starts
    total = int(lengths.sum())
    if total == 0:
        return values[:0]
    offsets = np.repeat(starts - (np.cumsum(lengths) - lengths), lengths)
    return values[np.arange(total) + offsets]


def wasserstein(reference: np.ndarray, current: np.ndarray) -> Statistic:
    """Wasserstein distance normed by the reference's standard deviation (Evidently's ``wasserstein``)."""
    from scipy import stats  # heavy: only when a test runs

    norm = max(float(np.std(reference)), 0.001)
    value = float(stats.wasserstein_distance(reference, current)) / norm
    return Statistic(value, value, value)


def chisquare(reference: Mapping[Any, int], current: Mapping[Any, int]) -> Statistic:
    """Chi-square goodness of fit of current counts against reference shares (Evidently's ``chisquare``)."""
    from scipy import stats  # heavy: only when a test runs

    keys = list(set(reference) | set(current))
    n_ref = sum(reference.values())
    n_cur = sum(current.values())
    if n_ref == 0 or n_cur == 0:
        raise ValueError("chi-square needs at least one value on each side")
    k_norm = n_cur / n_ref
    f_exp = [reference.get(key, 0) * k_norm for key in keys]
    f_obs = [current.get(key, 0) for key in keys]
    with np.errstate(divide="ignore", invalid="ignore"):
        result = stats.chisquare(f_obs, f_exp)
    tvd = 0.5 * sum(abs(reference.get(k, 0) / n_ref - current.get(k, 0) / n_cur) for k in keys)
    return Statistic(float(result.pvalue), float(result.statistic), float(tvd))


def psi(reference: np.ndarray | Mapping[Any, int], current: np.ndarray | Mapping[Any, int]) -> Statistic:
    """Population stability index on Evidently's bins (30-quantile wording aside: Sturges bins)."""
    ref_pct, cur_pct = binned_shares(reference, current, fill_zeroes=True)
    value = float(np.sum((ref_pct - cur_pct) * np.log(ref_pct / cur_pct)))
    return Statistic(value, value, value)


def jensenshannon(
    reference: np.ndarray | Mapping[Any, int], current: np.ndarray | Mapping[Any, int]
) -> Statistic:
    """Jensen-Shannon distance (natural log) on Evidently's bins."""
    from scipy.spatial import distance  # heavy: only when a test runs

    ref_pct, cur_pct = binned_shares(reference, current, fill_zeroes=False)
    value = float(distance.jensenshannon(ref_pct, cur_pct))
    return Statistic(value, value, value)


def binned_shares(
    reference: np.ndarray | Mapping[Any, int], current: np.ndarray | Mapping[Any, int], *, fill_zeroes: bool
) -> tuple[np.ndarray, np.ndarray]:
    """Evidently's ``get_binned_data``: Sturges bins over both windows for a numeric column with more
    than 20 distinct reference values, one bin per value otherwise; shares of each window per bin."""
    if isinstance(reference, np.ndarray) and isinstance(current, np.ndarray):
        if _nunique_sorted(reference) > 20:
            edges = np.histogram_bin_edges(np.concatenate([reference, current]), bins="sturges")
            ref_pct = np.histogram(reference, edges)[0] / len(reference)
            cur_pct = np.histogram(current, edges)[0] / len(current)
            return _fill(ref_pct, fill_zeroes), _fill(cur_pct, fill_zeroes)
        reference, current = counts_of(reference), counts_of(current)
    if isinstance(reference, np.ndarray) or isinstance(current, np.ndarray):
        raise TypeError("both windows must be arrays or both counts")
    keys = list(set(reference) | set(current))
    n_ref, n_cur = sum(reference.values()), sum(current.values())
    ref_pct = np.array([reference.get(k, 0) / n_ref for k in keys])
    cur_pct = np.array([current.get(k, 0) / n_cur for k in keys])
    return _fill(ref_pct, fill_zeroes), _fill(cur_pct, fill_zeroes)


def _fill(shares: np.ndarray, fill_zeroes: bool) -> np.ndarray:
    if not fill_zeroes or not (shares == 0).any():
        return shares
    smallest = shares[shares != 0].min()
    np.place(shares, shares == 0, smallest / 10**6 if smallest <= 0.0001 else 0.0001)
    return shares


def _nunique_sorted(values: np.ndarray) -> int:
    if values.size == 0:
        return 0
    return int(np.count_nonzero(values[1:] != values[:-1])) + 1


def counts_of(values: np.ndarray) -> dict[Any, int]:
    """Value counts of an array (sorted or not) as a plain dict."""
    keys, counts = np.unique(values, return_counts=True)
    return {k.item() if hasattr(k, "item") else k: int(c) for k, c in zip(keys, counts, strict=True)}


def compute(method: str, reference: Any, current: Any) -> Statistic:
    """Run ``method`` on prepared data: sorted arrays for numeric columns, counts for categorical ones."""
    if method == "ks":
        return ks(reference, current)
    if method == "wasserstein":
        return wasserstein(reference, current)
    if method == "chisquare":
        if isinstance(reference, np.ndarray):
            reference, current = counts_of(reference), counts_of(current)
        return chisquare(reference, current)
    if method == "psi":
        return psi(reference, current)
    if method == "jensenshannon":
        return jensenshannon(reference, current)
    raise ValueError(f"method must be one of {sorted(METHODS)}, got {method!r}")


def adjust_p_values(p_values: list[float], correction: str) -> list[float]:
    """Adjusted p-values: ``"bh"`` (Benjamini-Hochberg), ``"bonferroni"`` or ``"none"``.

    Comparing a BH-adjusted p-value with the threshold is the BH step-up procedure at that level.
    """
    m = len(p_values)
    if m == 0 or correction == "none":
        return list(p_values)
    p = np.asarray(p_values, dtype=float)
    if correction == "bonferroni":
        return [float(x) for x in np.minimum(p * m, 1.0)]
    if correction == "bh":
        order = np.argsort(p)
        ranked = p[order] * m / np.arange(1, m + 1)
        ranked = np.minimum.accumulate(ranked[::-1])[::-1]
        adjusted = np.empty(m)
        adjusted[order] = np.minimum(ranked, 1.0)
        return [float(x) for x in adjusted]
    raise ValueError(f"correction must be 'bh', 'bonferroni' or 'none', got {correction!r}")
