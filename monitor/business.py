"""A binary classifier's decisions in the business's own terms: outcome counts, rates
with intervals, money, threshold what-ifs, and where a cost change comes from.

Every function takes arrays and returns frozen results; nothing here reads a clock or
a store. A row is described by

- ``q``: the probability that it is positive. 1 or 0 where its label is known (and
  matured), the calibrated score (CBPE, :mod:`monitor.concept.estimate`) where it is
  not, NaN where neither is known. With ``q``, the outcome counts are *expected*
  counts: ``TP = sum(q)`` over flagged rows, ``FP = sum(1 - q)`` over flagged rows,
  ``FN = sum(q)`` and ``TN = sum(1 - q)`` over the others; for labelled rows that is
  exactly the confusion matrix. Rows whose ``q`` is NaN are left out and the counts of
  the others are scaled up to the whole volume (``scale = rows / known``);
- ``flagged``: whether the model flagged it (predicted positive);
- ``miss_value``: what missing this row costs when it is positive (e.g. the amount of
  an undetected fraud); NaN falls back to the fixed ``fn`` cost.

Rates (false-negative and false-positive rate, precision, recall) carry Wilson score
intervals computed on the unscaled counts (expected counts where estimated: the
interval is then the sampling uncertainty of a rate observed at those counts, not the
risk that the calibration no longer holds).
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt
from scipy.stats import norm

FloatArray = npt.NDArray[np.float64]


@dataclass(frozen=True)
class Costs:
    """Money per outcome (negative for a gain); ``fn`` is the fixed part of a miss."""

    tp: float = 0.0
    fp: float = 0.0
    fn: float = 0.0
    tn: float = 0.0


@dataclass(frozen=True)
class Rate:
    value: float | None  # None when the denominator is 0
    lower: float | None
    upper: float | None
    numerator: float  # unscaled (expected) counts the rate and interval come from
    denominator: float


def wilson(successes: float, trials: float, confidence: float = 0.95) -> Rate:
    """The rate ``successes / trials`` with its Wilson score interval."""
    if trials <= 0:
        return Rate(None, None, None, successes, trials)
    z = float(norm.ppf(0.5 + confidence / 2))
    p = successes / trials
    centre = (p + z * z / (2 * trials)) / (1 + z * z / trials)
    half = z / (1 + z * z / trials) * math.sqrt(p * (1 - p) / trials + z * z / (4 * trials**2))
    return Rate(p, max(0.0, centre - half), min(1.0, centre + half), successes, trials)


@dataclass(frozen=True)
class Outcomes:
    """Outcome counts of a set of rows, scaled to its whole volume, and their cost."""

    rows: int  # every row
    known: int  # rows whose q is known (labelled or estimated)
    tp: float  # unscaled, over the known rows
    fp: float
    fn: float
    tn: float
    cost: float  # scaled to every row

    @property
    def scale(self) -> float:
        return self.rows / self.known if self.known else 0.0

    def count(self, cell: str) -> float:
        """A cell's count scaled to every row."""
        value: float = getattr(self, cell)
        return value * self.scale

    @property
    def flagged(self) -> float:
        return (self.tp + self.fp) * self.scale

    def rates(self, confidence: float = 0.95) -> dict[str, Rate]:
        return {
            "fnr": wilson(self.fn, self.tp + self.fn, confidence),
            "fpr": wilson(self.fp, self.fp + self.tn, confidence),
            "precision": wilson(self.tp, self.tp + self.fp, confidence),
            "recall": wilson(self.tp, self.tp + self.fn, confidence),
            "flag_rate": wilson(
                self.tp + self.fp, self.tp + self.fp + self.fn + self.tn, confidence
            ),
        }


def _arrays(
    q: npt.ArrayLike, flagged: npt.ArrayLike, miss_value: npt.ArrayLike | None, costs: Costs
) -> tuple[FloatArray, npt.NDArray[np.bool_], FloatArray]:
    qa = np.asarray(q, dtype=np.float64)
    fa = np.asarray(flagged, dtype=bool)
    if qa.shape != fa.shape or qa.ndim != 1:
        raise ValueError(f"q {qa.shape} and flagged {fa.shape} must be 1-D of one length")
    if np.any((qa < 0) | (qa > 1)):
        raise ValueError("q must be probabilities in [0, 1] (or NaN where unknown)")
    if miss_value is None:
        va = np.full(qa.shape, costs.fn)
    else:
        va = np.asarray(miss_value, dtype=np.float64)
        if va.shape != qa.shape:
            raise ValueError(f"miss_value {va.shape} must have q's shape {qa.shape}")
        va = np.where(np.isfinite(va), va + costs.fn, costs.fn)
    return qa, fa, va


def outcomes(
    q: npt.ArrayLike,
    flagged: npt.ArrayLike,
    *,
    costs: Costs,
    miss_value: npt.ArrayLike | None = None,
) -> Outcomes:
    """The expected outcome counts and cost of rows (see the module docstring)."""
    qa, fa, va = _arrays(q, flagged, miss_value, costs)
    known = ~np.isnan(qa)
    qk, fk, vk = qa[known], fa[known], va[known]
    tp = float(qk[fk].sum())
    fp = float((1 - qk[fk]).sum())
    fn = float(qk[~fk].sum())
    tn = float((1 - qk[~fk]).sum())
    missed = float((qk[~fk] * vk[~fk]).sum())
    cost = costs.tp * tp + costs.fp * fp + missed + costs.tn * tn
    n, k = int(qa.size), int(known.sum())
    return Outcomes(n, k, tp, fp, fn, tn, cost * n / k if k else 0.0)


