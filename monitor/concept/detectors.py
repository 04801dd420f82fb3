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
persisted between two runs resumes exactly where it stopped.
"""

from __future__ import annotations

import abc
import math
from collections.abc import Callable, Iterable, Mapping
from typing import Any, ClassVar, Self

import numpy as np

STATE_VERSION = 1


class SequentialDetector(abc.ABC):
    """A drift detector fed one value at a time.

    ``state()`` returns ``{"detector": name, "version": 1, "params": {...},
    "learned": {...} | None}`` (``None`` before the first update); every value in it is a
    JSON number, boolean, null, list or string, and floats round-trip exactly through
    :mod:`json`.
    """

    _params: ClassVar[tuple[str, ...]]
    _kinds: ClassVar[dict[str, type[SequentialDetector]]] = {}

    drift_detected_: bool

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        if "_params" in cls.__dict__:  # a concrete detector
            SequentialDetector._kinds[cls.__name__] = cls

    def update(self, x: float) -> Self:
        """Read one value; afterwards ``drift_detected`` says whether it revealed a drift."""
        value = self._check_value(x)
        # No learned state before the first update (the constructor only stores the
        # parameters); after a detection the detector starts afresh, as river's do.
        if getattr(self, "drift_detected_", True):
            self._reset()
        self._step(value)
        return self

    @property
    def drift_detected(self) -> bool:
        """Whether the last update detected a drift."""
        return bool(getattr(self, "drift_detected_", False))

    def get_params(self) -> dict[str, Any]:
        """The constructor's parameters, by name."""
        return {name: getattr(self, name) for name in self._params}

    def state(self) -> dict[str, Any]:
        """Everything needed to resume this detector, as a JSON-able dict."""
        learned = self._learned() if hasattr(self, "drift_detected_") else None
        return {
            "detector": type(self).__name__,
            "version": STATE_VERSION,
            "params": self.get_params(),
            "learned": learned,
        }

    @classmethod
    def from_state(cls, state: Mapping[str, Any]) -> Self:
        """The detector that :meth:`state` described.

        Called on :class:`SequentialDetector` itself it rebuilds whichever detector the
        state names; called on a subclass it insists on that subclass.
        """
        name = state.get("detector")
        kind = cls._kinds.get(name) if isinstance(name, str) else None
        if kind is None or not issubclass(kind, cls):
            raise ValueError(f"state of detector {name!r} cannot be restored as a {cls.__name__}")
        if state.get("version") != STATE_VERSION:
            raise ValueError(
                f"state of detector {name!r} has version {state.get('version')!r}, "
                f"expected {STATE_VERSION}"
            )
        params = state.get("params")
        if not isinstance(params, Mapping) or set(params) != set(kind._params):
            raise ValueError(
                f"state of detector {name!r} has params {params!r}, expected keys {kind._params}"
            )
        detector = kind(**params)
        learned = state.get("learned")
        if learned is not None:
            try:
                detector._restore(learned)
            except (KeyError, TypeError) as exc:
                raise ValueError(f"malformed learned state of detector {name!r}: {exc}") from exc
        return detector

    def __repr__(self) -> str:
        args = ", ".join(f"{k}={v!r}" for k, v in self.get_params().items())
        return f"{type(self).__name__}({args})"

    @staticmethod
    def _check_value(x: float) -> float:
        value = float(x)
        if not math.isfinite(value):
            raise ValueError(f"a drift detector needs finite values, got {x!r}")
        return value

    @abc.abstractmethod
    def _reset(self) -> None:
        """Validate the parameters and set the learned state to its initial value."""

    @abc.abstractmethod
    def _step(self, x: float) -> None:
        """Update the learned state with one (checked) value."""

    @abc.abstractmethod
    def _learned(self) -> dict[str, Any]:
        """The learned state as a JSON-able dict."""

    @abc.abstractmethod
    def _restore(self, learned: Mapping[str, Any]) -> None:
        """Set the learned state from :meth:`_learned`'s dict."""


