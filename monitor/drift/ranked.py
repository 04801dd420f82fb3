"""Drift tests on the values themselves: KS, Wasserstein, energy distance, Anderson-Darling,
Cramer-von Mises, Mann-Whitney, t-test and Epps-Singleton.

Each gives the score Evidently 0.7's stattest of the same name gives (it calls scipy, or for
Cramer-von Mises its own copy of scipy's code), computed from sorted samples. Wasserstein
reads W1 off the two quantile functions in one pass. The rank and ECDF tests merge both
samples once into their distinct values with a count per side (a linear merge of two
sorted runs); ECDFs, midranks and tie counts then follow from cumulative sums, where scipy
sorts, ranks and binary-searches the pooled sample again for each test. Small samples take
scipy's exact paths by calling scipy, as Evidently does; so do the p-value distributions
(``kstwo``, ``ndtr``, the t distribution).
"""

from __future__ import annotations

import math
from functools import cached_property
from typing import Any

import numpy as np
from scipy import special, stats

from monitor.drift.samples import ReferenceColumn, align, prepare, present_numbers

KS_EXACT_MAX_N = 10_000  # scipy's ks_2samp(method="auto") is exact up to this size
CVM_EXACT_MAX_N = 20  # Evidently's Cramer-von Mises is exact up to this size


def numbers(reference: Any, current: Any) -> tuple[ReferenceColumn, ReferenceColumn]:
    """Both columns prepared as numbers; a reference with no present value is an error."""
    return _reference(reference), prepare(current).as_numbers()


def _reference(reference: Any) -> ReferenceColumn:
    ref = prepare(reference).as_numbers()
    if ref.n == 0:
        raise ValueError("the reference has no present values")
    return ref


class _Pooled:
    """Both samples merged: distinct values ``v`` with counts ``a`` (reference) and ``b``."""

    def __init__(self, ref: ReferenceColumn, cur: ReferenceColumn) -> None:
        self.v, self.a, self.b = align(ref, cur)
        self.n1, self.n2 = ref.n, cur.n
        self.distinct = self.v.size == self.n1 + self.n2  # no value occurs twice

    @cached_property
    def ties(self) -> np.ndarray:
        return self.a + self.b

    @cached_property
    def cum_a(self) -> np.ndarray:
        return np.cumsum(self.a)

    @cached_property
    def cum_b(self) -> np.ndarray:
        return np.cumsum(self.b)

    def ecdf_difference(self) -> np.ndarray:
        """ECDF(reference) - ECDF(current) at each distinct value (scipy's ``cddiffs``)."""
        return self.cum_a / self.n1 - self.cum_b / self.n2

    def midranks(self) -> np.ndarray:
        """The average rank (1-based) of each distinct value in the pooled sample."""
        if self.distinct:
            return np.arange(1, self.v.size + 1, dtype=np.float64)
        ends = self.cum_a + self.cum_b
        return 0.5 * (ends + (ends - self.ties) + 1)

    def ranks(self, counts: np.ndarray) -> np.ndarray:
        """The midranks of one sample's values (``counts``: ``a`` or ``b``), ascending."""
        if self.distinct:
            return np.flatnonzero(counts) + 1.0
        return np.repeat(self.midranks(), counts)


def ks(reference: Any, current: Any, *, column_type: str = "numeric") -> float:
    """p-value of the two-sided two-sample Kolmogorov-Smirnov test (``ks_2samp``).

    Exact (scipy itself) up to 10,000 values per sample, else Smirnov's asymptotic
    ``kstwo.sf(D, round(n1 n2 / (n1 + n2)))`` with D from the merged ECDFs. For samples of
    a million, that scipy call (an exact double-double sum over n terms) takes most of the
    time, as it does in Evidently.
    """
    ref, cur = numbers(reference, current)
    if cur.n == 0:
        return math.nan
    if max(ref.n, cur.n) <= KS_EXACT_MAX_N:
        return float(stats.ks_2samp(ref.values, cur.values).pvalue)
    diff = _Pooled(ref, cur).ecdf_difference()
    d = max(float(np.clip(-diff.min(), 0, 1)), float(diff.max()))
    return ks_p_value(d, ref.n, cur.n)


def ks_p_value(d: float, n1: int, n2: int) -> float:
    """scipy's asymptotic two-sided p-value of the KS statistic ``d`` (decreasing in d)."""
    m, n = sorted([float(n1), float(n2)], reverse=True)
    en = m * n / (m + n)
    return float(np.clip(stats.kstwo.sf(d, np.round(en)), 0, 1))


