"""The human review queue: which predictions of a window a person should look at, and why.

:func:`candidates` is pure: a window's rows and the settings in, prioritised
:class:`Candidate` s out. A row is queued for one reason, the strongest that applies:

``misclassified``
    its label is known and differs from the prediction (classification only).
``out_of_distribution``
    before its label is known, a feature is outside the reference profile: a category
    the reference never had, or a number beyond the reference range by more than
    ``range_factor`` times that range (below ``min - f * (max - min)`` or above
    ``max + f * (max - min)``; with a constant reference column any other value is out).
    Missing values and values of the wrong type are data-quality findings, not this.
``low_confidence``
    before its label is known, the model hesitated. Binary: ``|score - threshold| <
    margin``. Multiclass: the entropy of its ``probabilities``, normalised by ``log K``,
    exceeds the binary entropy (in bits) of ``0.5 + margin``, the rule that coincides
    with the binary one for two classes at threshold 0.5.

A labelled row is queued only when it is an error, so a correct prediction is not
queued however doubtful it looked. Regression rows are queued only out of distribution,
before their label arrives.

Priority is ``tier + 0.6 * impact + 0.3 * uncertainty + 0.1 * recency``: the tier (2
misclassified, 1 out of distribution, 0 low confidence) puts known errors first, so a
stronger reason always outranks a weaker one. ``impact`` is the cost of the error type
(false negative ``cost_fn`` or false positive ``cost_fp``) relative to the dearer of the
two (1 when no cost is configured, or for a multiclass error); for an out-of-distribution
row it is ``1 - 0.5 ** n`` for ``n`` features out; for low confidence 0. ``uncertainty``
is 1 at the decision threshold and 0 at a certain score (binary: ``1 - |score -
threshold|`` over the distance to the nearer end; multiclass: normalised entropy; 0.5
when unknown): the samples a model is unsure of teach the next model most. ``recency``
halves every ``half_life`` of age at the time the row is queued. Ties are broken by id,
so the order is deterministic. Every candidate's ``details`` hold these parts and a
one-line ``summary``.

:class:`ReviewQueue` refreshes one window's queue through a :class:`Repository`
(implemented by :class:`storage.review.ReviewRepository`), which keeps the per-window
cap across calls and upgrades a pending item when its label shows it was an error.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any, Protocol

from monitor.abc import ReviewRepository as Repository
from monitor.drift.profile import category_text
from monitor.records import FeatureType

if TYPE_CHECKING:
    from monitor.drift.profile import ReferenceProfile

MISCLASSIFIED = "misclassified"
OUT_OF_DISTRIBUTION = "out_of_distribution"
LOW_CONFIDENCE = "low_confidence"
REASONS = (MISCLASSIFIED, OUT_OF_DISTRIBUTION, LOW_CONFIDENCE)  # strongest first
TIER = {MISCLASSIFIED: 2, OUT_OF_DISTRIBUTION: 1, LOW_CONFIDENCE: 0}
WEIGHTS = {"impact": 0.6, "uncertainty": 0.3, "recency": 0.1}
UNKNOWN_UNCERTAINTY = 0.5


class Row(Protocol):
    """One stored prediction with its label (None before the label arrives)."""

    @property
    def id(self) -> str: ...
    @property
    def ts(self) -> datetime: ...
    @property
    def features(self) -> Mapping[str, Any]: ...
    @property
    def prediction(self) -> Any: ...
    @property
    def score(self) -> float | None: ...
    @property
    def label(self) -> Any: ...
    @property
    def probabilities(self) -> Mapping[str, float] | None: ...


@dataclass(frozen=True)
class ReviewRow:
    id: str
    ts: datetime
    features: Mapping[str, Any]
    prediction: Any = None
    score: float | None = None
    label: Any = None
    probabilities: Mapping[str, float] | None = None


@dataclass(frozen=True)
class ReviewSettings:
    """How rows are chosen; the daemon fills it from ``model``, ``performance.cost`` and
    ``review`` of the config."""

    task: str = "binary"  # binary, multiclass or regression
    threshold: float = 0.5
    cost_fn: float = 0.0
    cost_fp: float = 0.0
    currency: str = "USD"
    per_window: int = 50
    margin: float = 0.1
    out_of_distribution: bool = True
    range_factor: float = 0.25
    half_life: timedelta = timedelta(days=7)


@dataclass(frozen=True)
class Candidate:
    prediction_id: str
    ts: datetime
    reason: str
    priority: float
    label: Any  # the label known when queued (None before it arrives)
    details: dict[str, Any] = field(default_factory=dict)


def candidates(
    rows: Iterable[Row],
    settings: ReviewSettings,
    *,
    now: datetime,
    profile: ReferenceProfile | None = None,
) -> list[Candidate]:
    """Every row worth a review, one per prediction id, highest priority first."""
    checks = _OutOfDistribution(profile, settings.range_factor) if profile else None
    if not settings.out_of_distribution:
        checks = None
    best: dict[str, Candidate] = {}
    for row in rows:
        candidate = _candidate(row, settings, now, checks)
        if candidate is None:
            continue
        kept = best.get(candidate.prediction_id)
        if kept is None or _stronger(candidate, kept):
            best[candidate.prediction_id] = candidate
    return sorted(best.values(), key=lambda c: (-c.priority, c.prediction_id))


def select(
    rows: Iterable[Row],
    settings: ReviewSettings,
    *,
    now: datetime,
    profile: ReferenceProfile | None = None,
) -> list[Candidate]:
    """The ``per_window`` highest-priority candidates of one window's rows."""
    return candidates(rows, settings, now=now, profile=profile)[: settings.per_window]


