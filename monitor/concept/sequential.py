"""The base of the sequential detectors (see :mod:`monitor.concept.detectors`): one value
at a time in, ``drift_detected`` out, the learned state persisted as a JSON-able dict,
and :class:`Change`, the detector's own estimate of the change it signalled."""

from __future__ import annotations

import abc
import math
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any, ClassVar, Self

import numpy as np

STATE_VERSION = 1


@dataclass(frozen=True)
class Change:
    """A detector's own account of the change it just signalled: the mean of the values
    it places before the change and the mean of those after, and how many values each
    rests on (the older part may have been summarised, e.g. ADWIN's dropped buckets)."""

    before: float
    after: float
    n_before: int
    n_after: int

    @property
    def rising(self) -> bool:
        return self.after > self.before


def split_change(n: int, total: float, n_cut: int, total_cut: float) -> Change:
    """The change between the first ``n_cut`` values (summing ``total_cut``) and the rest
    of ``n`` values summing ``total``."""
    rest = n - n_cut
    return Change(
        before=total_cut / n_cut if n_cut else math.nan,
        after=(total - total_cut) / rest if rest else math.nan,
        n_before=n_cut,
        n_after=rest,
    )


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

    @property
    def change(self) -> Change | None:
        """The detector's estimate of the change the last update detected: where it
        places the change and the mean before and after (None without a detection)."""
        return self._change() if self.drift_detected else None

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
    def _change(self) -> Change:
        """The change just detected, from the learned state (called only then)."""

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
