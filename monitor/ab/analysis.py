"""The A/B analysis of one cycle: checks in order, and a decision (pure).

Each cycle the A/B job reads, since the experiment started, the served predictions per
variant and the per-row metric values of the rows whose labels have matured, and calls
:func:`analyse`. The checks run in this order; the first that decides ends the cycle:

1. **Sample ratio** (:mod:`monitor.ab.srm`): the served counts against the configured
   split. A mismatch means **stop**: the analysis is invalid from here on and someone
   must look at the assignment; nothing is promoted or rolled back automatically.
2. **Minimum sample**: until both arms have ``min_sample`` labelled rows, **continue**
   (the intervals are reported, not acted on: the sequence's validity is asymptotic).
   If ``max_duration`` passes first: **roll back** (not enough evidence to promote).
3. **Guardrails**: a guardrail whose confidence sequence shows the challenger worse by
   more than its ``margin`` **rolls back** at once (once the guardrail's own rows, e.g.
   the negatives of a false-positive rate, reach ``min_sample`` in both arms).
4. **Primary metric**: its confidence sequence entirely on the better side **promotes**,
   entirely on the worse side **rolls back**.
5. **Maximum duration**: reached without a decision, **roll back** (inconclusive: the
   champion stays).
6. Otherwise **continue**.

Every interval is a two-sided ``1 - alpha`` confidence sequence
(:mod:`monitor.ab.sequential`), valid however often it is looked at, so the chance of
promoting a challenger that is not better is at most ``alpha / 2`` for any number of
cycles (one side of the sequence), and each guardrail's chance of a false breach too.

The rule itself, :func:`rule`, is vectorised so the simulations run it on thousands of
experiments at once; :func:`analyse` applies it to one experiment.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import timedelta
from enum import StrEnum
from typing import Any

import numpy as np

from monitor.ab.metrics import HIGHER_IS_BETTER, check_metric
from monitor.ab.sequential import Interval, Moments, difference_sequence, tuned_rho2
from monitor.ab.srm import (
    CHI_SQUARE,
    SEQUENTIAL,
    SRM_THRESHOLD,
    SRMResult,
    check_split,
    sample_ratio,
    sequential_sample_ratio,
)
from monitor.concept.performance import jsonable


class Action(StrEnum):
    CONTINUE = "continue"
    PROMOTE = "promote"
    ROLLBACK = "rollback"
    STOP = "stop"  # sample ratio mismatch: the analysis is invalid, a human must look


# rule() codes, in Action order
CONTINUE, PROMOTE, ROLLBACK = 0, 1, 2
_ACTIONS = (Action.CONTINUE, Action.PROMOTE, Action.ROLLBACK)


@dataclass(frozen=True)
class Guardrail:
    metric: str
    margin: float = 0.0  # tolerated worsening, in the metric's units (>= 0)


@dataclass(frozen=True)
class Settings:
    split: Mapping[str, float]  # {variant: share of traffic}
    metric: str = "accuracy"  # the primary metric (monitor.ab.metrics)
    alpha: float = 0.05
    guardrails: tuple[Guardrail, ...] = ()
    min_sample: int = 1000  # labelled rows per arm before any decision
    max_duration: timedelta = timedelta(days=14)
    tuning_rows: int | None = None  # where the sequence is tightest; None: 10 x min_sample
    srm_threshold: float = SRM_THRESHOLD
    srm_method: str = CHI_SQUARE  # or "sequential" (monitor.ab.srm)
    champion: str = "champion"
    challenger: str = "challenger"

    def __post_init__(self) -> None:
        shares = check_split(self.split)
        for arm in (self.champion, self.challenger):
            if arm not in shares:
                raise ValueError(f"variant {arm!r} is not in the split {sorted(shares)}")
        check_metric(self.metric)
        for g in self.guardrails:
            check_metric(g.metric)
            if g.margin < 0:
                raise ValueError(f"guardrail {g.metric!r} margin must be >= 0, got {g.margin!r}")
        if not 0 < self.alpha < 1:
            raise ValueError(f"alpha must be in (0, 1), got {self.alpha!r}")
        if self.srm_method not in (CHI_SQUARE, SEQUENTIAL):
            raise ValueError(
                f"srm_method must be {CHI_SQUARE!r} or {SEQUENTIAL!r}, got {self.srm_method!r}"
            )
        if self.min_sample < 1:
            raise ValueError(f"min_sample must be at least 1, got {self.min_sample!r}")

    @property
    def rho2(self) -> float:
        return tuned_rho2(self.tuning_rows or 10 * self.min_sample, self.alpha)


@dataclass(frozen=True)
class MetricResult:
    """One metric's comparison: ``difference`` is challenger minus champion, in the
    metric's own units, with its confidence-sequence bounds."""

    metric: str
    higher_is_better: bool
    champion: float
    challenger: float
    n_champion: int
    n_challenger: int
    difference: float
    lower: float
    upper: float
    alpha: float
    margin: float = 0.0

    @property
    def better(self) -> bool:
        return bool(sides(self.lower, self.upper, self.higher_is_better, self.margin)[0])

    @property
    def worse(self) -> bool:
        """Worse by more than the margin (a breached guardrail, a losing primary)."""
        return bool(sides(self.lower, self.upper, self.higher_is_better, self.margin)[1])

    def describe(self) -> str:
        return (
            f"{self.metric} challenger {self.challenger:.4g} vs champion {self.champion:.4g}: "
            f"difference {self.difference:+.4g}, {1 - self.alpha:.0%} confidence sequence "
            f"[{self.lower:+.4g}, {self.upper:+.4g}] (n {self.n_challenger} vs {self.n_champion})"
        )