@dataclass(frozen=True)
class ThresholdPoint:
    threshold: float
    flagged_per_day: float
    missed_per_day: float  # false negatives
    caught_per_day: float  # true positives
    false_alarms_per_day: float
    cost_per_day: float


@dataclass(frozen=True)
class CostCurve:
    points: tuple[ThresholdPoint, ...]
    best: ThresholdPoint  # the cost-minimising threshold (the lowest one on ties)
    best_within_capacity: ThresholdPoint | None  # cheapest whose review load fits
    capacity: float | None  # rows a day that can be reviewed


def cost_curve(
    q: npt.ArrayLike,
    scores: npt.ArrayLike,
    thresholds: Sequence[float],
    *,
    days: float,
    costs: Costs,
    miss_value: npt.ArrayLike | None = None,
    capacity: float | None = None,
) -> CostCurve:
    """Outcomes per day had the model flagged ``score >= t``, for each threshold ``t``.
    Rows with an unknown ``q`` or score are left out and the rest scaled to every row."""
    s = np.asarray(scores, dtype=np.float64)
    qa, _, va = _arrays(q, np.zeros(s.shape, dtype=bool), miss_value, costs)
    if not thresholds or days <= 0:
        raise ValueError("a cost curve needs thresholds and a positive number of days")
    known = ~np.isnan(qa) & np.isfinite(s)
    scale = s.size / known.sum() / days if known.any() else 0.0
    order = np.argsort(-s[known], kind="stable")
    s_k, q_k, v_k = s[known][order], qa[known][order], va[known][order]
    pos = np.r_[0.0, np.cumsum(q_k)]
    neg = np.r_[0.0, np.cumsum(1 - q_k)]
    miss = np.r_[0.0, np.cumsum(q_k * v_k)]
    ascending = s_k[::-1]
    points = []
    for t in sorted(float(x) for x in thresholds):
        k = int(s_k.size - np.searchsorted(ascending, t, side="left"))  # rows with s >= t
        tp, fp = pos[k], neg[k]
        fn, tn = pos[-1] - tp, neg[-1] - fp
        cost = costs.tp * tp + costs.fp * fp + (miss[-1] - miss[k]) + costs.tn * tn
        points.append(
            ThresholdPoint(
                t,
                float((tp + fp) * scale),
                float(fn * scale),
                float(tp * scale),
                float(fp * scale),
                float(cost * scale),
            )
        )
    best = min(points, key=lambda p: (p.cost_per_day, p.threshold))
    fitting = [p for p in points if capacity is None or p.flagged_per_day <= capacity]
    within = min(fitting, key=lambda p: (p.cost_per_day, p.threshold)) if fitting else None
    return CostCurve(tuple(points), best, within, capacity)


@dataclass(frozen=True)
class SegmentChange:
    """One segment's part of a cost change: ``change = volume_effect + rate_effect``."""

    segment: str
    rows: float
    base_rows: float
    cost: float
    base_cost: float
    change: float
    volume_effect: float  # the change had the segment cost what it did per row before
    rate_effect: float  # the change from its cost per row, at this period's volume


def decompose(
    current: Mapping[str, tuple[float, float]],
    base: Mapping[str, tuple[float, float]],
) -> list[SegmentChange]:
    """The cost change of each segment between ``base`` and ``current`` (both map a
    segment to ``(rows, cost)``), split into volume and cost-per-row effects; the
    changes add up to the total change. Largest absolute change first."""
    out = []
    for segment in set(current) | set(base):
        n1, c1 = current.get(segment, (0.0, 0.0))
        n0, c0 = base.get(segment, (0.0, 0.0))
        if n0 > 0:
            volume = (n1 - n0) * c0 / n0
            rate = (c1 / n1 - c0 / n0) * n1 if n1 > 0 else 0.0
        else:  # a new segment: all of its cost is volume
            volume, rate = c1, 0.0
        out.append(SegmentChange(segment, n1, n0, c1, c0, c1 - c0, volume, rate))
    return sorted(out, key=lambda c: (-abs(c.change), c.segment))


def segment_costs(
    segments: Sequence[str],
    q: npt.ArrayLike,
    flagged: npt.ArrayLike,
    *,
    costs: Costs,
    miss_value: npt.ArrayLike | None = None,
) -> dict[str, tuple[float, float]]:
    """Rows and (scaled) cost of each segment value, for :func:`decompose`."""
    labels = np.asarray(segments, dtype=object)
    qa, fa, va = _arrays(q, flagged, miss_value, costs)
    out = {}
    for value in sorted(set(labels.tolist()), key=str):
        mask = labels == value
        o = outcomes(qa[mask], fa[mask], costs=costs, miss_value=va[mask] - costs.fn)
        out[str(value)] = (float(o.rows), o.cost)
    return out


__all__ = [
    "CostCurve",
    "Costs",
    "Outcomes",
    "Rate",
    "SegmentChange",
    "ThresholdPoint",
    "cost_curve",
    "decompose",
    "outcomes",
    "segment_costs",
    "wilson",
]
