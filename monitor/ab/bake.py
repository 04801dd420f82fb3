"""The bake period after a promotion: is the new champion still as good as the A/B test
measured it? (pure)

The performance job stores, per window, the realized performance (once labels arrive)
and the label-free CBPE estimate, each metric with its own uncertainty. During the bake
the windows served by the new champion are pooled per metric into one reading: the
rows' count, their mean value, and a per-row standard deviation recovered from each
window's standard error. The reading gets an always-valid interval (the same confidence
sequence as the A/B analysis, :func:`monitor.ab.sequential.radius`), because the bake
looks again every cycle: a fixed-sample interval checked each cycle would roll back a
healthy champion far more often than its level says.

A watch is **breached** when that interval lies entirely beyond the watch's limit (below
it for a higher-is-better metric, above it for a lower-is-better one) and the reading
has at least ``min_rows`` rows. The limit is the caller's (see
:func:`driftd.baking`'s docstring: the A/B's figure for the new champion less the
tolerated drop, or the previous champion's figure).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from typing import Any

from monitor.ab.sequential import radius, tuned_rho2

REALIZED, ESTIMATED = "realized", "estimated"


@dataclass(frozen=True)
class Reading:
    """One window's value of one metric: ``se`` is its standard error."""

    n: int
    value: float
    se: float


@dataclass(frozen=True)
class Pooled:
    n: int
    value: float
    sd: float  # per-row standard deviation


def pool(readings: Sequence[Reading]) -> Pooled | None:
    """The row-weighted mean of the windows' values and the per-row standard deviation
    of that mean (None without rows). Windows are independent rows' means, so the
    pooled mean's variance is ``sum(n_w^2 se_w^2) / N^2``; times ``N`` per row."""
    usable = [r for r in readings if r.n > 0 and math.isfinite(r.value) and math.isfinite(r.se)]
    total = sum(r.n for r in usable)
    if total == 0:
        return None
    value = sum(r.n * r.value for r in usable) / total
    variance = sum((r.n * r.se) ** 2 for r in usable) / total
    return Pooled(total, value, math.sqrt(variance))


@dataclass(frozen=True)
class Watch:
    """One metric from one source (realized or estimated) against its limit."""

    metric: str
    source: str  # REALIZED or ESTIMATED
    higher_is_better: bool
    limit: float
    basis: str  # where the limit comes from, in words
    n: int
    value: float | None  # None: no reading yet
    lower: float | None
    upper: float | None
    min_rows: int
    alpha: float

    @property
    def breached(self) -> bool:
        if self.value is None or self.lower is None or self.upper is None:
            return False
        if self.n < self.min_rows:
            return False
        return self.upper < self.limit if self.higher_is_better else self.lower > self.limit

    def describe(self) -> str:
        side = "at least" if self.higher_is_better else "at most"
        if self.value is None:
            return f"{self.source} {self.metric}: no reading yet (limit: {side} {self.limit:.4g})"
        return (
            f"{self.source} {self.metric} {self.value:.4g}, {1 - self.alpha:.0%} confidence "
            f"sequence [{self.lower:.4g}, {self.upper:.4g}] on {self.n} rows; limit: {side} "
            f"{self.limit:.4g} ({self.basis})"
        )

    def to_dict(self) -> dict[str, Any]:
        out = asdict(self)
        out["breached"] = self.breached
        return out


def watch(
    metric: str,
    source: str,
    readings: Sequence[Reading],
    *,
    higher_is_better: bool,
    limit: float,
    basis: str,
    alpha: float,
    min_rows: int,
) -> Watch:
    """The pooled reading of ``readings`` with its confidence sequence, against
    ``limit``. The sequence is tuned to be tightest at ``10 * min_rows`` rows."""
    pooled = pool(readings)
    if pooled is None:
        return Watch(
            metric, source, higher_is_better, limit, basis, 0, None, None, None, min_rows, alpha
        )
    half = pooled.sd * float(radius(pooled.n, alpha, tuned_rho2(10 * min_rows, alpha)))
    return Watch(
        metric,
        source,
        higher_is_better,
        limit,
        basis,
        pooled.n,
        pooled.value,
        pooled.value - half,
        pooled.value + half,
        min_rows,
        alpha,
    )


def limit_for(higher_is_better: bool, basis: float, max_drop: float) -> float:
    """``basis`` moved ``max_drop`` towards worse."""
    return basis - max_drop if higher_is_better else basis + max_drop


__all__ = [
    "ESTIMATED",
    "REALIZED",
    "Pooled",
    "Reading",
    "Watch",
    "limit_for",
    "pool",
    "watch",
]