@dataclass(frozen=True)
class Decision:
    action: Action
    reason: str
    srm: SRMResult
    primary: MetricResult | None = None
    guardrails: tuple[MetricResult, ...] = ()
    justification: MetricResult | None = None  # the interval that decided, if any
    details: Mapping[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        def metric(m: MetricResult | None) -> dict[str, Any] | None:
            if m is None:
                return None
            return {k: getattr(m, k) for k in m.__dataclass_fields__} | {
                "better": m.better,
                "worse": m.worse,
            }

        return jsonable(
            {
                "action": self.action.value,
                "reason": self.reason,
                "srm": self.srm.to_dict(),
                "primary": metric(self.primary),
                "guardrails": [metric(g) for g in self.guardrails],
                "justification": metric(self.justification),
                **dict(self.details),
            }
        )


def sides(lower: Any, upper: Any, higher_is_better: bool, margin: float = 0.0) -> tuple[Any, Any]:
    """(better, worse) for interval bounds of challenger minus champion: better when the
    whole interval is on the good side of 0, worse when it is beyond ``margin`` on the
    bad side. Vectorised."""
    lower, upper = np.asarray(lower), np.asarray(upper)
    if higher_is_better:
        return (lower > 0)[()], (upper < -margin)[()]
    return (upper < 0)[()], (lower > margin)[()]


def rule(
    primary_better: Any,
    primary_worse: Any,
    guardrail_breached: Any,
    enough: Any,
    expired: Any,
) -> Any:
    """Steps 2-6 of the module docstring on arrays of experiments: codes CONTINUE,
    PROMOTE or ROLLBACK."""
    enough = np.asarray(enough, dtype=bool)
    return np.select(
        [
            ~enough & expired,
            ~enough,
            guardrail_breached,
            primary_better,
            primary_worse,
            expired,
        ],
        [ROLLBACK, CONTINUE, ROLLBACK, PROMOTE, ROLLBACK, ROLLBACK],
        CONTINUE,
    )[()]


def compare(
    metric: str,
    champion: Moments,
    challenger: Moments,
    alpha: float,
    rho2: float,
    margin: float = 0.0,
) -> MetricResult:
    interval: Interval = difference_sequence(champion, challenger, alpha, rho2)
    return MetricResult(
        metric=metric,
        higher_is_better=HIGHER_IS_BETTER[metric],
        champion=float(champion.mean),
        challenger=float(challenger.mean),
        n_champion=int(champion.n),
        n_challenger=int(challenger.n),
        difference=float(interval.estimate),
        lower=float(interval.lower),
        upper=float(interval.upper),
        alpha=alpha,
        margin=margin,
    )


def analyse(
    counts: Mapping[str | None, int],
    moments: Mapping[str, Mapping[str, Moments]],
    settings: Settings,
    *,
    elapsed: timedelta,
) -> Decision:
    """One cycle's decision.

    ``counts``: served predictions per variant since the start (``None``: no variant).
    ``moments``: per variant, per metric, the moments of the matured labelled rows'
    values (:func:`monitor.ab.metrics.row_values`, :meth:`Moments.of`).
    ``elapsed``: time since the experiment started (the caller's clock).
    """
    s = settings
    check = sample_ratio if s.srm_method == CHI_SQUARE else sequential_sample_ratio
    srm = check(counts, s.split, threshold=s.srm_threshold)
    if srm.mismatch:
        return Decision(Action.STOP, f"analysis stopped: {srm.reason}", srm)

    empty = Moments(0, 0.0, 0.0)

    def arm(variant: str, metric: str) -> Moments:
        return moments.get(variant, {}).get(metric, empty)

    rho2 = s.rho2
    primary = compare(
        s.metric, arm(s.champion, s.metric), arm(s.challenger, s.metric), s.alpha, rho2
    )
    guards = tuple(
        compare(
            g.metric,
            arm(s.champion, g.metric),
            arm(s.challenger, g.metric),
            s.alpha,
            rho2,
            g.margin,
        )
        for g in s.guardrails
    )
    enough = min(primary.n_champion, primary.n_challenger) >= s.min_sample
    expired = elapsed >= s.max_duration
    # a guardrail acts on its own rows (the FPR counts only negatives): min_sample each
    breached = [g for g in guards if g.worse and min(g.n_champion, g.n_challenger) >= s.min_sample]
    code = int(rule(primary.better, primary.worse, bool(breached), enough, expired))
    action = _ACTIONS[code]

    justification: MetricResult | None = primary
    if not enough:
        smallest = min(primary.n_champion, primary.n_challenger)
        reason = f"{smallest} labelled rows in the smaller arm, {s.min_sample} needed"
        reason += "; maximum duration reached: the champion stays" if expired else ""
        justification = None
    elif breached:
        justification = breached[0]
        reason = f"guardrail breached: {breached[0].describe()}"
    elif action is Action.PROMOTE:
        reason = f"challenger better: {primary.describe()}"
    elif primary.worse:
        reason = f"challenger worse: {primary.describe()}"
    elif expired:
        reason = f"inconclusive at the maximum duration, the champion stays: {primary.describe()}"
    else:
        reason = f"no decision yet: {primary.describe()}"
        justification = None
    return Decision(
        action,
        reason,
        srm,
        primary,
        guards,
        justification,
        {"elapsed_seconds": elapsed.total_seconds(), "min_sample": s.min_sample, "rho2": rho2},
    )


__all__ = [
    "Action",
    "Decision",
    "Guardrail",
    "MetricResult",
    "Settings",
    "analyse",
    "compare",
    "rule",
    "sides",
]
