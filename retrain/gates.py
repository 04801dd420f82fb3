"""Gates: may a candidate become the challenger? (TFX-style blessings.)

Every gate is judged on the same final-test rows (the most recent matured labelled
window, never used for training, tuning or early stopping):

- **value** thresholds: the candidate's primary metric at least ``primary_min``, its
  cost per row at most ``cost_max`` (each only when configured);
- **change** thresholds against the trivial baseline (the majority class: a constant
  score equal to the training positive share) and against the champion: the delta
  (candidate better is positive, for the primary metric and for the cost at the serving
  threshold) must be above ``min_delta``: 0 against the baseline (strictly better),
  ``-1e-10`` against the champion (TFX's "no regression"). With ``alpha`` set the paired
  test must also show the candidate better at that level (separate thresholds for the
  primary metric and for the cost): McNemar for accuracy and
  recall, the paired bootstrap for ROC AUC and cost (:mod:`monitor.paired`);
- **slices**: for each category of the configured columns with at least
  ``slice_min_rows`` rows, the candidate's primary metric may fall at most
  ``slice_max_regression`` below the champion's.

Each gate gives a frozen :class:`GateResult` with its reason; :class:`GateReport.to_dict`
is what the retrain job stores.
"""

from __future__ import annotations

import logging
import math
from dataclasses import asdict, dataclass
from typing import Any, Literal

import numpy as np
import numpy.typing as npt
import pandas as pd

from monitor import paired

logger = logging.getLogger(__name__)

PrimaryMetric = Literal["roc_auc", "accuracy", "recall"]
NO_REGRESSION = -1e-10


@dataclass(frozen=True)
class ChangeThreshold:
    min_delta: float  # the candidate must be better by more than this (may be negative)
    alpha: float | None = None  # when set, the paired test must also say "better" at alpha


@dataclass(frozen=True)
class GateSpec:
    """The ``retrain.gates`` config section."""

    primary_metric: PrimaryMetric = "roc_auc"
    threshold: float = 0.5  # the serving threshold: decisions are score >= threshold
    cost_fn: float = 1.0  # cost of a missed positive
    cost_fp: float = 1.0  # cost of a false alarm
    primary_min: float | None = None
    cost_max: float | None = None  # per row
    baseline: ChangeThreshold = ChangeThreshold(0.0)  # on the primary metric
    baseline_cost: ChangeThreshold = ChangeThreshold(0.0)
    champion: ChangeThreshold = ChangeThreshold(NO_REGRESSION)
    champion_cost: ChangeThreshold = ChangeThreshold(NO_REGRESSION)
    slices: tuple[str, ...] = ()
    slice_min_rows: int = 200
    slice_max_regression: float = 0.02
    resamples: int = 1000
    confidence: float = 0.95
    seed: int = 0

    def __post_init__(self) -> None:
        if self.primary_metric not in ("roc_auc", "accuracy", "recall"):
            raise ValueError(
                f"primary_metric must be roc_auc, accuracy or recall, got {self.primary_metric!r}"
            )
        if not 0.0 < self.threshold < 1.0:
            raise ValueError(f"threshold must be in (0, 1), got {self.threshold!r}")
        if self.cost_fn < 0 or self.cost_fp < 0:
            raise ValueError(f"costs must be >= 0, got {self.cost_fn!r}, {self.cost_fp!r}")


@dataclass(frozen=True)
class GateResult:
    name: str  # e.g. "champion:roc_auc", "slice:country=DE:roc_auc"
    kind: Literal["value", "change", "slice"]
    metric: str
    passed: bool
    candidate: float
    reference: float | None  # the baseline's or champion's value; None for value gates
    delta: float | None  # oriented: positive means the candidate is better
    limit: float  # the threshold the gate applied
    test: str | None  # "mcnemar", "paired_bootstrap" or None
    p_value: float | None  # one-sided: H0 "the candidate is not better"
    reason: str

    def to_dict(self) -> dict[str, Any]:
        return {
            k: (None if isinstance(v, float) and math.isnan(v) else v)
            for k, v in asdict(self).items()
        }