def wasserstein_sorted(ref_sorted: np.ndarray, cur: np.ndarray) -> float:
    """``scipy.stats.wasserstein_distance(ref_sorted, cur)`` for a sorted reference.

    Both must be finite and non-empty; ``cur`` need not be sorted. Only ``cur`` is sorted
    here, then W1 is read off the two quantile functions in one pass (:func:`_w1`).
    """
    return _w1(np.asarray(ref_sorted, dtype=np.float64), np.sort(np.asarray(cur, np.float64)))


def _w1(x: np.ndarray, y: np.ndarray) -> float:
    """W1 of two sorted samples: the area between their quantile functions.

    In units of 1/(big*small), value i of the larger sample holds the quantiles
    [i*small, (i+1)*small) and value j of the smaller the wider [j*big, (j+1)*big), so
    the first meets the second's cell ``cell = i*small // big``, where it starts, for
    ``first = min((cell+1)*big - i*small, small)``, and the next cell for the rest.
    Integer arithmetic keeps the overlaps exact. Computed :data:`_CHUNK` values at a
    time: the temporaries stay in the CPU cache, and no array of the sample's size is
    allocated (each one's fresh pages cost as much as the arithmetic).
    """
    if x.size == y.size:
        return float(np.mean(np.abs(x - y)))
    u, v = (x, y) if x.size > y.size else (y, x)
    big, small = u.size, v.size
    total = 0.0
    for lo in range(0, big, _CHUNK):
        hi = min(lo + _CHUNK, big)
        start = np.arange(lo, hi, dtype=np.int64)
        start *= small
        cell = start // big
        first = (cell + 1) * big - start
        np.minimum(first, small, out=first)
        part = u[lo:hi]
        gap = np.abs(part - v[cell])
        # einsum, not np.dot: BLAS's dot starts a thread per core, which spin (twice the
        # CPU time for the same wall time), and rounds differently per machine
        total += float(np.einsum("i,i->", gap, first.astype(np.float64)))
        cell += 1
        np.minimum(cell, small - 1, out=cell)
        np.subtract(part, v[cell], out=gap)
        np.abs(gap, out=gap)
        np.subtract(small, first, out=first)
        total += float(np.einsum("i,i->", gap, first.astype(np.float64)))
    return total / (float(big) * float(small))


_CHUNK = 16_384  # values of the larger sample per step of _w1 (128 KiB arrays)


def wasserstein(reference: Any, current: Any, *, column_type: str = "numeric") -> float:
    """Wasserstein-1 distance divided by ``max(std(reference), 0.001)``."""
    ref = _reference(reference)
    if isinstance(current, ReferenceColumn):
        cur = current.as_numbers().values
    else:
        cur = np.sort(present_numbers(current))
    if cur.size == 0:
        return math.nan
    if cur.size * SMALL_WINDOW < ref.n:  # a small window: O(n log N), not O(N)
        return _w1_small(ref, cur) / max(ref.std, 0.001)
    return _w1(ref.values, cur) / max(ref.std, 0.001)


SMALL_WINDOW = 64  # a window this many times smaller than the reference is "small"


def _w1_small(ref: ReferenceColumn, y: np.ndarray) -> float:
    """W1 of a prepared reference and a small sorted sample: ``integral |F_R - F_Y|``.

    ``F_Y`` is the constant ``c_j = j / n`` between its values ``y_{j-1}`` and ``y_j``; on
    such a segment ``[a, b]``, ``F_R - c_j`` changes sign once, at the reference's
    ``ceil(c_j N)``-th value ``t``, so with ``G(t) = integral of F_R up to t`` (from the
    reference's prefix sums) the segment contributes
    ``c (m - a) - (G(m) - G(a)) + (G(b) - G(m)) - c (b - m)``, ``m = clip(t, a, b)``.
    """
    x, prefix = ref.values, ref.prefix_sums
    n_ref, n = x.size, y.size
    points = np.concatenate(([min(x[0], y[0])], y, [max(x[-1], y[-1])]))
    a, b = points[:-1], points[1:]
    j = np.arange(n + 1, dtype=np.int64)
    c = j / n
    k = (j * n_ref + n - 1) // n  # ceil(c N): F_R >= c from the k-th reference value on
    crossing = np.where(k > 0, x[np.maximum(k - 1, 0)], -np.inf)
    m = np.clip(crossing, a, b)

    def g(t: np.ndarray) -> np.ndarray:
        below = np.searchsorted(x, t, side="right")
        return (below * t - prefix[below]) / n_ref

    g_a, g_m, g_b = g(a), g(m), g(b)
    total = c * (m - a) - (g_m - g_a) + (g_b - g_m) - c * (b - m)
    return float(np.sum(total))


def energy(reference: Any, current: Any, *, column_type: str = "numeric") -> float:
    """``scipy.stats.energy_distance``: sqrt(2) times the L2 distance between the ECDFs."""
    ref, cur = numbers(reference, current)
    if cur.n == 0:
        return math.nan
    pooled = _Pooled(ref, cur)
    diff = pooled.ecdf_difference()[:-1]
    return float(np.sqrt(2) * np.sqrt(np.vecdot(np.square(diff), np.diff(pooled.v))))


