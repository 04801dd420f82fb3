"""Confidence intervals behind :mod:`monitor.concept.performance`: the normal quantile,
Wilson's interval of a proportion, DeLong's variance of the ROC AUC, and a vectorised,
seeded percentile bootstrap over multiplicity weights (see that module's docstring)."""

from __future__ import annotations

import math
from collections.abc import Callable, Iterator, Mapping

import numpy as np
import numpy.typing as npt
from scipy.special import ndtri
from scipy.stats import rankdata

FloatArray = npt.NDArray[np.float64]
BoolArray = npt.NDArray[np.bool_]

_BLOCK_CELLS = 2_000_000  # resamples x rows materialised at once
_ROW_BINCOUNT = 10_000  # windows at least this long: one bincount per resample


def z_value(confidence: float) -> float:
    """The two-sided normal quantile of ``confidence`` (1.96 for 0.95)."""
    if not 0 < confidence < 1:
        raise ValueError(f"confidence must be in (0, 1), got {confidence!r}")
    return float(ndtri(0.5 + confidence / 2))


def wilson_interval(
    successes: float, trials: float, confidence: float = 0.95
) -> tuple[float, float]:
    """Wilson score interval of ``successes`` out of ``trials`` (NaN, NaN for no trials)."""
    z = z_value(confidence)
    if trials <= 0:
        return math.nan, math.nan
    p = successes / trials
    z2n = z * z / trials
    centre = (p + z2n / 2) / (1 + z2n)
    half = z * math.sqrt(p * (1 - p) / trials + z2n / (4 * trials)) / (1 + z2n)
    return max(0.0, centre - half), min(1.0, centre + half)


def delong_roc_auc(positive: npt.ArrayLike, scores: npt.ArrayLike) -> tuple[float, float]:
    """ROC AUC and its DeLong variance (DeLong, DeLong and Clarke-Pearson 1988, with the
    midrank computation of Sun and Xu 2014). NaN, NaN without both classes."""
    pos = np.asarray(positive, dtype=bool)
    s = np.asarray(scores, dtype=np.float64)
    x, y = s[pos], s[~pos]
    m, k = x.size, y.size
    if m == 0 or k == 0:
        return math.nan, math.nan
    ranks = rankdata(np.concatenate([x, y]))
    # share of negatives below each positive, and of positives above each negative
    v10 = (ranks[:m] - rankdata(x)) / k
    v01 = 1.0 - (ranks[m:] - rankdata(y)) / m
    auc = float(v10.mean())
    if m < 2 or k < 2:
        return auc, math.nan
    return auc, float(v10.var(ddof=1) / m + v01.var(ddof=1) / k)


# --- bootstrap over multiplicity weights ------------------------------------------------


def _resample_weights(n: int, resamples: int, seed: int) -> Iterator[FloatArray]:
    """Blocks of bootstrap multiplicities, shape (block, n); each row sums to n. Row ``r``
    counts the draws of ``rng.integers(0, n, size=(resamples, n))[r]``."""
    rng = np.random.default_rng(seed)
    rows = max(1, _BLOCK_CELLS // max(n, 1))
    for start in range(0, resamples, rows):
        idx = rng.integers(0, n, size=(min(rows, resamples - start), n))
        if n >= _ROW_BINCOUNT:  # one bincount per row: cache-friendlier
            w = np.empty(idx.shape)
            for r, draws in enumerate(idx):
                w[r] = np.bincount(draws, minlength=n)
        else:  # small windows: one bincount for the block, rows offset by n
            flat = (idx + np.arange(idx.shape[0])[:, None] * n).ravel()
            w = np.bincount(flat, minlength=idx.size).reshape(idx.shape).astype(np.float64)
        yield w


Statistic = Callable[[FloatArray], FloatArray]  # weights (b, n) -> values (b,)


def bootstrap_intervals(
    stats: Mapping[str, Statistic], n: int, confidence: float, resamples: int, seed: int
) -> dict[str, tuple[float, float]]:
    """Percentile intervals of every statistic over the same seeded resamples."""
    if resamples < 1:
        raise ValueError(f"resamples must be at least 1, got {resamples!r}")
    values: dict[str, list[FloatArray]] = {name: [] for name in stats}
    for w in _resample_weights(n, resamples, seed):
        for name, fn in stats.items():
            values[name].append(fn(w))
    alpha = 1 - confidence
    out = {}
    for name, parts in values.items():
        v = np.concatenate(parts)
        v = v[~np.isnan(v)]
        if v.size == 0:
            out[name] = (math.nan, math.nan)
        else:
            lo, hi = np.quantile(v, [alpha / 2, 1 - alpha / 2])
            out[name] = (float(lo), float(hi))
    return out


def point_value(fn: Statistic, n: int) -> float:
    return float(fn(np.ones((1, n)))[0])


def safe_ratio(num: FloatArray, den: FloatArray) -> FloatArray:
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(den > 0, num / np.where(den > 0, den, 1.0), np.nan)


class Ranked:
    """One class's scores sorted once (descending) and cut into groups of tied scores,
    so weighted ROC AUC and average precision of any resample are cumulative sums."""

    def __init__(self, positive: BoolArray, scores: FloatArray) -> None:
        order = np.argsort(-scores, kind="stable")
        s = scores[order]
        # rows already in descending order (the binary path sorts them) need no gather
        self.order = None if np.array_equal(order, np.arange(order.size)) else order
        self.positive = positive[order].astype(np.float64)
        self.starts = np.flatnonzero(np.r_[True, s[1:] != s[:-1]])

    def _groups(self, w: FloatArray) -> tuple[FloatArray, FloatArray]:
        """Weighted positives and all rows per tied group, best scores first."""
        ws = w if self.order is None else w[:, self.order]
        pos = np.add.reduceat(ws * self.positive, self.starts, axis=1)
        return pos, np.add.reduceat(ws, self.starts, axis=1)

    def roc_auc(self, w: FloatArray) -> FloatArray:
        pos, rows = self._groups(w)
        neg = rows - pos
        n_pos, n_neg = pos.sum(axis=1), neg.sum(axis=1)
        below = n_neg[:, None] - np.cumsum(neg, axis=1)  # negatives scored lower
        return safe_ratio((pos * (below + neg / 2)).sum(axis=1), n_pos * n_neg)

    def average_precision(self, w: FloatArray) -> FloatArray:
        """scikit-learn's: the sum over distinct thresholds of recall gained times the
        precision there. Weights are counts, so a group with positives has rows >= 1."""
        pos, rows = self._groups(w)
        tps = np.cumsum(pos, axis=1)
        precision_gain = pos * tps / np.maximum(np.cumsum(rows, axis=1), 1.0)
        return safe_ratio(precision_gain.sum(axis=1), tps[:, -1])
