"""Calibrated thresholds: how far a window drawn from the reference itself strays.

For a column, a method and a window size ``n``, :func:`calibrate` draws ``rounds`` windows
of ``n`` values from the reference (with replacement, seeded) and scores each against the
reference. The score a stationary window exceeds with probability ``target`` (the target
false-alarm rate per window) is the calibrated limit. driftd never makes a method *more*
sensitive than its usual default through calibration: the threshold used is the stricter
of the two (the larger distance, the smaller p-value), so on stationary data a column
alarms at most at the target rate, and a practically negligible shift is not flagged
just because a window is large.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from monitor.drift.methods import METHODS
from monitor.drift.samples import ReferenceColumn


@dataclass(frozen=True)
class Calibration:
    method: str
    n: int
    target: float
    limit: float  # the score a stationary window crosses with probability `target`
    threshold: float  # what is used: the stricter of `limit` and the method's default

    def to_dict(self) -> dict[str, float | int | str]:
        return self.__dict__.copy()


MAX_BUCKET = 1 << 16


def size_bucket(n: int) -> int:
    """Window sizes calibrate in powers of two: the nearest lower one, from 32 to 65,536.

    Larger windows (binned scores over all of a large window's values) use the 65,536
    threshold, which costs 200 scores of that size once instead of up to a million values
    each: a stationary window's distance only shrinks as it grows, so that threshold is if
    anything stricter (well below the methods' defaults already), and a stationary
    window's p-values are about uniform at every size.
    """
    return min(MAX_BUCKET, max(32, 1 << max(int(n).bit_length() - 1, 0)))


def calibrate(
    reference: ReferenceColumn,
    column_type: str,
    method: str,
    n: int,
    *,
    target: float = 0.01,
    rounds: int = 200,
    seed: int = 0,
    default: float | None = None,
) -> Calibration:
    """The calibrated threshold of ``method`` for windows of ``n`` values."""
    chosen = METHODS[method]
    if not 0 < target < 1:
        raise ValueError(f"target false-alarm rate must be in (0, 1), got {target!r}")
    rng = np.random.default_rng([seed, n])
    scores = np.empty(rounds)
    values = reference.values
    for i in range(rounds):
        window = values[rng.integers(0, values.size, size=n)]
        scores[i] = chosen.fn(reference, window, column_type=column_type)
    scores = scores[~np.isnan(scores)]
    usual = chosen.default_threshold if default is None else default
    if scores.size == 0:
        return Calibration(method, n, target, usual, usual)
    if chosen.kind == "distance":
        limit = float(np.quantile(scores, 1 - target, method="higher"))
        return Calibration(method, n, target, limit, max(limit, usual))
    limit = float(np.quantile(scores, target, method="lower"))
    return Calibration(method, n, target, limit, min(limit, usual))
