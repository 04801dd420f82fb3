"""Signals: what fired in one evaluation, before incidents and notifications.

An :class:`Evaluation` is one look at one model: a window's statistics, a job run, an
ingestion run. It says which rules it covered and which of them fired (as
:class:`Signal`). A rule it covered that did not fire for a scope counts as *clear* for
that scope; that is how incidents resolve. Rules a look did not cover are left alone.

The functions here turn driftd's results into evaluations; they are pure.
Inhibition is decided here too: an ingestion or data-quality failure in a window
suppresses the drift signals it would explain (the whole window's for a window-level
failure such as row volume or quarantine rate, the column's for a column check).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Literal

from monitor.results import (
    Detection,
    EstimatedMetricResult,
    WindowPerformance,
    WindowResults,
)

Severity = Literal["info", "warning", "critical"]
RANK: dict[str, int] = {"info": 0, "warning": 1, "critical": 2}

# rules
COLUMN_DRIFT = "column_drift"
DATASET_DRIFT = "dataset_drift"
PREDICTION_DRIFT = "prediction_drift"
TARGET_DRIFT = "target_drift"
MULTIVARIATE_DRIFT = "multivariate_drift"
QUALITY = "data_quality"
PERFORMANCE = "performance"
ESTIMATED_PERFORMANCE = "estimated_performance"
CONCEPT_DRIFT = "concept_drift"
INGESTION = "ingestion"
SOURCE = "source"
QUARANTINE = "quarantine"
JOB_FAILED = "job_failed"
RETRAINING = "retraining"  # retraining is called for (suggest mode): a condition
TRAINING = "training"  # a training started, was gated, registered a challenger: events
PROMOTION = "promotion"  # an alias moved: promotion, rollback (events)
EXPERIMENT = "experiment"  # a shadow verdict, an A/B decision or stop (events)

# the order rules are listed in a message: causes and the broadest first
ORDER = (
    INGESTION,
    SOURCE,
    JOB_FAILED,
    QUARANTINE,
    QUALITY,
    PERFORMANCE,
    CONCEPT_DRIFT,
    ESTIMATED_PERFORMANCE,
    DATASET_DRIFT,
    TARGET_DRIFT,
    PREDICTION_DRIFT,
    MULTIVARIATE_DRIFT,
    COLUMN_DRIFT,
    RETRAINING,
    TRAINING,
    EXPERIMENT,
    PROMOTION,
)

DRIFT_RULES = frozenset({COLUMN_DRIFT, DATASET_DRIFT, PREDICTION_DRIFT, MULTIVARIATE_DRIFT})
WINDOW_RULES = DRIFT_RULES | {QUALITY}
# rules whose signals are events, not conditions: announced once when they fire, then
# closed at once (no resolve notice); the next event opens a new incident
EVENT_RULES = frozenset({TRAINING, EXPERIMENT, PROMOTION})

ACTIONS: dict[str, str] = {
    COLUMN_DRIFT: "Check the upstream source of the drifted features; open the detail report.",
    DATASET_DRIFT: "Many inputs moved at once: check for a pipeline change, then consider "
    "retraining on recent data.",
    TARGET_DRIFT: "The outcome's distribution moved (e.g. the fraud rate): check thresholds "
    "and whether the training data still represents production.",
    PREDICTION_DRIFT: "The model's outputs moved: compare the decision rate with the business "
    "and check the inputs that drifted.",
    MULTIVARIATE_DRIFT: "The joint distribution moved: look for changed feature interactions "
    "in the detail report.",
    QUALITY: "Fix the data before trusting drift or performance figures for this window.",
    PERFORMANCE: "The model got worse on labelled data: review the error samples and retrain.",
    ESTIMATED_PERFORMANCE: "Performance is estimated to drop before labels arrive: watch the "
    "label-based figures and the review queue.",
    CONCEPT_DRIFT: "The error rate changed: review recent errors; retraining is suggested.",
    INGESTION: "driftd could not ingest: check the log paths and the database.",
    SOURCE: "No input: check `sources.*.paths` in the config and that the producer writes.",
    QUARANTINE: "Many malformed records: check the producer; `driftd status` lists reasons.",
    JOB_FAILED: "A driftd job failed: `driftd check` shows the error.",
    RETRAINING: "The triggers call for retraining: review the reason, then train with "
    "`driftd retrain --reason ...` or set `retrain.mode: auto`.",
    TRAINING: "See `driftd models show` for the candidate, its gates and its lineage.",
    EXPERIMENT: "See `driftd ab status` for the challenger's phase, its numbers and what "
    "happens next.",
    PROMOTION: "A model version changed: confirm the new champion behaves.",
}


@dataclass(frozen=True)
class Signal:
    """One firing rule for one scope (a column, a detector, a job ...)."""

    rule: str
    scope: str
    severity: Severity
    summary: str
    value: float | None = None
    threshold: float | None = None
    details: Mapping[str, Any] = field(default_factory=dict)
    inhibited_by: str | None = None  # a signal of the same look that explains this one

    @property
    def rank(self) -> int:
        return RANK[self.severity]


@dataclass(frozen=True)
class Evaluation:
    """One look at one model: the rules it covered and the signals that fired."""

    model: str
    covers: frozenset[str]
    signals: tuple[Signal, ...] = ()
    window: datetime | None = None  # the window looked at, for window rules
    # the scopes the look covered, when not every scope of its rules (None: all)
    scopes: frozenset[str] | None = None
    context: Mapping[str, Any] = field(default_factory=dict)  # report, coverage, impact


def _is_p_value(method: str) -> bool:
    from monitor.drift.methods import METHODS

    spec = METHODS.get(method)
    return spec is not None and spec.kind == "p_value"


def _num(x: float) -> str:
    return f"{x:,.0f}" if abs(x) >= 1000 else f"{x:.3g}"


def _fmt(x: float | None) -> str:
    return "n/a" if x is None else f"{x:.3g}"


def window_evaluation(
    model: str,
    results: WindowResults,
    *,
    performance: WindowPerformance | None = None,
    currency: str = "",
) -> Evaluation:
    """The signals of one window's statistics (see :mod:`monitor.statistics`); the
    window's performance, when known, adds label coverage and the estimated business
    cost to the message."""
    signals: list[Signal] = []
    quality = results.quality_failed
    whole_window = next((q for q in quality if q.column is None), None)
    by_column = {q.column: q for q in quality if q.column is not None}

    def inhibitor(column: str | None) -> str | None:
        if whole_window is not None:
            return f"{QUALITY}/{whole_window.check}"
        if column is not None and column in by_column:
            return f"{QUALITY}/{by_column[column].check}:{column}"
        return None

    for q in quality:
        scope = q.check if q.column is None else f"{q.check}:{q.column}"
        where = f" in {q.column}" if q.column else ""
        detail = f" ({q.detail})" if q.detail else ""
        signals.append(
            Signal(
                QUALITY,
                scope,
                _severity(q.severity),
                f"{q.check}{where}: {_fmt(q.value)} vs {_fmt(q.threshold)}{detail}",
                q.value,
                q.threshold,
                {"check": q.check, "column": q.column},
            )
        )

    drift = results.drift
    # a window with too few rows to judge (the first, partly filled one; a slow hour) is
    # shown but never alerts on drift; it is judged again as it fills
    insufficient = drift.insufficient
    drifted = [c for c in drift.columns if c.drifted and not insufficient and not c.insufficient]
    if drift.drifted and not insufficient:
        signals.append(
            Signal(
                DATASET_DRIFT,
                "dataset",
                "critical",
                f"{len(drifted)} of {drift.columns_total} columns drifted "
                f"(share {drift.share:.2f})",
                drift.share,
                drift.drift_share,
                {"columns": [c.column for c in drifted]},
                inhibited_by=inhibitor(None),
            )
        )
    for c in drifted:
        score, threshold = c.score, c.threshold
        # far past the threshold, in the direction the method alarms, is critical
        far = (
            score is not None
            and threshold is not None
            and (score <= threshold / 100 if _is_p_value(c.method) else score >= 2 * threshold)
        )
        signals.append(
            Signal(
                COLUMN_DRIFT,
                c.column,
                "critical" if far else "warning",
                f"{c.column}: {c.method} {_fmt(score)} vs {_fmt(threshold)}",
                score,
                threshold,
                {"method": c.method},
                inhibited_by=inhibitor(c.column),
            )
        )
    for c in results.prediction_drift:
        if c.drifted and not insufficient and not c.insufficient:
            name = c.column.lstrip("@")
            signals.append(
                Signal(
                    PREDICTION_DRIFT,
                    name,
                    "warning",
                    f"{name}: {c.method} {_fmt(c.score)} vs {_fmt(c.threshold)}",
                    c.score,
                    c.threshold,
                    {"method": c.method},
                    inhibited_by=inhibitor(None),
                )
            )
    for m in results.multivariate:
        if m.drifted and not insufficient:
            signals.append(
                Signal(
                    MULTIVARIATE_DRIFT,
                    m.detector,
                    "warning",
                    f"{m.detector}: {_fmt(m.score)} vs {_fmt(m.threshold)}",
                    m.score,
                    m.threshold,
                    inhibited_by=inhibitor(None),
                )
            )
    context: dict[str, Any] = {
        "window_end": results.end.isoformat(),
        "rows": results.rows,
        "report": results.report,
    }
    if performance is not None:
        context["label_coverage"] = performance.coverage
        cost = None if performance.estimated is None else performance.estimated.metrics.get("cost")
        if cost is not None and cost.value is not None:
            reference = "n/a" if cost.reference is None else _num(cost.reference)
            context["impact"] = (
                f"estimated error cost {_num(cost.value)} {currency} this window "
                f"(reference {reference})"
            )
    return Evaluation(model, WINDOW_RULES, tuple(signals), results.start, context=context)


def _severity(value: str) -> Severity:
    """A quality check's severity as a signal's (a check is a warning or critical)."""
    return "critical" if value == "critical" else "info" if value == "info" else "warning"


def run_evaluation(model: str, job: str, outcome: str, error: str | None = None) -> Evaluation:
    """A finished job run: a failure fires ``job_failed`` (``ingestion`` for ingest)."""
    rule = INGESTION if job == "ingest" else JOB_FAILED
    signals: tuple[Signal, ...] = ()
    if outcome == "failed":
        signals = (Signal(rule, job, "critical", f"job {job} failed: {error or 'no detail'}"),)
    return Evaluation(model, frozenset({rule}), signals, context={"job": job})


def quarantine_evaluation(
    model: str, quarantined: Mapping[str, Mapping[str, int]], rows: Mapping[str, int], limit: float
) -> Evaluation:
    """An ingestion run's quarantine share per source, against ``limit``.

    ``quarantined`` maps a source to its counts per reason; ``rows`` to rows stored.
    Runs that read nothing say nothing about a source (it stays as it was).
    """
    signals = []
    looked = frozenset(s for s in set(quarantined) | set(rows) if quarantined.get(s) or rows.get(s))
    for source, reasons in quarantined.items():
        bad = sum(reasons.values())
        total = bad + rows.get(source, 0)
        if total and bad / total > limit:
            top = ", ".join(f"{n} {r}" for r, n in sorted(reasons.items(), key=lambda x: -x[1])[:3])
            signals.append(
                Signal(
                    QUARANTINE,
                    source,
                    "warning",
                    f"{source}: {bad} of {total} records quarantined ({bad / total:.1%}): {top}",
                    bad / total,
                    limit,
                )
            )
    return Evaluation(model, frozenset({QUARANTINE}), tuple(signals), scopes=looked)


def performance_evaluation(
    model: str, result: WindowPerformance, metrics: Sequence[str]
) -> Evaluation:
    """A window's realized (when complete) and estimated performance against the
    reference, for each alerted metric (see :mod:`monitor.performance`)."""
    covers = {ESTIMATED_PERFORMANCE}
    signals = []
    coverage = result.coverage
    complete = result.state == "complete"
    if complete:
        covers |= {PERFORMANCE, TARGET_DRIFT}
        target = result.target_drift
        if target is not None and target.drifted:
            signals.append(
                Signal(
                    TARGET_DRIFT,
                    "label",
                    "warning",
                    f"labels: {target.method} {_fmt(target.score)} vs "
                    f"{_fmt(target.threshold)} ({result.labelled} labelled)",
                    target.score,
                    target.threshold,
                    {"method": target.method},
                )
            )
    for metric in metrics:
        d = (result.degradation or {}).get(metric)
        if complete and d is not None and d.degraded:
            signals.append(
                Signal(
                    PERFORMANCE,
                    metric,
                    "critical",
                    f"{metric} {_fmt_num(d.current)} vs reference {_fmt_num(d.reference)} "
                    f"(worse by {abs(d.worse_by or 0.0):.3f}; alert past "
                    f"{_fixed(d.threshold)}; "
                    f"{result.labelled} labelled, coverage {coverage:.0%})",
                    d.current,
                    d.threshold,
                    {"reference": d.reference, "coverage": coverage},
                )
            )
        e = None if result.estimated is None else result.estimated.metrics.get(metric)
        if e is not None and e.alert and _beyond_uncertainty(e):
            assert e.value is not None and e.sampling_error is not None
            num = _precise(e.sampling_error)
            signals.append(
                Signal(
                    ESTIMATED_PERFORMANCE,
                    metric,
                    "warning",
                    f"estimated {metric} {num(e.value)} (± {num(e.sampling_error)}) outside "
                    f"[{_bound(num, e.lower_threshold)}, {_bound(num, e.upper_threshold)}] "
                    f"before labels ({coverage:.0%} labelled)",
                    e.value,
                    e.lower_threshold,
                    {"reference": e.reference},
                )
            )
    return Evaluation(model, frozenset(covers), tuple(signals), result.start)


def _beyond_uncertainty(e: EstimatedMetricResult) -> bool:
    """An estimate off its reference by more than its own stated sampling error (a band
    without width, as a collapsed one was, never alerts)."""
    value, reference, error = e.value, e.reference, e.sampling_error
    if value is None or reference is None or not error:
        return False
    return bool(abs(value - reference) > error)


def _precise(error: float) -> Callable[[float], str]:
    """A formatter showing figures to two significant digits of ``error``, so a value and
    bounds that differ by more than the error never print the same."""
    if abs(error) >= 1000 or error <= 0:
        return _num
    digits = min(max(3, 1 - math.floor(math.log10(error))), 8)
    return lambda x: f"{x:,.{digits}f}" if abs(x) < 1000 else _num(x)


def _bound(num: Callable[[float], str], x: float | None) -> str:
    return "n/a" if x is None else num(x)


def _fmt_num(x: float | None) -> str:
    return "n/a" if x is None else _num(x)


def _fixed(x: float | None) -> str:
    return "n/a" if x is None else f"{x:.3f}"


def detector_evaluation(model: str, detections: Sequence[Detection], errors: int) -> Evaluation:
    """A run of the error stream: one ``concept_drift`` signal when any detector found
    the error rising (which ones, where); a run that consumed errors without such a
    detection counts as clear. Runs without new errors say nothing.

    The figures are each detector's own: the mean error before the point where it places
    the change and the mean since, over how many errors each; a detection whose own
    figures do not rise is not an alarm of rising errors."""
    if not errors:
        return Evaluation(model, frozenset())
    rising = [d for d in detections if d.rising]
    signals: tuple[Signal, ...] = ()
    if rising:
        absolute = any(d.details.measure == "absolute_error" for d in rising)
        signals = (
            Signal(
                CONCEPT_DRIFT,
                "error_rate",
                "warning",
                ("absolute error rising: " if absolute else "error rate rising: ")
                + "; ".join(_detection_text(d) for d in rising),
                rising[-1].details.error_after,
                None,
                {
                    "detectors": sorted({d.detector for d in rising}),
                    "error_before": rising[-1].details.error_before,
                },
            ),
        )
    return Evaluation(model, frozenset({CONCEPT_DRIFT}), signals)


def _detection_text(d: Detection) -> str:
    details = d.details
    absolute = details.measure == "absolute_error"

    def value(x: float | None) -> str:
        return _fmt(x) if absolute or x is None else f"{x:.1%}"

    text = f"{d.detector} {value(details.error_before)} -> {value(details.error_after)}"
    if details.errors_before is not None and details.errors_after is not None:
        text += (
            f" ({details.errors_before:,} errors before, {details.errors_after:,} since "
            f"error {details.change_position or 0:,}; detected at error {d.position:,}"
        )
        if details.label_ts is not None:
            text += f" from labels up to {details.label_ts:%a %d %b %H:%M}"
        text += ")"
    else:
        text += f" (detected at error {d.position:,})"
    return text


def source_evaluation(
    model: str, matched: Mapping[str, int], patterns: Mapping[str, Sequence[str]]
) -> Evaluation:
    """An ingestion run's look at its sources: one whose globs match no file fires
    ``source`` (a typo in a path, or a producer that stopped writing)."""
    signals = tuple(
        Signal(
            SOURCE,
            name,
            "warning",
            f"source {name}: no file matches {', '.join(patterns.get(name, ()))}",
            0,
        )
        for name, n in sorted(matched.items())
        if n == 0
    )
    return Evaluation(model, frozenset({SOURCE}), signals, scopes=frozenset(matched))