class BinaryDetector(SequentialDetector):
    """A detector of 0/1 error indicators that also raises warnings."""

    warning_detected_: bool

    @property
    def warning_detected(self) -> bool:
        """Whether the last update put the detector in its warning zone."""
        return bool(getattr(self, "warning_detected_", False))

    @staticmethod
    def _check_value(x: float) -> float:
        if x != 0 and x != 1:
            raise ValueError(f"{x!r} is not an error indicator (0: correct, 1: error)")
        return float(x)


def detect(
    detector_factory: Callable[[], SequentialDetector], values: Iterable[float]
) -> list[int]:
    """0-based positions of the values after which a new detector from the factory
    signalled a drift, in order (the detector resets after each, as in :meth:`update`)."""
    detector = detector_factory()
    if isinstance(values, np.ndarray):
        values = values.tolist()  # Python floats: much faster to update with than numpy's
    update = detector.update
    return [i for i, x in enumerate(values) if update(x).drift_detected]


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
            self.p_min_, self.s_min_ = p, s
            self.ps_min_ = p + s
        assert self.p_min_ is not None and self.s_min_ is not None  # set on the first pass
        self.warning_detected_ = p + s > self.p_min_ + self.warning_threshold * self.s_min_
        if p + s > self.p_min_ + self.drift_threshold * self.s_min_:
            self.drift_detected_ = True
            self.warning_detected_ = False

    def _learned(self) -> dict[str, Any]:
        return {
            "n": self.n_,
            "p": self.p_,
            "p_min": self.p_min_,
            "s_min": self.s_min_,
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
    """

    _params = ("min_instances", "delta", "threshold", "alpha", "mode")
    _modes = ("up", "down", "both")

    n_: int
    mean_: float
    sum_increase_: float
    sum_decrease_: float
    min_increase_: float
    max_decrease_: float

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
        self.drift_detected_ = False

    def _step(self, x: float) -> None:
        self.n_ += 1
        self.mean_ += (1.0 / self.n_) * (x - self.mean_)
        deviation = x - self.mean_
        self.sum_increase_ = self.alpha * self.sum_increase_ + deviation - self.delta
        self.sum_decrease_ = self.alpha * self.sum_decrease_ + deviation + self.delta
        self.min_increase_ = min(self.min_increase_, self.sum_increase_)
        self.max_decrease_ = max(self.max_decrease_, self.sum_decrease_)
        if self.n_ >= self.min_instances:
            up = self.mode != "down" and self.sum_increase_ - self.min_increase_ > self.threshold
            down = self.mode != "up" and self.max_decrease_ - self.sum_decrease_ > self.threshold
            self.drift_detected_ = up or down

    def _learned(self) -> dict[str, Any]:
        return {
            "n": self.n_,
            "mean": self.mean_,
            "sum_increase": self.sum_increase_,
            "sum_decrease": self.sum_decrease_,
            "min_increase": self.min_increase_,
            "max_decrease": self.max_decrease_,
            "drift_detected": self.drift_detected_,
        }

    def _restore(self, learned: Mapping[str, Any]) -> None:
        self.n_ = int(learned["n"])
        self.mean_ = float(learned["mean"])
        self.sum_increase_ = float(learned["sum_increase"])
        self.sum_decrease_ = float(learned["sum_decrease"])
        self.min_increase_ = float(learned["min_increase"])
        self.max_decrease_ = float(learned["max_decrease"])
        self.drift_detected_ = bool(learned["drift_detected"])


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
        self.drift_detected_ = False

    def _step(self, x: float) -> None:
        self._insert(x)
        self.tick_ += 1
        if self.tick_ % self.clock != 0 or self.width_ <= self.grace_period:
            self.drift_detected_ = False
            return
        detected = False
        while self._cut_found():
            detected = True
            self._drop_oldest()
        self.drift_detected_ = detected

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
        self.drift_detected_ = bool(learned["drift_detected"])
