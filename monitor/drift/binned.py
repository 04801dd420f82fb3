"""Drift methods on counts: PSI, Jensen-Shannon, KL divergence, Hellinger, chi-square, z,
G-test, Fisher's exact test and total variation distance.

Each gives the score of Evidently 0.7's stattest of the same name. Evidently counts with
pandas (``value_counts``, ``nunique``, ``concat``); here the counts come from the prepared,
sorted columns (:mod:`monitor.drift.samples`), histograms from ``searchsorted`` on the
sorted values at the few bin edges.

Evidently's binning (``stattests/utils.py::get_binned_data``), used by PSI, Jensen-Shannon
and KL divergence: a numeric column whose *reference* has more than 20 distinct values is
cut into ``np.histogram_bin_edges(concat(reference, current), bins="sturges")``, equal-width
bins over the range of both samples, as many as ``log2(n_reference + n_current) + 1``;
otherwise each distinct value of either sample is a bin. The edges depend on the current
window, so these scores cannot be computed on bins frozen with the reference. PSI and KL
then replace empty bins ("feel_zeroes"): by the smallest non-zero share / 10**6 when that
share is at most 0.0001, else by 0.0001, separately for each sample. Hellinger bins numeric
columns its own way: Sturges over the *distinct* values of both samples, always.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
from scipy import special, stats
from scipy.spatial import distance

from monitor.drift.samples import ReferenceColumn, align, is_missing, prepare

BIN_MIN_UNIQUE = 20  # more distinct reference values than this: numeric columns are binned
TVD_PERMUTATIONS = 1000


def _columns(reference: Any, current: Any, column_type: str) -> tuple[ReferenceColumn, ...]:
    ref, cur = prepare(reference), prepare(current)
    if column_type == "numeric":
        ref, cur = ref.as_numbers(), cur.as_numbers()
    if ref.n == 0:
        raise ValueError("the reference has no present values")
    return ref, cur


def sturges_edges(lo: float, hi: float, size: int, *, integer: bool) -> np.ndarray:
    """``np.histogram_bin_edges(a, bins="sturges")`` for data of ``size`` values spanning
    ``[lo, hi]``; ``integer`` when ``a`` has an integer dtype (bins are then >= 1 wide)."""
    first, last = lo, hi
    if first == last:
        first, last = first - 0.5, last + 0.5
    width = (hi - lo) / (np.log2(size) + 1.0)
    if width:
        if integer and width < 1:
            width = 1
        n_bins = int(np.ceil((last - first) / width))
    else:
        n_bins = 1
    return np.linspace(first, last, n_bins + 1)


def histogram(ordered: np.ndarray, edges: np.ndarray) -> np.ndarray:
    """``np.histogram(values, edges)[0]`` for sorted values (bins half-open, last closed)."""
    cum = np.concatenate(
        (
            np.searchsorted(ordered, edges[:-1], "left"),
            np.searchsorted(ordered, edges[-1:], "right"),
        )
    )
    return np.diff(cum)


def binned_shares(
    ref: ReferenceColumn, cur: ReferenceColumn, column_type: str, *, fill_zeroes: bool
) -> tuple[np.ndarray, np.ndarray]:
    """Evidently's ``get_binned_data``: the share of each sample in each bin."""
    if column_type == "numeric" and ref.unique.size > BIN_MIN_UNIQUE:
        lo = min(ref.values[0], cur.values[0])
        hi = max(ref.values[-1], cur.values[-1])
        edges = sturges_edges(lo, hi, ref.n + cur.n, integer=ref.integer and cur.integer)
        ref_shares = histogram(ref.values, edges) / ref.n
        cur_shares = histogram(cur.values, edges) / cur.n
    else:
        _, a, b = align(ref, cur)
        ref_shares, cur_shares = a / ref.n, b / cur.n
    if fill_zeroes:
        fill_empty_bins(ref_shares)
        fill_empty_bins(cur_shares)
    return ref_shares, cur_shares


def fill_empty_bins(shares: np.ndarray) -> None:
    smallest = shares[shares != 0].min()
    shares[shares == 0] = smallest / 10**6 if smallest <= 0.0001 else 0.0001


