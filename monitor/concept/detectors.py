"""Sequential concept-drift detectors on the stream of per-prediction errors.

Each detector reads one value at a time and says, after every value, whether the stream
has just changed:

- :class:`DDM` and :class:`HDDMA` read 0/1 error indicators (1: the model was wrong) and
  also raise a warning before a drift;
- :class:`ADWIN` and :class:`PageHinkley` read any finite number (an error indicator, a
  loss, a residual).

They reproduce river 0.26.1 (``river.drift``) exactly, default parameters included: the
same input gives the same detections at the same positions, and after a detection the
detector starts afresh on the next value, as river's do. The tests cross-check this.

The shape follows scikit-learn and river: a keyword-only ``__init__`` that only stores
its parameters, ``update(x)`` that returns the detector, the learned state in attributes
ending in ``_`` (created by the first update), and the ``drift_detected`` /
``warning_detected`` properties. :meth:`SequentialDetector.state` gives a JSON-able dict
and :meth:`SequentialDetector.from_state` rebuilds the detector from it, so a detector
persisted between two runs resumes exactly where it stopped. After a detection,
:attr:`SequentialDetector.change` is the detector's own account of it (:class:`Change`:
the mean before its change point and since); river has no such attribute.

The base classes live in :mod:`monitor.concept.sequential`, ADWIN in
:mod:`monitor.concept.adwin`; everything is importable from here.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

from monitor.concept.adwin import ADWIN
from monitor.concept.sequential import (
    STATE_VERSION,
    BinaryDetector,
    Change,
    SequentialDetector,
    detect,
    split_change,
)

__all__ = [
    "ADWIN",
    "DDM",
    "HDDMA",
    "STATE_VERSION",
    "BinaryDetector",
    "Change",
    "PageHinkley",
    "SequentialDetector",
    "detect",
]


class DDM(BinaryDetector):
    """Drift Detection Method (Gama, Medas, Castillo and Rodrigues, "Learning with Drift
    Detection", SBIA 2004, LNCS 3171, pp. 286-295).

    The error rate ``p`` of a learner is the mean of the 0/1 errors and ``s =
    sqrt(p (1 - p) / n)`` its standard deviation. From the value after the first
    ``warm_start`` on, the detector remembers ``p_min`` and ``s_min`` where ``p + s`` was
    smallest, and signals a warning when ``p + s > p_min + warning_threshold * s_min``
    and a drift when ``p + s > p_min + drift_threshold * s_min`` (river's
    ``drift.binary.DDM``).

    ``p_min`` and ``s_min`` freeze at the smallest ``p + s`` ever seen, so a lucky run of
    correct predictions just after the warm start lowers the thresholds for good: false
    alarms follow, and a later change takes longer to show. In the extreme, when no error
    came in the first ``warm_start + 1`` values, both are 0 and the first error is a drift.
    """

    _params = ("warm_start", "warning_threshold", "drift_threshold")

    n_: int
    p_: float  # running mean of the errors
    p_min_: float | None  # error rate and its deviation where p + s was smallest
    s_min_: float | None
    n_min_: int  # and the number of values there
    ps_min_: float

    def __init__(
        self, *, warm_start: int = 30, warning_threshold: float = 2.0, drift_threshold: float = 3.0
    ) -> None:
        self.warm_start = warm_start
        self.warning_threshold = warning_threshold
        self.drift_threshold = drift_threshold

    def _reset(self) -> None:
        self.n_ = 0
        self.p_ = 0.0
        self.p_min_ = None
        self.s_min_ = None
        self.n_min_ = 0
        self.ps_min_ = math.inf
        self.warning_detected_ = False
        self.drift_detected_ = False

    def _step(self, x: float) -> None:
        self.n_ += 1
        n = self.n_
        self.p_ += (1.0 / n) * (x - self.p_)
        p = self.p_
        s = math.sqrt(p * (1 - p) / n)
        if n <= self.warm_start:
            return
        if p + s <= self.ps_min_:
            self.p_min_, self.s_min_, self.n_min_ = p, s, n
            self.ps_min_ = p + s
        assert self.p_min_ is not None and self.s_min_ is not None  # set on the first pass
        self.warning_detected_ = p + s > self.p_min_ + self.warning_threshold * self.s_min_
        if p + s > self.p_min_ + self.drift_threshold * self.s_min_:
            self.drift_detected_ = True
            self.warning_detected_ = False

    def _change(self) -> Change:
        # the error rate up to where p + s was smallest, against the rate since
        assert self.p_min_ is not None
        return split_change(self.n_, self.p_ * self.n_, self.n_min_, self.p_min_ * self.n_min_)

    def _learned(self) -> dict[str, Any]:
        return {
            "n": self.n_,
            "p": self.p_,
            "p_min": self.p_min_,
            "s_min": self.s_min_,
            "n_min": self.n_min_,
            "warning_detected": self.warning_detected_,
            "drift_detected": self.drift_detected_,
        }

    def _restore(self, learned: Mapping[str, Any]) -> None:
        self.n_ = int(learned["n"])
        self.p_ = float(learned["p"])
        p_min, s_min = learned["p_min"], learned["s_min"]
        if p_min is None or s_min is None:
            self.p_min_, self.s_min_, self.ps_min_ = None, None, math.inf
        else:
            self.p_min_, self.s_min_ = float(p_min), float(s_min)
            self.ps_min_ = self.p_min_ + self.s_min_  # the very sum the update stored
        self.n_min_ = int(learned.get("n_min", 0))  # absent from states before Change
        self.warning_detected_ = bool(learned["warning_detected"])
        self.drift_detected_ = bool(learned["drift_detected"])


class HDDMA(BinaryDetector):
    """Drift detection with Hoeffding's bounds and the moving-average test (HDDM_A;
    Frías-Blanco, del Campo-Ávila, Ramos-Jiménez, Morales-Bueno, Ortiz-Díaz and
    Caballero-Mota, "Online and non-parametric drift detection methods based on
    Hoeffding's bounds", IEEE TKDE 27(3), 2015, pp. 810-823), as MOA and river's
    ``drift.binary.HDDMA`` implement it.

    The detector keeps the mean ``z`` of all values since the last reset and a cut point:
    the prefix whose mean plus its Hoeffding bound was smallest. It signals a drift when
    the mean rose above the cut point's by more than the A-test bound at confidence
    ``drift_confidence``, a warning at ``warning_confidence``. With ``two_sided_test`` a
    second cut point (largest mean minus bound) watches for decreases as well; a decrease
    sets the drift or warning flag without clearing the other, as in river.
    """

    _params = ("drift_confidence", "warning_confidence", "two_sided_test")

    n_: int  # values since the last reset
    mean_: float
    low_n_: int  # cut point for increases: its length and mean
    low_mean_: float
    high_n_: int  # cut point for decreases
    high_mean_: float

    def __init__(
        self,
        *,
        drift_confidence: float = 0.001,
        warning_confidence: float = 0.005,
        two_sided_test: bool = False,
    ) -> None:
        self.drift_confidence = drift_confidence
        self.warning_confidence = warning_confidence
        self.two_sided_test = two_sided_test

    def _reset(self) -> None:
        for name in ("drift_confidence", "warning_confidence"):
            value = getattr(self, name)
            if not 0 < value < 1:
                raise ValueError(f"HDDMA {name} must be in (0, 1), got {value!r}")
        self.n_ = 0
        self.mean_ = 0.0
        self.low_n_, self.low_mean_ = 0, 0.0
        self.high_n_, self.high_mean_ = 0, 0.0
        self.warning_detected_ = False
        self.drift_detected_ = False

    def _bound(self, n: int) -> float:
        """Hoeffding's bound on the mean of ``n`` values in [0, 1]."""
        return math.sqrt(1.0 / (2 * n) * math.log(1.0 / self.drift_confidence))

    def _step(self, x: float) -> None:
        self.n_ += 1
        n = self.n_
        self.mean_ += (1.0 / n) * (x - self.mean_)
        mean = self.mean_
        if self.low_n_ == 0:
            self.low_n_, self.low_mean_ = n, mean
        if self.high_n_ == 0:
            self.high_n_, self.high_mean_ = n, mean

        bound = self._bound(n)
        if self.low_mean_ + self._bound(self.low_n_) >= mean + bound:
            self.low_n_, self.low_mean_ = n, mean
        if self.high_mean_ - self._bound(self.high_n_) <= mean - bound:
            self.high_n_, self.high_mean_ = n, mean

        if self._exceeds(mean - self.low_mean_, self.low_n_, self.drift_confidence):
            self.warning_detected_, self.drift_detected_ = False, True
        elif self._exceeds(mean - self.low_mean_, self.low_n_, self.warning_confidence):
            self.warning_detected_, self.drift_detected_ = True, False
        else:
            self.warning_detected_, self.drift_detected_ = False, False

        if self.two_sided_test:
            if self._exceeds(self.high_mean_ - mean, self.high_n_, self.drift_confidence):
                self.drift_detected_ = True
            elif self._exceeds(self.high_mean_ - mean, self.high_n_, self.warning_confidence):
                self.warning_detected_ = True

    def _change(self) -> Change:
        # the cut point whose test fired: the one for increases unless only the other did
        up = self._exceeds(self.mean_ - self.low_mean_, self.low_n_, self.drift_confidence)
        n_cut, mean_cut = (self.low_n_, self.low_mean_) if up else (self.high_n_, self.high_mean_)
        return split_change(self.n_, self.mean_ * self.n_, n_cut, mean_cut * n_cut)

    def _exceeds(self, difference: float, cut: int, confidence: float) -> bool:
        """The A-test: does the mean since the cut point differ from the mean up to it by
        ``difference`` at least the bound for ``cut`` and ``n_ - cut`` values?"""
        n = self.n_
        if cut == n:
            return False
        m = (n - cut) / cut * (1.0 / n)
        return difference >= math.sqrt(m / 2 * math.log(2.0 / confidence))

    def _learned(self) -> dict[str, Any]:
        return {
            "n": self.n_,
            "mean": self.mean_,
            "low": [self.low_n_, self.low_mean_],
            "high": [self.high_n_, self.high_mean_],
            "warning_detected": self.warning_detected_,
            "drift_detected": self.drift_detected_,
        }

    def _restore(self, learned: Mapping[str, Any]) -> None:
        self.n_ = int(learned["n"])
        self.mean_ = float(learned["mean"])
        low_n, low_mean = learned["low"]
        high_n, high_mean = learned["high"]
        self.low_n_, self.low_mean_ = int(low_n), float(low_mean)
        self.high_n_, self.high_mean_ = int(high_n), float(high_mean)
        self.warning_detected_ = bool(learned["warning_detected"])
        self.drift_detected_ = bool(learned["drift_detected"])


class PageHinkley(SequentialDetector):
    """The Page-Hinkley test (Page, "Continuous inspection schemes", Biometrika 41, 1954,
    pp. 100-115; Hinkley, "Inference about the change-point from cumulative sum tests",
    Biometrika 58, 1971, pp. 509-523) with a fading factor ``alpha`` on the cumulative
    sums (Gama, Sebastião and Rodrigues, "On evaluating stream learning algorithms",
    Machine Learning 90, 2013, pp. 317-346), as river's ``drift.PageHinkley``.

    With ``m`` the running mean (this value included), the sums
    ``U = alpha U + (x - m) - delta`` and ``L = alpha L + (x - m) + delta`` are tracked
    with ``min U`` and ``max L``; from ``min_instances`` values on, a drift is an
    increase ``U - min U > threshold`` (``mode="up"`` or ``"both"``) or a decrease
    ``max L - L > threshold`` (``"down"`` or ``"both"``). As in river, ``max L`` starts
    at -1, not at minus infinity.

    Hinkley's estimate of the change point is where ``U`` was smallest (``L`` largest):
    :attr:`change` compares the mean of the values up to there with the mean since.

    With ``alpha < 1`` (river's default 0.9999) the sums fade but their extremes do not:
    on a stationary stream ``U`` settles around ``-delta / (1 - alpha)`` instead of
    falling for ever, its extreme stays where a low excursion left it, and the mere
    return from that excursion reads as an increase. On a 0/1 error stream at a steady
    4.3% the defaults raised 13 false alarms in 1.2 million values, ``alpha=1`` none;
    so the performance job runs ``alpha=1``, the classic Page-Hinkley test.
    """

    _params = ("min_instances", "delta", "threshold", "alpha", "mode")
    _modes = ("up", "down", "both")

    n_: int
    mean_: float
    sum_increase_: float
    sum_decrease_: float
    min_increase_: float
    max_decrease_: float
    at_min_increase_: list[float]  # [values, their sum] where U was smallest
    at_max_decrease_: list[float]  # and where L was largest

    def __init__(
        self,
        *,
        min_instances: int = 30,
        delta: float = 0.005,
        threshold: float = 50.0,
        alpha: float = 1 - 0.0001,
        mode: str = "both",
    ) -> None:
        self.min_instances = min_instances
        self.delta = delta
        self.threshold = threshold
        self.alpha = alpha
        self.mode = mode

    def _reset(self) -> None:
        if self.mode not in self._modes:
            raise ValueError(f"PageHinkley mode must be one of {self._modes}, got {self.mode!r}")
        self.n_ = 0
        self.mean_ = 0.0
        self.sum_increase_ = 0.0
        self.sum_decrease_ = 0.0
        self.min_increase_ = math.inf  # finite after the first update
        self.max_decrease_ = -1.0
        self.at_min_increase_ = [0, 0.0]
        self.at_max_decrease_ = [0, 0.0]
        self.drift_detected_ = False

    def _step(self, x: float) -> None:
        self.n_ += 1
        self.mean_ += (1.0 / self.n_) * (x - self.mean_)
        deviation = x - self.mean_
        self.sum_increase_ = self.alpha * self.sum_increase_ + deviation - self.delta
        self.sum_decrease_ = self.alpha * self.sum_decrease_ + deviation + self.delta
        if self.sum_increase_ < self.min_increase_:
            self.min_increase_ = self.sum_increase_
            self.at_min_increase_ = [self.n_, self.mean_ * self.n_]
        if self.sum_decrease_ > self.max_decrease_:
            self.max_decrease_ = self.sum_decrease_
            self.at_max_decrease_ = [self.n_, self.mean_ * self.n_]
        if self.n_ >= self.min_instances:
            up = self.mode != "down" and self.sum_increase_ - self.min_increase_ > self.threshold
            down = self.mode != "up" and self.max_decrease_ - self.sum_decrease_ > self.threshold
            self.drift_detected_ = up or down

    def _change(self) -> Change:
        # the side that fired (the increase when both did)
        up = self.mode != "down" and self.sum_increase_ - self.min_increase_ > self.threshold
        n_cut, total_cut = self.at_min_increase_ if up else self.at_max_decrease_
        return split_change(self.n_, self.mean_ * self.n_, int(n_cut), total_cut)

    def _learned(self) -> dict[str, Any]:
        return {
            "n": self.n_,
            "mean": self.mean_,
            "sum_increase": self.sum_increase_,
            "sum_decrease": self.sum_decrease_,
            "min_increase": self.min_increase_,
            "max_decrease": self.max_decrease_,
            "at_min_increase": list(self.at_min_increase_),
            "at_max_decrease": list(self.at_max_decrease_),
            "drift_detected": self.drift_detected_,
        }

    def _restore(self, learned: Mapping[str, Any]) -> None:
        self.n_ = int(learned["n"])
        self.mean_ = float(learned["mean"])
        self.sum_increase_ = float(learned["sum_increase"])
        self.sum_decrease_ = float(learned["sum_decrease"])
        self.min_increase_ = float(learned["min_increase"])
        self.max_decrease_ = float(learned["max_decrease"])
        # absent from states saved before Change existed: the change point is unknown
        n, total = learned.get("at_min_increase", [0, 0.0])
        self.at_min_increase_ = [int(n), float(total)]
        n, total = learned.get("at_max_decrease", [0, 0.0])
        self.at_max_decrease_ = [int(n), float(total)]
        self.drift_detected_ = bool(learned["drift_detected"])