def anderson(reference: Any, current: Any, *, column_type: str = "numeric") -> float:
    """p-value of the k-sample Anderson-Darling test (``anderson_ksamp``, midrank variant),
    which scipy caps to [0.001, 0.25]; scipy's warnings about the cap are not repeated."""
    ref, cur = numbers(reference, current)
    if cur.n == 0:
        return math.nan
    pooled = _Pooled(ref, cur)
    if pooled.v.size < 2:
        raise ValueError("anderson_ksamp needs more than one distinct observation")
    n_total = ref.n + cur.n
    # scipy's _anderson_ksamp_midrank, term for term
    if pooled.distinct:
        lj: Any = 1.0
        bj = np.arange(n_total) + 0.5
    else:
        lj = pooled.ties
        bj = (pooled.cum_a + pooled.cum_b - pooled.ties) + lj / 2.0
    weight = lj / float(n_total)
    denominator = bj * (n_total - bj) - n_total * lj / 4.0  # the same for both samples
    a2akn = 0.0
    for cum, count, size in ((pooled.cum_a, pooled.a, ref.n), (pooled.cum_b, pooled.b, cur.n)):
        mij = cum - count / 2.0
        inner = weight * (n_total * mij - bj * size) ** 2 / denominator
        a2akn += inner.sum() / size
    a2akn *= (n_total - 1.0) / n_total
    return _anderson_p_value(a2akn, np.array([ref.n, cur.n]), n_total)


def _anderson_p_value(a2kn: float, sizes: np.ndarray, big_n: int) -> float:
    # scipy.stats.anderson_ksamp after the statistic (Scholz and Stephens 1987), k = 2
    k = 2
    h_sum = (1.0 / sizes).sum()
    hs_cs = (1.0 / np.arange(big_n - 1, 1, -1)).cumsum()
    h = hs_cs[-1] + 1
    g = (hs_cs / np.arange(2, big_n)).sum()
    a = (4 * g - 6) * (k - 1) + (10 - 6 * g) * h_sum
    b = (2 * g - 4) * k**2 + 8 * h * k + (2 * g - 14 * h - 4) * h_sum - 8 * h + 4 * g - 6
    c = (6 * h + 2 * g - 2) * k**2 + (4 * h - 4 * g + 6) * k + (2 * h - 6) * h_sum + 4 * h
    d = (2 * h + 6) * k**2 - 4 * h * k
    sigmasq = (a * big_n**3 + b * big_n**2 + c * big_n + d) / (
        (big_n - 1.0) * (big_n - 2.0) * (big_n - 3.0)
    )
    m = k - 1
    a2 = (a2kn - m) / math.sqrt(sigmasq)
    b0 = np.array([0.675, 1.281, 1.645, 1.96, 2.326, 2.573, 3.085])
    b1 = np.array([-0.245, 0.25, 0.678, 1.149, 1.822, 2.364, 3.615])
    b2 = np.array([-0.105, -0.305, -0.362, -0.391, -0.396, -0.345, -0.154])
    critical = b0 + b1 / math.sqrt(m) + b2 / m
    sig = np.array([0.25, 0.1, 0.05, 0.025, 0.01, 0.005, 0.001])
    if a2 < critical.min():
        return float(sig.max())
    if a2 > critical.max():
        return float(sig.min())
    return math.exp(np.polyval(np.polyfit(critical, np.log(sig), 2), a2))


def cramer_von_mises(reference: Any, current: Any, *, column_type: str = "numeric") -> float:
    """p-value of the two-sample Cramer-von Mises test, as Evidently's ``_cvm_2samp``."""
    ref, cur = numbers(reference, current)
    if cur.n == 0:
        return math.nan
    nx, ny = ref.n, cur.n
    if nx <= 1 or ny <= 1:
        raise ValueError("x and y must contain at least two observations.")
    pooled = _Pooled(ref, cur)
    rx = pooled.ranks(pooled.a)
    ry = pooled.ranks(pooled.b)
    u = nx * np.sum((rx - np.arange(1, nx + 1)) ** 2)
    u += ny * np.sum((ry - np.arange(1, ny + 1)) ** 2)
    k, big_n = nx * ny, nx + ny
    if max(nx, ny) <= CVM_EXACT_MAX_N:
        return _cvm_exact_p_value(float(u), nx, ny)
    t = u / (k * big_n) - (4 * k - 1) / (6 * big_n)
    et = (1 + 1 / big_n) / 6
    vt = (big_n + 1.0) * (4 * k * big_n - 3 * (nx**2 + ny**2) - 2 * k)
    vt = vt / (45 * big_n**2 * 4 * k)
    tn = 1 / 6 + (t - et) / np.sqrt(45 * vt)
    if tn < 0.003:
        return 1.0
    return float(max(0, 1.0 - _cdf_cvm_inf(tn)))