def _stronger(a: Candidate, b: Candidate) -> bool:
    return (TIER[a.reason], a.priority) > (TIER[b.reason], b.priority)


def _candidate(
    row: Row, settings: ReviewSettings, now: datetime, checks: _OutOfDistribution | None
) -> Candidate | None:
    uncertainty = _uncertainty(row, settings)
    recency = 0.5 ** (max((now - row.ts) / settings.half_life, 0.0))
    out = checks(row.features) if checks else []
    labelled = row.label is not None
    if labelled:
        error = _error(row, settings)
        if error is None:
            return None
        kind, cost = error
        impact = _impact(kind, settings)
        details = {
            "error": kind,
            "prediction": _predicted(row, settings),
            "label": row.label,
            "cost": cost,
            "currency": settings.currency,
            "summary": _error_summary(kind, row, settings, cost),
        }
        if out:
            details["out_of_distribution"] = out
        return _make(row, MISCLASSIFIED, impact, uncertainty, recency, details)
    if out:
        details = {"features": out, "summary": _ood_summary(out)}
        impact = 1 - 0.5 ** len(out)
        return _make(row, OUT_OF_DISTRIBUTION, impact, uncertainty, recency, details)
    if _low_confidence(row, settings, uncertainty):
        details = {"summary": _low_confidence_summary(row, settings, uncertainty)}
        if settings.task == "binary":
            details |= {"score": row.score, "threshold": settings.threshold}
        return _make(row, LOW_CONFIDENCE, 0.0, uncertainty, recency, details)
    return None


def _make(
    row: Row,
    reason: str,
    impact: float,
    uncertainty: float | None,
    recency: float,
    details: dict[str, Any],
) -> Candidate:
    u = UNKNOWN_UNCERTAINTY if uncertainty is None else uncertainty
    parts = {"impact": impact, "uncertainty": u, "recency": recency}
    weight = sum(WEIGHTS[k] * v for k, v in parts.items())
    priority = round(TIER[reason] + weight, 9)
    details = {**details, "priority": {k: round(v, 6) for k, v in parts.items()}}
    return Candidate(row.id, row.ts, reason, priority, row.label, details)


# -- errors ---------------------------------------------------------------------------


def _positive(value: Any) -> bool:
    return category_text(value).lower() in ("1", "true")


def _same(a: Any, b: Any) -> bool:
    return bool(a == b) or category_text(a) == category_text(b)


def _predicted(row: Row, settings: ReviewSettings) -> Any:
    """The served class: the logged prediction, else the score against the threshold."""
    if row.prediction is not None:
        return row.prediction
    if settings.task == "binary" and row.score is not None:
        return int(row.score >= settings.threshold)
    return None


