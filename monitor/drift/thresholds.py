"""Thresholds: Evidently's fixed ones, or calibrated per column and window size.

``drift.thresholds`` chooses between two modes:

- ``evidently``: each method's fixed default threshold (Wasserstein 0.1, Jensen-Shannon
  0.1, KS p 0.05, ...) and Evidently's dataset rule (the share of drifted columns reaches
  ``drift_share``): the decisions are Evidently's.
- ``calibrated`` (the default): each column's threshold is the score a *stationary* window
  of the same size exceeds with probability ``alpha`` (the target false-alarm rate per
  column and window, 1% by default), from the column's null distribution
  (:mod:`monitor.drift.nulls`). It is lower than the fixed default when the window is
  large enough, higher when it is small. A column is flagged only when its shift is
  also at least the method's minimum effect (:data:`~monitor.drift.nulls.FLOORS`), so a
  negligible shift in a huge window is not drift. The dataset verdict counts only the
  columns that Benjamini-Hochberg at ``alpha`` keeps over all the window's columns: it
  controls the false-discovery rate over columns, and so a window where nothing moved
  is called drifted with probability at most ``alpha``.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np

from monitor.drift.methods import METHODS
from monitor.drift.nulls import COMPANION, FLOORS, MIN_ROWS, ColumnNull

MODES = ("calibrated", "evidently")


@dataclass(frozen=True)
class Calibrated:
    """The calibrated threshold of one column: its null, the target rate and floors."""

    null: ColumnNull
    alpha: float = 0.01

    def threshold(self, method: str, n: int, column_type: str) -> float:
        """The score at which a window of ``n`` values is flagged (floor included for
        distances; a p-value test's floor applies to its companion distance)."""
        chosen = METHODS[method]
        limit = self.null.limit(method, n, self.alpha, column_type)
        if limit is None:
            return chosen.default_threshold
        if chosen.kind == "distance":
            return max(limit, FLOORS.get(method, 0.0))
        return limit

    def tail(self, method: str, score: float, n: int, column_type: str) -> float:
        return self.null.tail(method, score, n, column_type)

    @staticmethod
    def floor(method: str, column_type: str) -> tuple[str, float] | None:
        """For a p-value test, the companion distance and its minimum effect."""
        if METHODS[method].kind == "distance":
            return None
        companion = COMPANION["numeric" if column_type == "numeric" else "categorical"]
        return companion, FLOORS[companion]


@dataclass(frozen=True)
class MemoCalibrated(Calibrated):
    """A :class:`Calibrated` threshold that computes its limit once per method, window
    size and column type (a pure function of them, and of the null and rate)."""

    _limits: dict[tuple[str, int, str], float] = field(
        default_factory=dict, compare=False, repr=False
    )

    def threshold(self, method: str, n: int, column_type: str) -> float:
        key = (method, n, column_type)
        limit = self._limits.get(key)
        if limit is None:
            limit = self._limits[key] = super().threshold(method, n, column_type)
        return limit


def min_rows(method: str, configured: int | None = None) -> int:
    """Fewest values a column needs to be judged with ``method``."""
    return configured if configured is not None else MIN_ROWS.get(method, 30)


def benjamini_hochberg(p_values: Sequence[float], q: float) -> list[bool]:
    """Which hypotheses Benjamini-Hochberg rejects at false-discovery rate ``q`` (NaN
    p-values are never rejected and do not count)."""
    p = np.array([1.0 if math.isnan(x) else x for x in p_values], dtype=np.float64)
    m = int(sum(not math.isnan(x) for x in p_values))
    if m == 0:
        return [False] * len(p_values)
    order = np.argsort(p, kind="stable")
    passed = p[order] <= q * np.arange(1, p.size + 1) / m
    k = int(np.max(np.flatnonzero(passed), initial=-1)) + 1
    rejected = np.zeros(p.size, dtype=bool)
    rejected[order[:k]] = True
    return [bool(r) and not math.isnan(x) for r, x in zip(rejected, p_values, strict=True)]