def _cdf_cvm_inf(x: float) -> float:
    # the cdf of the Cramer-von Mises statistic for infinite samples (Csorgo and Faraway
    # 1996, eq. 1.2), summed until the terms are below 1e-7, as in Evidently and scipy
    total, k = 0.0, 0
    while True:
        u = np.exp(special.gammaln(k + 0.5) - special.gammaln(k + 1)) / (np.pi**1.5 * np.sqrt(x))
        y = 4 * k + 1
        q = y**2 / (16 * x)
        z = u * np.sqrt(y) * np.exp(-q) * special.kv(0.25, q)
        total = total + z
        if not abs(z) >= 1e-7:
            return float(total)
        k += 1


def _cvm_exact_p_value(s: float, m: int, n: int) -> float:
    # Evidently's _pval_cvm_2samp_exact (Xiao, Gordon and Yakovlev 2006), unchanged
    lcm = np.lcm(m, n)
    a = lcm // m
    b = lcm // n
    mn = m * n
    zeta = lcm**2 * (m + n) * (6 * s - mn * (4 * mn - 1)) // (6 * mn**2)
    zeta_bound = lcm**2 * (m + n)
    combinations = math.factorial(m + n) / (math.factorial(m) * math.factorial(n))
    dtype = np.min_scalar_type(max(zeta_bound, combinations))
    gs = [np.array([[0], [1]], dtype=dtype)] + [np.empty((2, 0), dtype=dtype) for _ in range(m)]
    for u in range(n + 1):
        next_gs = []
        tmp = np.empty((2, 0), dtype=dtype)
        for v, g in enumerate(gs):
            vi, i0, i1 = np.intersect1d(tmp[0], g[0], return_indices=True)
            tmp = np.concatenate(
                [np.stack([vi, tmp[1, i0] + g[1, i1]]), np.delete(tmp, i0, 1), np.delete(g, i1, 1)],
                1,
            )
            tmp[0] += (a * v - b * u) ** 2
            next_gs.append(tmp)
        gs = next_gs
    value, freq = gs[m]
    return float(np.sum(freq[value >= zeta]) / combinations)


def mann_whitney(reference: Any, current: Any, *, column_type: str = "numeric") -> float:
    """p-value of ``mannwhitneyu(reference, current, alternative="less")``."""
    ref, cur = numbers(reference, current)
    if cur.n == 0:
        return math.nan
    n1, n2 = ref.n, cur.n
    pooled = _Pooled(ref, cur)
    if not (n1 > 8 and n2 > 8) and pooled.distinct:  # scipy's exact path
        return float(stats.mannwhitneyu(ref.values, cur.values, alternative="less").pvalue)
    r1 = float(np.sum(pooled.ranks(pooled.a)))  # exact: sums of halves below 2**52
    u1 = r1 - n1 * (n1 + 1) / 2
    u2 = n1 * n2 - u1
    t = pooled.ties.astype(np.float64)
    tie_term = np.sum(t**3 - t)
    mu = n1 * n2 / 2
    n = n1 + n2
    s = np.sqrt(n1 * n2 / 12 * ((n + 1) - tie_term / (n * (n - 1))))
    with np.errstate(divide="ignore", invalid="ignore"):
        z = (u2 - mu - 0.5) / s
    return float(np.clip(special.ndtr(-z), 0.0, 1.0))


def t_test(reference: Any, current: Any, *, column_type: str = "numeric") -> float:
    """p-value of Student's two-sample t-test with pooled variance (``ttest_ind``)."""
    ref = _reference(reference)
    cur = present_numbers(current)
    if cur.size == 0:
        return math.nan
    ref_std = ref.std * math.sqrt(ref.n / (ref.n - 1)) if ref.n > 1 else math.nan
    with np.errstate(divide="ignore", invalid="ignore"):
        cur_std = float(np.std(cur, ddof=1)) if cur.size > 1 else math.nan
        return float(
            stats.ttest_ind_from_stats(
                ref.mean, ref_std, ref.n, float(np.mean(cur)), cur_std, cur.size
            ).pvalue
        )


def epps_singleton(reference: Any, current: Any, *, column_type: str = "numeric") -> float:
    """p-value of the Epps-Singleton test (``epps_singleton_2samp``, scipy itself)."""
    ref = _reference(reference)
    cur = present_numbers(current)
    if cur.size == 0:
        return math.nan
    if stats.iqr(np.concatenate((ref.values, cur))) == 0:
        raise ValueError("Epps-Singleton needs a non-zero interquartile range of both samples")
    return float(stats.epps_singleton_2samp(ref.values, cur).pvalue)