def _error(row: Row, settings: ReviewSettings) -> tuple[str, float] | None:
    """The kind of error a labelled row is and what it costs; None when it is right."""
    if settings.task == "regression":
        return None
    predicted = _predicted(row, settings)
    if predicted is None or _same(predicted, row.label):
        return None
    if settings.task == "binary":
        if _positive(row.label):
            return "false_negative", settings.cost_fn
        return "false_positive", settings.cost_fp
    return "wrong_class", max(settings.cost_fn, settings.cost_fp)


def _impact(kind: str, settings: ReviewSettings) -> float:
    dearest = max(settings.cost_fn, settings.cost_fp)
    if kind == "wrong_class" or dearest == 0:
        return 1.0
    return (settings.cost_fn if kind == "false_negative" else settings.cost_fp) / dearest


# -- confidence -----------------------------------------------------------------------


def _uncertainty(row: Row, settings: ReviewSettings) -> float | None:
    """1 at the decision boundary, 0 for a certain prediction; None when unknown."""
    if settings.task == "binary" and _finite(row.score):
        assert row.score is not None
        t = settings.threshold
        room = t if row.score < t else 1 - t
        if room <= 0:
            return 0.0
        return min(max(1 - abs(row.score - t) / room, 0.0), 1.0)
    if settings.task == "multiclass" and row.probabilities:
        return normalized_entropy(list(row.probabilities.values()))
    return None


def normalized_entropy(probabilities: Sequence[float]) -> float | None:
    """Entropy of a distribution over ``K`` classes divided by ``log K`` (0..1)."""
    p = [float(x) for x in probabilities if _finite(x) and x > 0]
    total = sum(p)
    if len(probabilities) < 2 or total <= 0:
        return None
    h = -sum(x / total * math.log(x / total) for x in p)
    return min(h / math.log(len(probabilities)), 1.0)


def binary_entropy(p: float) -> float:
    """Entropy in bits of a coin with probability ``p``."""
    if p <= 0 or p >= 1:
        return 0.0
    return -(p * math.log2(p) + (1 - p) * math.log2(1 - p))


def _low_confidence(row: Row, settings: ReviewSettings, uncertainty: float | None) -> bool:
    if settings.task == "binary":
        if not _finite(row.score):
            return False
        assert row.score is not None
        return abs(row.score - settings.threshold) < settings.margin
    if settings.task == "multiclass" and uncertainty is not None:
        return uncertainty > binary_entropy(0.5 + settings.margin)
    return False


def _finite(x: Any) -> bool:
    return isinstance(x, int | float) and not isinstance(x, bool) and math.isfinite(x)


def check_label(value: Any, *, task: str, classes: Sequence[Any]) -> Any:
    """A reviewer's label as it is stored, or a ValueError naming it and what is allowed.

    Regression: a finite number. Classification: one of ``classes`` (the reference
    target's, else those production used), matched as people mean it (``1``, ``1.0``,
    ``true`` and ``"1"`` are one class); the class is returned as ``classes`` spell it.
    """
    if task == "regression":
        if not _finite(value):
            raise ValueError(f"label {value!r} is not a finite number (task regression)")
        return value
    if not classes:
        raise ValueError(f"no classes are known for task {task}: configure reference.target")
    scalar = value is not None and not isinstance(value, dict | list)
    for known in classes if scalar else ():
        if _same(value, known) or (_positive(value) and _positive(known)):
            return known
    shown = ", ".join(repr(c) for c in sorted(classes, key=category_text)[:20])
    raise ValueError(f"label {value!r} is not a class of this {task} task; classes: {shown}")


# -- out of distribution --------------------------------------------------------------