@dataclass(frozen=True)
class GateReport:
    results: tuple[GateResult, ...]
    rows: int

    @property
    def passed(self) -> bool:
        return all(r.passed for r in self.results)

    @property
    def failed(self) -> tuple[GateResult, ...]:
        return tuple(r for r in self.results if not r.passed)

    def reason(self) -> str:
        return "; ".join(r.reason for r in self.failed) or "all gates passed"

    def to_dict(self) -> dict[str, Any]:
        return {
            "passed": self.passed,
            "rows": self.rows,
            "reason": self.reason(),
            "gates": [r.to_dict() for r in self.results],
        }


@dataclass(frozen=True)
class _Compared:
    candidate: float
    reference: float
    delta: float
    test: str
    p_value: float


def row_costs(y: np.ndarray, scores: np.ndarray, spec: GateSpec) -> np.ndarray:
    decided = scores >= spec.threshold
    return spec.cost_fn * ((y == 1) & ~decided) + spec.cost_fp * ((y == 0) & decided)


def primary_value(
    y: np.ndarray, scores: np.ndarray, metric: PrimaryMetric, threshold: float
) -> float:
    """The primary metric of one model on some rows (nan when undefined)."""
    if metric == "roc_auc":
        return float(paired.weighted_roc_auc(y == 1, scores)(np.ones((1, y.size)))[0])
    correct = (scores >= threshold) == (y == 1)
    rows = correct if metric == "accuracy" else correct[y == 1]
    return float(rows.mean()) if rows.size else math.nan


def _compare_primary(y: np.ndarray, cand: np.ndarray, ref: np.ndarray, spec: GateSpec) -> _Compared:
    if spec.primary_metric == "roc_auc":
        b = paired.paired_bootstrap(
            paired.weighted_roc_auc(y == 1, cand),
            paired.weighted_roc_auc(y == 1, ref),
            y.size,
            resamples=spec.resamples,
            confidence=spec.confidence,
            seed=spec.seed,
        )
        return _Compared(b.candidate, b.reference, b.delta, "paired_bootstrap", b.p_better)
    keep = np.ones(y.size, bool) if spec.primary_metric == "accuracy" else y == 1
    truth = y[keep] == 1
    m = paired.mcnemar(
        ((cand >= spec.threshold) == truth)[keep], ((ref >= spec.threshold) == truth)[keep]
    )
    c = primary_value(y, cand, spec.primary_metric, spec.threshold)
    r = primary_value(y, ref, spec.primary_metric, spec.threshold)
    return _Compared(c, r, m.delta, "mcnemar", m.p_better)


def _compare_cost(y: np.ndarray, cand: np.ndarray, ref: np.ndarray, spec: GateSpec) -> _Compared:
    b = paired.paired_bootstrap(
        paired.weighted_mean(row_costs(y, cand, spec)),
        paired.weighted_mean(row_costs(y, ref, spec)),
        y.size,
        higher_is_better=False,
        resamples=spec.resamples,
        confidence=spec.confidence,
        seed=spec.seed,
    )
    return _Compared(b.candidate, b.reference, b.delta, "paired_bootstrap", b.p_better)


def _change_gate(against: str, metric: str, c: _Compared, limit: ChangeThreshold) -> GateResult:
    better = not math.isnan(c.delta) and c.delta > limit.min_delta
    significant = limit.alpha is None or (not math.isnan(c.p_value) and c.p_value < limit.alpha)
    passed = better and significant
    words = f"{metric} {c.candidate:.4g} vs {against} {c.reference:.4g} (delta {c.delta:+.4g}"
    if passed:
        reason = f"{words}, above {limit.min_delta:g})"
    elif not better:
        reason = f"{words} is not above {limit.min_delta:g})"
    else:
        reason = f"{words}, p={c.p_value:.3g} not below alpha {limit.alpha:g})"
    return GateResult(
        name=f"{against}:{metric}",
        kind="change",
        metric=metric,
        passed=passed,
        candidate=c.candidate,
        reference=c.reference,
        delta=c.delta,
        limit=limit.min_delta,
        test=c.test,
        p_value=c.p_value,
        reason=reason,
    )


