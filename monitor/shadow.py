"""The shadow comparison: the challenger scored on the champion's own rows (pure).

Shadow scoring runs the challenger on rows the champion served, without serving its
answers. Once those rows' labels mature both models are judged on *the same rows*, so
a paired test sees the difference with far fewer rows than an A/B split would need:

=========== ===================================================== ====================
metric      per row                                               paired test
=========== ===================================================== ====================
accuracy    right or wrong, for each model                        McNemar (exact)
roc_auc     the scores                                            paired bootstrap
cost        missed positives and false alarms at the serving      paired bootstrap
            threshold, in the business's units                    (lower is better)
=========== ===================================================== ====================

The verdict is **better**, **no evidence** or **worse**: worse when the primary
metric, or any guard metric, is significantly worse; better when the primary metric
is significantly better and no guard is worse; otherwise no evidence. "Significantly"
is two-sided at ``alpha``: McNemar's one-sided exact p-value below ``alpha / 2`` on
either side, or the paired bootstrap's ``1 - alpha`` interval of the difference
excluding zero.

**No peeking.** The verdict is a fixed-sample test: it is taken on the *first*
``min_sample`` labelled rows (in the order given, the order they were served) and on
nothing else, so looking again later returns the same verdict (``final=True``). Before
that it is **no evidence** with ``final=False``; when ``max_duration`` passes first,
the verdict is taken on the rows there are, and is final.

The paired tests are :mod:`monitor.paired`'s (the same the retraining gates use).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import timedelta
from enum import StrEnum
from typing import Any

import numpy as np
import numpy.typing as npt

from monitor import paired
from monitor.ab.metrics import Costs

SHADOW_METRICS = frozenset({"accuracy", "roc_auc", "cost"})


class Verdict(StrEnum):
    BETTER = "better"
    NO_EVIDENCE = "no evidence"
    WORSE = "worse"


@dataclass(frozen=True)
class ShadowSettings:
    metric: str = "accuracy"  # the primary metric
    guards: tuple[str, ...] = ()  # metrics that must not be significantly worse
    alpha: float = 0.05
    min_sample: int = 1000  # labelled rows the verdict is taken on
    max_duration: timedelta = timedelta(days=7)
    threshold: float = 0.5  # the serving threshold: score >= threshold is positive
    costs: Costs = field(default_factory=Costs)
    resamples: int = 1000
    seed: int = 0

    def __post_init__(self) -> None:
        for name in (self.metric, *self.guards):
            if name not in SHADOW_METRICS:
                raise ValueError(
                    f"unknown shadow metric {name!r}; choose one of {sorted(SHADOW_METRICS)}"
                )
        if not 0 < self.alpha < 1:
            raise ValueError(f"alpha must be in (0, 1), got {self.alpha!r}")
        if self.min_sample < 1:
            raise ValueError(f"min_sample must be at least 1, got {self.min_sample!r}")


@dataclass(frozen=True)
class Comparison:
    """One metric on the same rows. ``delta`` is oriented so that positive means the
    challenger is better (champion cost minus challenger cost)."""

    metric: str
    test: str  # "mcnemar" or "paired_bootstrap"
    champion: float
    challenger: float
    delta: float
    low: float  # bootstrap interval of delta (NaN for McNemar)
    high: float
    p_better: float  # one-sided: H0 "the challenger is not better"
    p_worse: float  # one-sided: H0 "the challenger is not worse"
    n: int
    verdict: Verdict
    details: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class ShadowResult:
    verdict: Verdict
    final: bool  # taken on the first min_sample rows, or at the maximum duration
    reason: str
    n: int  # labelled rows the verdict is taken on
    available: int  # labelled rows there were
    comparisons: tuple[Comparison, ...] = ()

    def to_dict(self) -> dict[str, Any]:
        def clean(v: Any) -> Any:
            return None if isinstance(v, float) and not math.isfinite(v) else v

        return {
            "verdict": self.verdict.value,
            "final": self.final,
            "reason": self.reason,
            "n": self.n,
            "available": self.available,
            "comparisons": [
                {k: clean(getattr(c, k)) for k in c.__dataclass_fields__}
                | {"verdict": c.verdict.value}
                for c in self.comparisons
            ],
        }


def shadow_verdict(
    labels: Sequence[Any],
    champion_scores: npt.ArrayLike,
    challenger_scores: npt.ArrayLike,
    settings: ShadowSettings,
    *,
    elapsed: timedelta,
    positive: Any = 1,
) -> ShadowResult:
    """Compare the two models on the same labelled rows (binary classification).

    ``labels`` in serving order (the storage query's), None where not matured yet;
    ``*_scores`` each model's positive-class probability on the same rows. Predictions
    are ``score >= settings.threshold``, the serving threshold.
    """
    s = settings
    y = np.array([v is not None for v in labels], dtype=bool)
    a = np.asarray(champion_scores, dtype=np.float64)
    b = np.asarray(challenger_scores, dtype=np.float64)
    if not len(labels) == a.size == b.size:
        raise ValueError(f"{len(labels)} labels, {a.size} and {b.size} scores: need the same rows")
    keep = np.flatnonzero(y & np.isfinite(a) & np.isfinite(b))
    available = int(keep.size)
    expired = elapsed >= s.max_duration
    if available < s.min_sample and not expired:
        reason = f"{available} labelled rows, the verdict is taken on {s.min_sample}"
        return ShadowResult(Verdict.NO_EVIDENCE, False, reason, 0, available)
    if available == 0:
        reason = "maximum duration reached without a labelled row"
        return ShadowResult(Verdict.NO_EVIDENCE, True, reason, 0, 0)
    keep = keep[: s.min_sample]
    pos = np.array([labels[i] == positive for i in keep.tolist()], dtype=bool)
    a, b = a[keep], b[keep]
    comparisons = tuple(_compare(m, pos, a, b, s) for m in (s.metric, *s.guards))
    primary = comparisons[0]
    worse = [c for c in comparisons if c.verdict is Verdict.WORSE]
    if worse:
        verdict = Verdict.WORSE
        reason = f"challenger worse on {worse[0].metric}: {_describe(worse[0])}"
    elif primary.verdict is Verdict.BETTER:
        verdict = Verdict.BETTER
        reason = f"challenger better on {primary.metric}: {_describe(primary)}"
    else:
        verdict = Verdict.NO_EVIDENCE
        reason = f"no significant difference on {primary.metric}: {_describe(primary)}"
    if keep.size < s.min_sample:
        reason += f" (maximum duration reached with {keep.size} of {s.min_sample} rows)"
    return ShadowResult(verdict, True, reason, int(keep.size), available, comparisons)


def _compare(
    metric: str, pos: npt.NDArray[np.bool_], a: Any, b: Any, s: ShadowSettings
) -> Comparison:
    n = int(pos.size)
    if metric == "accuracy":
        right_a, right_b = (a >= s.threshold) == pos, (b >= s.threshold) == pos
        up = paired.mcnemar(right_b, right_a)
        down = paired.mcnemar(right_a, right_b)
        verdict = _side(up.p_better < s.alpha / 2, down.p_better < s.alpha / 2)
        return Comparison(
            metric,
            "mcnemar",
            float(right_a.mean()),
            float(right_b.mean()),
            up.delta,
            math.nan,
            math.nan,
            up.p_better,
            down.p_better,
            n,
            verdict,
            {"challenger_only": up.candidate_only, "champion_only": up.reference_only},
        )
    if metric == "roc_auc":
        cand, ref = paired.weighted_roc_auc(pos, b), paired.weighted_roc_auc(pos, a)
        higher = True
    else:  # cost at the serving threshold
        cand, ref = (paired.weighted_mean(_costs(pos, x >= s.threshold, s.costs)) for x in (b, a))
        higher = False
    r = paired.paired_bootstrap(
        cand,
        ref,
        n,
        higher_is_better=higher,
        resamples=s.resamples,
        confidence=1 - s.alpha,
        seed=s.seed,
    )
    verdict = _side(r.low > 0, r.high < 0)
    p_worse = 1.0 - r.p_better if math.isfinite(r.p_better) else math.nan
    return Comparison(
        metric,
        "paired_bootstrap",
        r.reference,
        r.candidate,
        r.delta,
        r.low,
        r.high,
        r.p_better,
        p_worse,
        n,
        verdict,
        {"resamples": r.resamples},
    )


def _costs(pos: npt.NDArray[np.bool_], said: npt.NDArray[np.bool_], c: Costs) -> Any:
    return c.false_negative * (pos & ~said) + c.false_positive * (~pos & said)


def _side(better: bool, worse: bool) -> Verdict:
    return Verdict.BETTER if better else Verdict.WORSE if worse else Verdict.NO_EVIDENCE


def _describe(c: Comparison) -> str:
    text = f"challenger {c.challenger:.4g} vs champion {c.champion:.4g} on {c.n} rows, "
    if c.test == "mcnemar":
        return text + (
            f"McNemar {c.details['challenger_only']} vs {c.details['champion_only']} "
            f"discordant, p(better)={c.p_better:.2g}, p(worse)={c.p_worse:.2g}"
        )
    return text + f"paired bootstrap difference {c.delta:+.4g} [{c.low:+.4g}, {c.high:+.4g}]"


__all__ = [
    "Comparison",
    "SHADOW_METRICS",
    "ShadowResult",
    "ShadowSettings",
    "Verdict",
    "shadow_verdict",
]
