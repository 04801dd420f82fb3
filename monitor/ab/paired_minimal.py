"""A minimal stand-in for :mod:`monitor.paired` (TO BE DELETED AT MERGE).

:mod:`monitor.paired` (McNemar and the paired bootstrap) is written on the train
helper's branch. Until it is merged, :mod:`monitor.shadow` imports this module instead:
the same names, signatures and result fields (``mcnemar``, ``paired_bootstrap``,
``weighted_roc_auc``, ``weighted_mean``, ``McNemarResult``, ``BootstrapResult``), so the
merge changes one import line in :mod:`monitor.shadow` and deletes this file.

Pure functions of arrays; the tests cross-check them against scipy and scikit-learn.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt
from scipy import stats

FloatArray = npt.NDArray[np.float64]
WeightedMetric = Callable[[FloatArray], FloatArray]  # weights (b, n) -> values (b,)


@dataclass(frozen=True)
class McNemarResult:
    candidate_only: int  # rows the candidate gets right and the reference wrong
    reference_only: int
    n: int
    delta: float  # candidate accuracy minus reference accuracy
    statistic: float  # chi-square with continuity correction
    p_two_sided: float  # exact binomial
    p_better: float  # exact one-sided: H0 "the candidate is not better"


@dataclass(frozen=True)
class BootstrapResult:
    candidate: float
    reference: float
    delta: float  # oriented so that positive is better
    low: float
    high: float
    p_better: float
    resamples: int


def mcnemar(candidate_correct: npt.ArrayLike, reference_correct: npt.ArrayLike) -> McNemarResult:
    a = np.asarray(candidate_correct, dtype=bool)
    b = np.asarray(reference_correct, dtype=bool)
    cand, ref, n = int(np.sum(a & ~b)), int(np.sum(~a & b)), int(a.size)
    delta = (cand - ref) / n if n else math.nan
    k = cand + ref
    if k == 0:
        return McNemarResult(cand, ref, n, delta, math.nan, 1.0, 1.0)
    two = float(stats.binomtest(cand, k, 0.5).pvalue)
    better = float(stats.binomtest(cand, k, 0.5, alternative="greater").pvalue)
    return McNemarResult(cand, ref, n, delta, (abs(cand - ref) - 1) ** 2 / k, two, better)


def weighted_mean(values: npt.ArrayLike) -> WeightedMetric:
    v = np.asarray(values, dtype=np.float64)
    return lambda w: np.asarray((w @ v) / w.sum(axis=1), dtype=np.float64)


def weighted_roc_auc(positive: npt.ArrayLike, scores: npt.ArrayLike) -> WeightedMetric:
    s = np.asarray(scores, dtype=np.float64)
    order = np.argsort(s, kind="stable")
    is_pos = np.asarray(positive, dtype=bool)[order].astype(np.float64)
    ss = s[order]
    groups = np.flatnonzero(np.r_[True, ss[1:] != ss[:-1]])  # tie groups, ascending

    def metric(w: FloatArray) -> FloatArray:
        ws = w[:, order]
        pos = np.add.reduceat(ws * is_pos, groups, axis=1)
        neg = np.add.reduceat(ws, groups, axis=1) - pos
        below = np.cumsum(neg, axis=1) - neg  # negatives in lower groups
        den = pos.sum(axis=1) * neg.sum(axis=1)
        with np.errstate(divide="ignore", invalid="ignore"):
            return np.where(den > 0, (pos * (below + neg / 2)).sum(axis=1) / den, np.nan)

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
    sign = 1.0 if higher_is_better else -1.0
    rng = np.random.default_rng(seed)
    cand, ref = (float(f(np.ones((1, n)))[0]) for f in (candidate, reference))
    block = max(1, 2_000_000 // max(n, 1))
    parts = []
    for start in range(0, resamples, block):
        idx = rng.integers(0, n, size=(min(block, resamples - start), n))
        w = np.stack([np.bincount(row, minlength=n) for row in idx]).astype(np.float64)
        parts.append(sign * (candidate(w) - reference(w)))
    deltas = np.concatenate(parts)
    deltas = deltas[~np.isnan(deltas)]
    if deltas.size == 0:
        return BootstrapResult(cand, ref, sign * (cand - ref), math.nan, math.nan, math.nan, 0)
    tail = (1 - confidence) / 2
    low, high = (float(q) for q in np.quantile(deltas, [tail, 1 - tail]))
    p_better = float(np.mean(deltas <= 0))
    return BootstrapResult(cand, ref, sign * (cand - ref), low, high, p_better, int(deltas.size))
