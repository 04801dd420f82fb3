"""ADWIN, the adaptive-windowing detector (see :mod:`monitor.concept.detectors`)."""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

from monitor.concept.sequential import Change, SequentialDetector, split_change


class ADWIN(SequentialDetector):
    """Adaptive windowing (ADWIN2 of Bifet and Gavaldà, "Learning from time-changing data
    with adaptive windowing", SIAM SDM 2007, pp. 443-448), as river's ``drift.ADWIN``.

    The window of recent values is kept compressed in exponential histograms: row ``i``
    holds up to ``max_buckets`` buckets that each summarise ``2**i`` values by their sum
    and the sum of squared deviations from their mean; when a row overflows, its two
    oldest buckets merge into one bucket of the next row. Every ``clock`` values, once the
    window is longer than ``grace_period``, every split of the window at a bucket
    boundary into an older part ``W0`` and a newer ``W1``, both at least
    ``min_window_length`` long, is tested:

        |mean(W0) - mean(W1)| > sqrt(2 m v d) + 2/3 d m,
        m = 1/(n0 - L + 1) + 1/(n1 - L + 1),  d = ln(2 ln(n) / delta),  L = min_window_length

    with ``n`` the window's length and ``v`` its variance. While a split passes, the
    oldest bucket is dropped and the test repeats. Any drop is a detection; river then
    discards the whole window on the next update, and so does this class.
    """

    _params = ("delta", "clock", "max_buckets", "min_window_length", "grace_period")

    totals_: list[list[float]]  # per row, oldest bucket first: sums of the bucket's values
    deviations_: list[list[float]]  # per row: sums of squared deviations from the bucket's mean
    width_: int  # values in the window
    total_: float  # their sum
    variance_: float  # their sum of squared deviations from the window's mean
    tick_: int  # values since the last reset
    dropped_: list[float]  # [values, their sum] dropped by the last detection

    def __init__(
        self,
        *,
        delta: float = 0.002,
        clock: int = 32,
        max_buckets: int = 5,
        min_window_length: int = 5,
        grace_period: int = 10,
    ) -> None:
        self.delta = delta
        self.clock = clock
        self.max_buckets = max_buckets
        self.min_window_length = min_window_length
        self.grace_period = grace_period

    @property
    def width(self) -> int:
        """The number of values in the window (0 before the first update)."""
        return getattr(self, "width_", 0)

    @property
    def estimation(self) -> float:
        """The mean of the window (0 when it is empty)."""
        return self.total_ / self.width_ if self.width else 0.0

    def _reset(self) -> None:
        if not 0 < self.delta < 1:
            raise ValueError(f"ADWIN delta must be in (0, 1), got {self.delta!r}")
        for name in ("clock", "max_buckets", "min_window_length"):
            if getattr(self, name) < 1:
                raise ValueError(f"ADWIN {name} must be at least 1, got {getattr(self, name)!r}")
        self.totals_ = [[]]
        self.deviations_ = [[]]
        self.width_ = 0
        self.total_ = 0.0
        self.variance_ = 0.0
        self.tick_ = 0
        self.dropped_ = [0, 0.0]
        self.drift_detected_ = False

    def _step(self, x: float) -> None:
        self._insert(x)
        self.tick_ += 1
        if self.tick_ % self.clock != 0 or self.width_ <= self.grace_period:
            self.drift_detected_ = False
            return
        width, total = self.width_, self.total_
        detected = False
        while self._cut_found():
            detected = True
            self._drop_oldest()
        self.drift_detected_ = detected
        if detected:
            self.dropped_ = [width - self.width_, total - self.total_]

    def _change(self) -> Change:
        # the older part of the window it dropped against the part it kept
        n_cut, total_cut = self.dropped_
        return split_change(
            int(n_cut) + self.width_, total_cut + self.total_, int(n_cut), total_cut
        )

    def _insert(self, x: float) -> None:
        # Welford's update of the window's sum of squared deviations
        self.width_ += 1
        width = self.width_
        if width > 1:
            d = x - self.total_ / (width - 1)
            self.variance_ += (width - 1) * d * d / width
        self.total_ += x

        totals, deviations = self.totals_, self.deviations_
        totals[0].append(x)
        deviations[0].append(0.0)
        row = 0
        while len(totals[row]) > self.max_buckets:
            # merge the two oldest buckets of the row (Chan et al.'s pairwise variance)
            size = 1 << row
            t0, t1 = totals[row][0], totals[row][1]
            mu0, mu1 = t0 / size, t1 / size
            merged = (
                deviations[row][0] + deviations[row][1] + size * 0.5 * (mu0 - mu1) * (mu0 - mu1)
            )
            if row + 1 == len(totals):
                totals.append([])
                deviations.append([])
            totals[row + 1].append(t0 + t1)
            deviations[row + 1].append(merged)
            del totals[row][:2], deviations[row][:2]
            row += 1

    def _cut_found(self) -> bool:
        """Whether some split of the window into older and newer parts has different means."""
        width = self.width_
        log_width = math.log(width)
        if log_width <= 0.0:  # one value: river's arithmetic gives NaN bounds, so no cut
            return False
        d = math.log(2.0 * log_width / self.delta)
        window_variance = self.variance_ / width
        least = self.min_window_length
        n0, u0, n1, u1 = 0, 0.0, width, self.total_
        last_row = len(self.totals_) - 1
        for row in range(last_row, -1, -1):  # oldest buckets first
            size = 1 << row
            buckets = self.totals_[row]
            last = len(buckets) - 1
            for k, total in enumerate(buckets):
                n0 += size
                n1 -= size
                u0 += total
                u1 -= total
                if row == 0 and k == last:  # W1 would be empty
                    return False
                if n1 >= least and n0 >= least:
                    m = 1.0 / (n0 - least + 1.0) + 1.0 / (n1 - least + 1.0)
                    spread = 2.0 * m * window_variance * d
                    if spread < 0.0:  # rounding made the variance negative: NaN in river
                        continue
                    epsilon = math.sqrt(spread) + 2.0 / 3.0 * d * m
                    if abs(u0 / n0 - u1 / n1) > epsilon:
                        return True
        return False

    def _drop_oldest(self) -> None:
        row = len(self.totals_) - 1
        size = 1 << row
        total, deviation = self.totals_[row].pop(0), self.deviations_[row].pop(0)
        mean = total / size
        self.width_ -= size
        self.total_ -= total
        mean_rest = self.total_ / self.width_
        self.variance_ -= deviation + size * self.width_ * (mean - mean_rest) * (
            mean - mean_rest
        ) / (size + self.width_)
        # Drop the emptied rows at the end (several only when max_buckets is 1, where
        # river 0.26.1 keeps the second and panics on its next drop).
        while len(self.totals_) > 1 and not self.totals_[-1]:
            self.totals_.pop()
            self.deviations_.pop()

    def _learned(self) -> dict[str, Any]:
        return {
            "totals": [list(row) for row in self.totals_],
            "deviations": [list(row) for row in self.deviations_],
            "width": self.width_,
            "total": self.total_,
            "variance": self.variance_,
            "tick": self.tick_,
            "dropped": list(self.dropped_),
            "drift_detected": self.drift_detected_,
        }

    def _restore(self, learned: Mapping[str, Any]) -> None:
        self.totals_ = [[float(t) for t in row] for row in learned["totals"]]
        self.deviations_ = [[float(v) for v in row] for row in learned["deviations"]]
        if [len(row) for row in self.totals_] != [len(row) for row in self.deviations_]:
            raise TypeError("totals and deviations have different shapes")
        self.width_ = int(learned["width"])
        self.total_ = float(learned["total"])
        self.variance_ = float(learned["variance"])
        self.tick_ = int(learned["tick"])
        n, total = learned.get("dropped", [0, 0.0])  # absent before Change existed
        self.dropped_ = [int(n), float(total)]
        self.drift_detected_ = bool(learned["drift_detected"])
