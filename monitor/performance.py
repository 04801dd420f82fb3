"""The performance job: delayed labels joined, performance per window, detectors fed.

Per window whose label join changed (or whose maturity may have): label coverage, the
realized performance with intervals against the reference's, and the label-free
estimate (CBPE) from the window's scores. A window is *pending* until its end is
``label_delay`` ago, then *complete* when its coverage reaches ``min_coverage`` and
*incomplete* otherwise: an incomplete window's figures are reported, never taken as
final, and only complete windows can raise a realized-performance alert.

The error stream: each label, in arrival order, joined with its prediction, becomes an
error (0/1 for classification, the absolute error for regression) fed to the
sequential detectors; their states persist with the stream's cursor, so detection
positions do not depend on how runs split the stream. A label whose prediction has not
arrived yet waits (up to ``max_pending``) and is fed once it has. A detection is dated
by its label's arrival (the evidence; the prediction it belongs to may be two days
older) and carries the detector's own account of the change (:class:`Change`): the mean
error before its change point and since, over how many errors.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

import numpy as np

from monitor.abc import PerformanceRepository as Repository
from monitor.concept.detectors import (
    ADWIN,
    DDM,
    HDDMA,
    Change,
    PageHinkley,
    SequentialDetector,
)
from monitor.concept.estimate import CBPE
from monitor.concept.performance import (
    Performance,
    classification_performance,
    degraded,
    regression_performance,
)
from monitor.drift.compare import ColumnDrift, column_drift
from monitor.drift.samples import ReferenceColumn
from monitor.results import (
    Detection,
    DetectionDetails,
    WindowPerformance,
    column_result,
    degradation_result,
    estimate_result,
    realized_performance,
)
from storage.rows import ErrorStream, LabelledRow, StreamRow

logger = logging.getLogger(__name__)

DETECTORS: dict[str, Any] = {
    "adwin": lambda: ADWIN(),
    # DDM's minimum error rate is locked in early: a longer warm start than river's 30
    # keeps a lucky first stretch of a low error rate from setting off false alarms
    "ddm": lambda: DDM(warm_start=1000),
    # alarms on a rising error only. No fading (alpha=1): with river's 0.9999 a stationary
    # error stream raises false alarms (see PageHinkley). river's delta 0.005 and threshold
    # 50 false-alarm on 0/1 errors as their variance grows: per 400,000 stationary errors
    # 0, 4, 8 and 15 alarms at error rates 5%, 15%, 30% and 50%; 0.01 and 75 gave 0, 0, 0
    # and 2, and detected the demo's change about 2,000 errors later than the defaults
    "page_hinkley": lambda: PageHinkley(mode="up", alpha=1.0, delta=0.01, threshold=75.0),
    "hddm_a": lambda: HDDMA(),
}
BINARY_ONLY = {"ddm", "hddm_a"}
WINDOWS_PER_QUERY = 200  # windows whose rows one query reads
PENDING, INCOMPLETE, COMPLETE = "pending", "incomplete", "complete"
TARGET = "@target"  # the labels, tested for drift like a column


@dataclass(frozen=True)
class PerformanceSettings:
    task: str = "binary"
    threshold: float = 0.5
    label_delay: timedelta = timedelta(days=2)
    min_coverage: float = 0.8
    metrics: Sequence[str] = ("roc_auc",)
    tolerance: float = 0.02
    confidence: float = 0.95
    detectors: Sequence[str] = ("adwin", "page_hinkley", "hddm_a")
    min_labelled: int = 30  # fewer labelled rows: no realized figures at all
    resamples: int = 200
    max_pending: int = 100_000  # labels waiting for their prediction


def normalize(value: Any) -> Any:
    """Labels and predictions compared as users mean them: ``True == 1 == 1.0``."""
    if isinstance(value, bool):
        return int(value)
    if isinstance(value, float) and value.is_integer():
        return int(value)
    return value


@dataclass
class StreamReport:
    errors: int = 0
    waiting: int = 0
    detections: list[Detection] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return {
            "errors": self.errors,
            "waiting": self.waiting,
            "detections": [d.to_dict() for d in self.detections],
        }


class PerformanceEngine:
    def __init__(
        self,
        *,
        repository: Repository,
        model: str,
        settings: PerformanceSettings,
        reference: Performance | None = None,
        estimator: CBPE | None = None,
        positive: Any = 1,
        reference_labels: Sequence[Any] | None = None,
    ) -> None:
        self.repository = repository
        self.model = model
        self.settings = settings
        self.reference = reference
        self.estimator = estimator
        self.positive = normalize(positive)
        self.reference_labels = reference_labels  # the reference's target
        self._target: tuple[Sequence[Any], ReferenceColumn] | None = None

    # -- windows ------------------------------------------------------------------------

    def update(self, now: datetime) -> dict[datetime, WindowPerformance]:
        """Recompute every window whose labels or rows changed, or that just matured."""
        changed, cursor = self.repository.changed_windows(self.model)
        # a window is recomputed when its join changed, and once more when it matures
        matured = self.repository.matured_windows(
            self.model, ended_before=now - self.settings.label_delay
        )
        starts = sorted(set(changed) | set(matured))
        if not starts:
            self.repository.save_windows(self.model, [], cursor=cursor, now=now)
            return {}
        bounds = self.repository.window_bounds(self.model, starts)
        results = {}
        # the rows of many windows per query: a backfill of one-minute windows would
        # otherwise pay one round trip per window
        known = [start for start in starts if start in bounds]
        for i in range(0, len(known), WINDOWS_PER_QUERY):
            batch = known[i : i + WINDOWS_PER_QUERY]
            rows = self.repository.windows_rows(self.model, batch)
            for start in batch:
                results[start] = self.window(rows.get(start, []), start, bounds[start], now)
        self.repository.save_windows(self.model, list(results.values()), cursor=cursor, now=now)
        return results

    def window(
        self, rows: Sequence[LabelledRow], start: datetime, end: datetime, now: datetime
    ) -> WindowPerformance:
        s = self.settings
        labelled = [r for r in rows if r.label is not None]
        coverage = len(labelled) / len(rows) if rows else 0.0
        mature = end + s.label_delay <= now
        state = PENDING if not mature else COMPLETE if coverage >= s.min_coverage else INCOMPLETE
        realized = degradation = None
        if len(labelled) >= s.min_labelled:
            try:
                performance = self.realized(labelled)
            except ValueError as exc:  # e.g. one class only: no AUC
                logger.info("no realized performance for window %s: %s", start, exc)
            else:
                realized = realized_performance(performance)
                if self.reference is not None:
                    degradation = {
                        metric: degradation_result(
                            degraded(
                                performance, self.reference, metric=metric, tolerance=s.tolerance
                            )
                        )
                        for metric in s.metrics
                        if metric in performance.metrics and metric in self.reference.metrics
                    }
        target = None
        if self.reference_labels is not None and len(labelled) >= s.min_labelled:
            target = column_result(self.target_drift([r.label for r in labelled]))
        estimated = None
        scores = np.array([r.score for r in rows if r.score is not None], dtype=float)
        if self.estimator is not None and scores.size >= s.min_labelled:
            estimated = estimate_result(self.estimator.estimate(scores))
        return WindowPerformance(
            start=start,
            end=end,
            predictions=len(rows),
            labelled=len(labelled),
            coverage=coverage,
            state=state,
            realized=realized,
            degradation=degradation,
            target_drift=target,
            estimated=estimated,
        )

    def target_drift(self, labels: Sequence[Any]) -> ColumnDrift:
        """The labels' distribution against the reference target's (Evidently's default
        method choice: categorical for classification, numeric for regression)."""
        assert self.reference_labels is not None
        if self._target is None or self._target[0] is not self.reference_labels:
            # prepared once: the reference is the same for every window
            self._target = (self.reference_labels, ReferenceColumn.from_values(self._labels()))
        if self.settings.task == "regression":
            cur = np.asarray([float(v) for v in labels], dtype=float)
        else:
            cur = np.asarray([str(normalize(v)) for v in labels], dtype=object)
        kind = "numeric" if self.settings.task == "regression" else "categorical"
        return column_drift(TARGET, self._target[1], cur, kind)

    def _labels(self) -> Any:
        assert self.reference_labels is not None
        if self.settings.task == "regression":
            return np.asarray(self.reference_labels, dtype=float)
        return np.asarray([str(normalize(v)) for v in self.reference_labels], dtype=object)

    def realized(self, rows: Sequence[LabelledRow]) -> Performance:
        s = self.settings
        if s.task == "regression":
            return regression_performance(
                np.array([float(r.label) for r in rows]),
                np.array([float(r.prediction) for r in rows]),
                confidence=s.confidence,
                resamples=s.resamples,
            )
        if s.task == "binary":
            y_true = np.array([normalize(r.label) == self.positive for r in rows], dtype=int)
            y_pred = np.array([normalize(r.prediction) == self.positive for r in rows], dtype=int)
            have_scores = all(r.score is not None for r in rows)
            return classification_performance(
                y_true,
                y_pred,
                np.array([r.score for r in rows], dtype=float) if have_scores else None,
                threshold=s.threshold,
                classes=(0, 1),
                confidence=s.confidence,
                resamples=s.resamples,
            )
        return classification_performance(
            np.array([str(normalize(r.label)) for r in rows]),
            np.array([str(normalize(r.prediction)) for r in rows]),
            confidence=s.confidence,
            resamples=s.resamples,
        )

    # -- the error stream ---------------------------------------------------------------

    def detectors(self, saved: Mapping[str, Any] | None = None) -> dict[str, SequentialDetector]:
        """The configured detectors, restored from ``saved`` states where present."""
        saved = saved or {}
        names = [
            n
            for n in self.settings.detectors
            if not (self.settings.task == "regression" and n in BINARY_ONLY)
        ]
        return {
            n: SequentialDetector.from_state(saved[n]) if n in saved else DETECTORS[n]()
            for n in names
        }

    def error(self, row: StreamRow) -> float:
        if self.settings.task == "regression":
            return abs(float(row.label) - float(row.prediction))
        return float(normalize(row.label) != normalize(row.prediction))

    def feed(self, now: datetime, *, limit: int = 200_000) -> StreamReport:
        """Feed the errors of labels that arrived since the last run to the detectors."""
        stream = self.repository.stream(self.model)
        rows = self.repository.stream_rows(
            self.model, after=stream.label_cursor, pending=stream.pending, limit=limit
        )
        detectors = self.detectors(stream.detectors)
        report = StreamReport()
        position, cursor = stream.position, stream.label_cursor
        waiting: list[int] = []
        for row in rows:
            cursor = max(cursor, row.label_pk)
            if row.ts is None:
                waiting.append(row.label_pk)
                continue
            try:
                error = self.error(row)
            except (TypeError, ValueError):
                logger.warning(
                    "label %s of %s is not comparable with its prediction", row.id, self.model
                )
                continue
            for name, detector in detectors.items():
                if name in BINARY_ONLY and error not in (0.0, 1.0):
                    continue
                detector.update(error)
                change = detector.change
                if change is not None:
                    report.detections.append(
                        _detection(name, position, row, change, self.settings.task)
                    )
            position += 1
            report.errors += 1
        if len(waiting) > self.settings.max_pending:
            logger.warning(
                "%d labels of %s have no prediction; forgetting the oldest %d",
                len(waiting),
                self.model,
                len(waiting) - self.settings.max_pending,
            )
            waiting = waiting[-self.settings.max_pending :]
        report.waiting = len(waiting)
        states: dict[str, Any] = {n: d.state() for n, d in detectors.items()}
        self.repository.save_stream(
            self.model,
            ErrorStream(cursor, position, waiting, states),
            report.detections,
            now=now,
        )
        return report


def _detection(name: str, position: int, row: StreamRow, change: Change, task: str) -> Detection:
    """A detection as stored: when its evidence arrived (the label's time: errors reach
    the detectors in label arrival order, so the prediction's own time says nothing about
    when the error rate moved) and the detector's own account of the change."""
    return Detection(
        detector=name,
        position=position,
        ts=row.label_ts,
        details=DetectionDetails(
            label_ts=row.label_ts,
            prediction_ts=row.ts,
            # the error rate (mean error) before and after the detector's change point
            error_before=change.before,
            error_after=change.after,
            errors_before=change.n_before,
            errors_after=change.n_after,
            change_position=position - change.n_after + 1,
            rising=change.rising,
            measure="absolute_error" if task == "regression" else "error_rate",
        ),
    )