def psi(reference: Any, current: Any, *, column_type: str) -> float:
    """Population stability index on Evidently's bins."""
    ref, cur = _columns(reference, current, column_type)
    if cur.n == 0:
        return math.nan
    r, c = binned_shares(ref, cur, column_type, fill_zeroes=True)
    return float(np.sum((r - c) * np.log(r / c)))


def jensenshannon(reference: Any, current: Any, *, column_type: str) -> float:
    """Jensen-Shannon distance (natural log) on Evidently's bins, empty bins kept."""
    ref, cur = _columns(reference, current, column_type)
    if cur.n == 0:
        return math.nan
    r, c = binned_shares(ref, cur, column_type, fill_zeroes=False)
    return float(distance.jensenshannon(r, c))


def kl_div(reference: Any, current: Any, *, column_type: str) -> float:
    """Kullback-Leibler divergence KL(reference || current) on Evidently's bins."""
    ref, cur = _columns(reference, current, column_type)
    if cur.n == 0:
        return math.nan
    r, c = binned_shares(ref, cur, column_type, fill_zeroes=True)
    return float(stats.entropy(r, c))


def hellinger(reference: Any, current: Any, *, column_type: str) -> float:
    """Hellinger distance: on the categories, or for numeric columns on Sturges bins over
    the distinct values of both samples, with densities times the mean bin width."""
    ref, cur = _columns(reference, current, column_type)
    if cur.n == 0:
        return math.nan
    values, a, b = align(ref, cur)
    if column_type == "numeric":
        edges = sturges_edges(
            values[0], values[-1], values.size, integer=ref.integer and cur.integer
        )
        widths = np.diff(edges)
        h1 = _density(histogram(ref.values, edges), widths)
        h2 = _density(histogram(cur.values, edges), widths)
        bin_width = (edges.max() - edges.min()) / (len(edges) - 1)
        total = 0.0
        for p1, p2 in zip(h1.tolist(), h2.tolist(), strict=True):
            total += math.sqrt(p1 * p2) * bin_width
    else:
        total = float(np.sum(np.sqrt((a / ref.n) * (b / cur.n))))
    return math.sqrt(1 - float(np.clip(total, 0, 1)))


def _density(counts: np.ndarray, widths: np.ndarray) -> np.ndarray:
    return counts / widths / counts.sum()  # np.histogram(..., density=True)


def chisquare(reference: Any, current: Any, *, column_type: str) -> float:
    """p-value of Pearson's chi-square test of the current counts against the reference
    shares scaled to the current size; a value absent from the reference gives p = 0."""
    ref, cur = _columns(reference, current, column_type)
    if cur.n == 0:
        return math.nan
    _, a, b = align(ref, cur)
    expected = a * (cur.n / ref.n)
    with np.errstate(divide="ignore", invalid="ignore"):
        return float(stats.chisquare(b, expected).pvalue)


def z_test(reference: Any, current: Any, *, column_type: str) -> float:
    """p-value of the two-sided two-proportion z-test of "equals the smallest value"."""
    ref, cur = _columns(reference, current, column_type)
    if cur.n == 0:
        return math.nan
    if ref.unique.size == 1 and cur.unique.size == 1 and ref.unique[0] == cur.unique[0]:
        return 1.0
    keys, a, b = align(ref, cur)
    # Evidently sorts the values and tests "equals the first" (a TypeError if unorderable)
    first = 0 if keys.dtype.kind in "biuf" else keys.tolist().index(min(keys.tolist()))
    n1, n2 = ref.n, cur.n
    p1 = float(n1 - int(a[first])) / n1
    p2 = float(n2 - int(b[first])) / n2
    pooled = float(p1 * n1 + p2 * n2) / (n1 + n2)
    with np.errstate(divide="ignore", invalid="ignore"):
        z = (p1 - p2) / np.sqrt(pooled * (1 - pooled) * (1.0 / n1 + 1.0 / n2))
    return float(2 * (1 - special.ndtr(np.abs(z))))