def _value_gates(y: np.ndarray, cand: np.ndarray, spec: GateSpec) -> list[GateResult]:
    out = []
    if spec.primary_min is not None:
        value = primary_value(y, cand, spec.primary_metric, spec.threshold)
        ok = value >= spec.primary_min
        out.append(
            GateResult(
                f"value:{spec.primary_metric}",
                "value",
                spec.primary_metric,
                ok,
                value,
                None,
                None,
                spec.primary_min,
                None,
                None,
                f"{spec.primary_metric} {value:.4g} {'>=' if ok else 'is below'} {spec.primary_min:g}",
            )
        )
    if spec.cost_max is not None:
        cost = float(row_costs(y, cand, spec).mean())
        ok = cost <= spec.cost_max
        out.append(
            GateResult(
                "value:cost",
                "value",
                "cost",
                ok,
                cost,
                None,
                None,
                spec.cost_max,
                None,
                None,
                f"cost per row {cost:.4g} {'<=' if ok else 'is above'} {spec.cost_max:g}",
            )
        )
    return out


def _slice_gates(
    y: np.ndarray, cand: np.ndarray, champ: np.ndarray, frame: pd.DataFrame, spec: GateSpec
) -> list[GateResult]:
    out = []
    metric = spec.primary_metric
    for column in spec.slices:
        values = frame[column].astype(object).where(frame[column].notna(), "missing").astype(str)
        for value in sorted(set(values)):
            mask = (values == value).to_numpy()
            if mask.sum() < spec.slice_min_rows:
                continue
            c = primary_value(y[mask], cand[mask], metric, spec.threshold)
            r = primary_value(y[mask], champ[mask], metric, spec.threshold)
            if math.isnan(c) or math.isnan(r):
                continue  # undefined on this slice (a single class)
            regression = r - c
            ok = regression <= spec.slice_max_regression
            out.append(
                GateResult(
                    name=f"slice:{column}={value}:{metric}",
                    kind="slice",
                    metric=metric,
                    passed=ok,
                    candidate=c,
                    reference=r,
                    delta=c - r,
                    limit=spec.slice_max_regression,
                    test=None,
                    p_value=None,
                    reason=(
                        f"slice {column}={value} ({int(mask.sum())} rows): {metric} {c:.4g} vs "
                        f"champion {r:.4g}, regression {regression:+.4g} "
                        f"{'within' if ok else 'beyond'} {spec.slice_max_regression:g}"
                    ),
                )
            )
    return out


def evaluate(
    labels: npt.ArrayLike,
    candidate_scores: npt.ArrayLike,
    spec: GateSpec,
    *,
    baseline_rate: float,
    champion_scores: npt.ArrayLike | None = None,
    frame: pd.DataFrame | None = None,
) -> GateReport:
    """Judge a candidate on the final-test rows.

    ``labels`` are 0/1, scores are positive-class probabilities of the same rows in the
    same order; ``baseline_rate`` is the positive share of the training rows (the
    trivial model's constant score); ``frame`` holds the slice columns of those rows.
    Without a champion (the first model) the champion and slice gates are left out.
    """
    y = np.asarray(labels, dtype=np.int64)
    cand = np.asarray(candidate_scores, dtype=np.float64)
    if y.shape != cand.shape or y.ndim != 1 or y.size == 0:
        raise ValueError(
            f"labels and candidate scores must be 1-d of one length, got {y.shape} and {cand.shape}"
        )
    results = _value_gates(y, cand, spec)
    baseline = np.full(y.size, float(baseline_rate))
    references = [("baseline", baseline, spec.baseline, spec.baseline_cost)]
    champ = None
    if champion_scores is not None:
        champ = np.asarray(champion_scores, dtype=np.float64)
        if champ.shape != y.shape:
            raise ValueError(f"champion scores have shape {champ.shape}, labels {y.shape}")
        references.append(("champion", champ, spec.champion, spec.champion_cost))
    for against, ref, primary, cost in references:
        compared = _compare_primary(y, cand, ref, spec)
        results.append(_change_gate(against, spec.primary_metric, compared, primary))
        results.append(_change_gate(against, "cost", _compare_cost(y, cand, ref, spec), cost))
    if champ is not None and spec.slices:
        if frame is None or len(frame) != y.size:
            raise ValueError("slice gates need the final-test frame, one row per label")
        missing = [c for c in spec.slices if c not in frame.columns]
        if missing:
            raise ValueError(f"slice columns {missing!r} are not in the final-test frame")
        results.extend(_slice_gates(y, cand, champ, frame, spec))
    report = GateReport(tuple(results), int(y.size))
    logger.info("gates on %d rows: %s", y.size, "passed" if report.passed else report.reason())
    return report