class _OutOfDistribution:
    """Per-feature checks against a reference profile, prepared once per call."""

    def __init__(self, profile: ReferenceProfile, range_factor: float) -> None:
        self.vocabularies: dict[str, frozenset[str]] = {}
        self.ranges: dict[str, tuple[float, float, float, float]] = {}
        for name, column in profile.columns.items():
            if name.startswith("@") or column.n == 0:  # the model's outputs; no values
                continue
            if column.kind is FeatureType.NUMERIC:
                low, high = column.minimum, column.maximum
                slack = range_factor * (high - low)
                self.ranges[name] = (low, high, low - slack, high + slack)
            else:
                self.vocabularies[name] = frozenset(column.categories)

    def __call__(self, features: Mapping[str, Any]) -> list[dict[str, Any]]:
        out: list[dict[str, Any]] = []
        for name in sorted(features):
            value = features[name]
            if value is None:
                continue
            if name in self.vocabularies:
                if category_text(value) not in self.vocabularies[name]:
                    out.append({"column": name, "value": value, "rule": "unseen_category"})
            elif name in self.ranges and _finite(value):
                low, high, lower, upper = self.ranges[name]
                if value < lower or value > upper:
                    out.append(
                        {
                            "column": name,
                            "value": value,
                            "rule": "below_range" if value < lower else "above_range",
                            "reference_min": low,
                            "reference_max": high,
                            "limit": lower if value < lower else upper,
                        }
                    )
        return out


# -- summaries ------------------------------------------------------------------------


def _error_summary(kind: str, row: Row, settings: ReviewSettings, cost: float) -> str:
    text = f"{kind.replace('_', ' ')}: predicted {_predicted(row, settings)!r}, label {row.label!r}"
    if settings.task == "binary" and _finite(row.score):
        text += f" (score {row.score:.3g}, threshold {settings.threshold:.3g})"
    if cost:
        text += f"; costs {cost:g} {settings.currency}"
    return text


def _ood_summary(out: list[dict[str, Any]]) -> str:
    parts = []
    for o in out:
        if o["rule"] == "unseen_category":
            parts.append(f"{o['column']}={o['value']!r} not in the reference")
        else:
            side = "below" if o["rule"] == "below_range" else "above"
            parts.append(
                f"{o['column']}={o['value']:.6g} far {side} the reference range "
                f"[{o['reference_min']:.6g}, {o['reference_max']:.6g}]"
            )
    return "; ".join(parts)


def _low_confidence_summary(row: Row, settings: ReviewSettings, uncertainty: float | None) -> str:
    if settings.task == "binary":
        return (
            f"score {row.score:.3g} within {settings.margin:g} of the threshold "
            f"{settings.threshold:g}"
        )
    return f"probabilities spread out (normalised entropy {uncertainty:.3f})"


# -- refreshing the queue -------------------------------------------------------------


class ReviewQueue:
    """Keeps each window's review queue up to date; call :meth:`refresh` per window
    when its statistics are finalized and again when its labels have arrived."""

    def __init__(self, repository: Repository, settings: ReviewSettings) -> None:
        self.repository = repository
        self.settings = settings

    def refresh(
        self,
        model: str,
        window_start: datetime,
        rows: Sequence[Row] | None = None,
        *,
        profile: ReferenceProfile | None = None,
        now: datetime,
    ) -> dict[str, Any]:
        """Queue the window's candidates (its stored rows unless ``rows`` are given);
        a summary of what changed."""
        if rows is None:
            rows = self.repository.window_rows(model, window_start)
        found = candidates(rows, self.settings, now=now, profile=profile)
        written = self.repository.enqueue(
            model, window_start, found, per_window=self.settings.per_window, now=now
        )
        return _summary(window_start, rows, found, written)

    def refresh_windows(
        self,
        model: str,
        starts: Sequence[datetime],
        *,
        profile: ReferenceProfile | None = None,
        now: datetime,
    ) -> list[dict[str, Any]]:
        """:meth:`refresh` of several windows (their stored rows), in ``starts`` order:
        the rows of many windows per query and every window queued in one transaction,
        so a backfill of one-minute windows does not pay a round trip per window."""
        if not starts:
            return []
        rows = self.repository.windows_rows(model, starts)
        found = {
            start: candidates(rows.get(start, []), self.settings, now=now, profile=profile)
            for start in starts
        }
        written = self.repository.enqueue_windows(
            model, found, per_window=self.settings.per_window, now=now
        )
        return [_summary(s, rows.get(s, []), found[s], written[s]) for s in starts]


def _summary(
    start: datetime, rows: Sequence[Row], found: Sequence[Candidate], written: Mapping[str, int]
) -> dict[str, Any]:
    by_reason = {r: n for r in REASONS if (n := sum(c.reason == r for c in found))}
    return {"window": start.isoformat(), "rows": len(rows), "candidates": by_reason, **written}
