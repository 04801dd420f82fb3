"""Paired comparisons of two models scored on the same rows.

Both tests answer one question about a *candidate* and a *reference* model (the
champion, or a trivial baseline) on the same labelled rows: is the candidate better,
and by how much?

- :func:`mcnemar` for accuracy-type metrics (a row is right or wrong for each model):
  only the discordant rows (one model right, the other wrong) carry information. The
  one-sided p-value is the exact binomial tail of the candidate's share of them; the
  classic chi-square statistic with continuity correction and the exact two-sided
  p-value are reported too.
- :func:`paired_bootstrap` for ROC AUC and cost: both models' metric on the same
  seeded resamples of rows, so the interval and the p-value are those of the
  *difference*, with the rows' correlation kept.

Pure functions of arrays (no I/O, no clock); the resamples are bootstrap multiplicity
weights, so each metric is a weighted statistic computed for many resamples at once.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterator
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt
from scipy import stats

FloatArray = npt.NDArray[np.float64]
WeightedMetric = Callable[[FloatArray], FloatArray]  # weights (b, n) -> values (b,)

_BLOCK_CELLS = 2_000_000  # weights per block of resamples (16 MB of float64)


@dataclass(frozen=True)
class McNemarResult:
    candidate_only: int  # rows the candidate gets right and the reference wrong
    reference_only: int  # rows the reference gets right and the candidate wrong
    n: int
    delta: float  # candidate accuracy minus reference accuracy
    statistic: float  # chi-square with continuity correction (nan without discordant rows)
    p_two_sided: float  # exact binomial
    p_better: float  # exact one-sided: H0 "the candidate is not better"


@dataclass(frozen=True)
class BootstrapResult:
    candidate: float
    reference: float
    delta: float  # candidate minus reference, oriented so that positive is better
    low: float  # percentile interval of delta
    high: float
    p_better: float  # share of resamples where the candidate is not better (H0 delta <= 0)
    resamples: int


def mcnemar(candidate_correct: npt.ArrayLike, reference_correct: npt.ArrayLike) -> McNemarResult:
    """McNemar's test of two models' right/wrong outcomes on the same rows."""
    a = np.asarray(candidate_correct, dtype=bool)
    b = np.asarray(reference_correct, dtype=bool)
    if a.shape != b.shape or a.ndim != 1:
        raise ValueError(f"need two 1-d arrays of the same length, got {a.shape} and {b.shape}")
    cand = int(np.sum(a & ~b))
    ref = int(np.sum(~a & b))
    discordant = cand + ref
    n = int(a.size)
    delta = (cand - ref) / n if n else math.nan
    if discordant == 0:
        return McNemarResult(cand, ref, n, delta, math.nan, 1.0, 1.0)
    statistic = (abs(cand - ref) - 1) ** 2 / discordant
    p_two = min(1.0, 2.0 * float(stats.binom.cdf(min(cand, ref), discordant, 0.5)))
    p_better = float(stats.binom.sf(cand - 1, discordant, 0.5))  # P(X >= cand)
    return McNemarResult(cand, ref, n, delta, float(statistic), p_two, p_better)


def resample_weights(n: int, resamples: int, seed: int) -> Iterator[FloatArray]:
    """Blocks of bootstrap multiplicities, shape (block, n); each row sums to n. Row
    ``r`` overall counts the draws of the ``r``-th row of ``rng.integers(0, n, (., n))``
    made block after block from ``np.random.default_rng(seed)``."""
    rng = np.random.default_rng(seed)
    rows = max(1, _BLOCK_CELLS // max(n, 1))
    for start in range(0, resamples, rows):
        idx = rng.integers(0, n, size=(min(rows, resamples - start), n))
        w = np.empty(idx.shape)
        for r, draws in enumerate(idx):
            w[r] = np.bincount(draws, minlength=n)
        yield w


def weighted_roc_auc(positive: npt.ArrayLike, scores: npt.ArrayLike) -> WeightedMetric:
    """ROC AUC (ties count one half) of any multiplicity weights, for many at once."""
    pos_mask = np.asarray(positive, dtype=bool)
    s = np.asarray(scores, dtype=np.float64)
    order = np.argsort(-s, kind="stable")
    sorted_s = s[order]
    is_pos = pos_mask[order].astype(np.float64)
    starts = np.flatnonzero(np.r_[True, sorted_s[1:] != sorted_s[:-1]])

    def metric(w: FloatArray) -> FloatArray:
        ws = w[:, order]
        pos = np.add.reduceat(ws * is_pos, starts, axis=1)
        neg = np.add.reduceat(ws, starts, axis=1) - pos
        n_pos, n_neg = pos.sum(axis=1), neg.sum(axis=1)
        below = n_neg[:, None] - np.cumsum(neg, axis=1)  # negatives scored lower
        den = n_pos * n_neg
        with np.errstate(divide="ignore", invalid="ignore"):
            return np.where(den > 0, (pos * (below + neg / 2)).sum(axis=1) / den, np.nan)

    return metric


def weighted_mean(values: npt.ArrayLike) -> WeightedMetric:
    """The weighted mean of per-row values (cost per row, correctness, ...)."""
    v = np.asarray(values, dtype=np.float64)

    def metric(w: FloatArray) -> FloatArray:
        return np.asarray((w @ v) / w.sum(axis=1), dtype=np.float64)

    return metric


def paired_bootstrap(
    candidate: WeightedMetric,
    reference: WeightedMetric,
    n: int,
    *,
    higher_is_better: bool = True,
    resamples: int = 1000,
    confidence: float = 0.95,
    seed: int = 0,
) -> BootstrapResult:
    """Compare two weighted metrics of the same ``n`` rows over the same resamples.

    ``delta`` is candidate minus reference when higher is better, reference minus
    candidate otherwise (cost), so a positive delta always means the candidate is
    better. Resamples where a metric is undefined (a single class) are dropped.
    """
    if n < 1:
        raise ValueError(f"need at least one row, got n={n!r}")
    if resamples < 1:
        raise ValueError(f"resamples must be at least 1, got {resamples!r}")
    sign = 1.0 if higher_is_better else -1.0
    ones = np.ones((1, n))
    cand, ref = float(candidate(ones)[0]), float(reference(ones)[0])
    parts = [sign * (candidate(w) - reference(w)) for w in resample_weights(n, resamples, seed)]
    deltas = np.concatenate(parts)
    deltas = deltas[~np.isnan(deltas)]
    if deltas.size == 0:
        low = high = p_better = math.nan
    else:
        alpha = 1.0 - confidence
        low, high = (float(q) for q in np.quantile(deltas, [alpha / 2, 1 - alpha / 2]))
        p_better = float(np.mean(deltas <= 0.0))
    return BootstrapResult(
        candidate=cand,
        reference=ref,
        delta=sign * (cand - ref),
        low=low,
        high=high,
        p_better=p_better,
        resamples=int(deltas.size),
    )


__all__ = [
    "BootstrapResult",
    "McNemarResult",
    "mcnemar",
    "paired_bootstrap",
    "resample_weights",
    "weighted_mean",
    "weighted_roc_auc",
]