def g_test(reference: Any, current: Any, *, column_type: str) -> float:
    """p-value of the G-test with the raw reference counts as expected frequencies.

    Evidently does not rescale the reference counts, and scipy >= 1.9 refuses expected
    frequencies that do not sum to the observed total, so Evidently's G-test only runs
    when both samples have the same size; otherwise this raises ``ValueError`` too.
    """
    ref, cur = _columns(reference, current, column_type)
    if cur.n == 0:
        return math.nan
    if ref.n != cur.n:
        raise ValueError(
            f"g_test needs samples of equal size, got {ref.n} reference and {cur.n} current"
            " values (Evidently uses the reference counts unscaled as expected frequencies)"
        )
    _, a, b = align(ref, cur)
    with np.errstate(divide="ignore", invalid="ignore"):
        return float(stats.power_divergence(b, a, lambda_="log-likelihood").pvalue)


def fisher_exact(reference: Any, current: Any, *, column_type: str) -> float:
    """p-value of Fisher's exact test on the 2x2 table of a binary column's counts.

    Like Evidently, needs samples of equal size with at most two values each. Evidently's
    result depends on set iteration order when the samples have three or more values
    together; that raises ``ValueError`` here.
    """
    ref, cur = _columns(reference, current, column_type)
    if cur.n == 0:
        return math.nan
    if ref.n != cur.n:
        raise ValueError(
            "reference_data and current_data are not of equal length, please ensure that"
            " they are of equal length"
        )
    _, a, b = align(ref, cur)
    if ref.unique.size > 2 or cur.unique.size > 2 or a.size > 2:
        raise ValueError(f"fisher_exact needs a binary column, got {a.size} distinct values")
    if a.size == 1:  # Evidently adds a placeholder category with no counts
        a, b = np.append(a, 0), np.append(b, 0)
    table = np.array([[b[1], b[0]], [a[1], a[0]]])
    return float(stats.fisher_exact(table).pvalue)


def total_variation(reference: Any, current: Any, *, column_type: str) -> float:
    """Permutation p-value of the total variation distance (1000 permutations, seed 0).

    Replays Evidently's permutations exactly (``np.random.seed(0)`` then
    ``np.random.choice(reference + current, n_reference, replace=False)`` per round, which
    is ``RandomState(0).permutation(n)[:n_reference]``), so the p-value matches Evidently's
    when both samples are raw arrays in their original row order. A prepared reference has
    lost its row order: the p-value is then that of the same test on the sorted reference.
    Costs 1000 permutations of all values: about a minute for 1M + 1M values.
    """
    ref, cur = _columns(reference, current, column_type)
    ref_values = _present_in_order(reference, ref)
    cur_values = _present_in_order(current, cur)
    if cur_values.size == 0:
        return math.nan
    keys, _, _ = align(ref, prepare(cur_values))
    codes = _codes(np.concatenate((ref_values, cur_values)), keys)
    n1, size = ref_values.size, codes.size
    n2 = size - n1
    totals = np.bincount(codes, minlength=keys.size)
    first = np.bincount(codes[:n1], minlength=keys.size)
    observed = _tvd(first, totals - first, n1, n2)
    rng = np.random.RandomState(0)
    hits = 0
    for _ in range(TVD_PERMUTATIONS):
        order = rng.permutation(size)
        if n1 <= n2:
            counts = np.bincount(codes[order[:n1]], minlength=keys.size)
        else:  # count the smaller part
            counts = totals - np.bincount(codes[order[n1:]], minlength=keys.size)
        hits += observed <= abs(_tvd(counts, totals - counts, n1, n2))
    return hits / TVD_PERMUTATIONS


def _tvd(a: np.ndarray, b: np.ndarray, n1: int, n2: int) -> float:
    return float(0.5 * np.sum(np.abs(a / n1 - b / n2)))


def _present_in_order(raw: Any, prepared: ReferenceColumn) -> np.ndarray:
    if isinstance(raw, ReferenceColumn):
        return prepared.values
    arr = np.asarray(raw)
    if arr.dtype.kind == "f":
        return arr[np.isfinite(arr)]
    if arr.dtype.kind == "O":
        keep = [not is_missing(v) for v in arr.tolist()]
        return arr[np.array(keep, dtype=bool)] if keep else arr
    return arr


def _codes(values: np.ndarray, keys: np.ndarray) -> np.ndarray:
    if values.dtype.kind in "biuf" and keys.dtype.kind in "biuf":
        return np.searchsorted(keys, values)
    index = {k: i for i, k in enumerate(keys.tolist())}
    return np.fromiter((index[v] for v in values.tolist()), dtype=np.int64, count=values.size)
