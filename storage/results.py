"""The results of the statistics and performance jobs, as frozen dataclasses.

A window's statistics (:class:`WindowResults`: per-column drift, the dataset verdict,
prediction drift, data-quality checks, multivariate drift), its performance
(:class:`WindowPerformance`: coverage, state, realized metrics with intervals, the
degradation test, target drift, the label-free estimate) and the concept-drift
detections (:class:`Detection`) cross from :mod:`monitor` to :mod:`alerts` and the CLI
as these objects. They live here, free of SQLAlchemy and of every other driftd package,
for the reason :mod:`storage.rows` does: :mod:`storage` imports none of the layers
above it, yet serialises these results on write and parses them back on read (JSON
exists only inside :mod:`storage` and at the CLI's ``--json``). :mod:`monitor.results`
is the name the layers above import them by, with the builders from :mod:`monitor`'s
computation objects.

``to_dict`` gives the JSON shape stored since these results were dicts (the keys, their
order, the derived ``drifted_columns``, ``columns_total`` and ``quality_failed``), so
stored rows and ``--json`` output are unchanged; ``from_dict`` reads that shape and the
older ones (keys added since take their defaults, unknown keys are ignored). Figures
that were not finite are None, as they were stored.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, fields
from datetime import datetime
from typing import Any, Self


def _known(cls: type, data: Mapping[str, Any]) -> dict[str, Any]:
    """The entries of ``data`` that are fields of the dataclass ``cls``."""
    return {f.name: data[f.name] for f in fields(cls) if f.name in data}


def _flat(result: Any) -> dict[str, Any]:
    """A dataclass of scalars as a dict, fields in declaration order."""
    return {f.name: getattr(result, f.name) for f in fields(result)}


class _Flat:
    """A result of scalars: ``to_dict`` its fields in order, ``from_dict`` the fields
    present (older shapes lack the newer ones, which take their defaults)."""

    def to_dict(self) -> dict[str, Any]:
        return _flat(self)

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Self:
        return cls(**_known(cls, data))


def _time(value: str | datetime | None) -> datetime | None:
    if value is None or isinstance(value, datetime):
        return value
    return datetime.fromisoformat(value)


def _iso(value: datetime | None) -> str | None:
    return None if value is None else value.isoformat()


# -- window statistics ------------------------------------------------------------------


@dataclass(frozen=True)
class ColumnResult(_Flat):
    """One column's drift (see :class:`monitor.drift.compare.ColumnDrift`, whose fields
    these are): also prediction drift (``@score``, ``@prediction``) and target drift."""

    column: str
    column_type: str
    method: str
    score: float | None
    threshold: float | None
    drifted: bool
    basis: str = "exact"
    n_reference: int = 0
    n_current: int = 0
    error_bound: float | None = None
    note: str = ""
    insufficient: bool = False
    null_p: float | None = None
    floor: float | None = None
    effect: float | None = None
    discovered: bool = False


@dataclass(frozen=True)
class QualityCheck(_Flat):
    """One data-quality check (see :class:`monitor.drift.quality.Check`); ``column`` is
    None for a window-level check (row volume, duplicates, quarantine)."""

    check: str
    column: str | None
    value: float | None
    threshold: float | None
    failed: bool
    severity: str  # "warning" or "critical"
    detail: str = ""


@dataclass(frozen=True)
class MultivariateResult(_Flat):
    """A multivariate detector's verdict (see :mod:`monitor.drift.multivariate`)."""

    detector: str
    score: float | None
    threshold: float | None
    drifted: bool
    n_reference: int = 0
    n_current: int = 0


@dataclass(frozen=True)
class DriftResult:
    """The dataset verdict over the feature columns and each column's drift.

    ``share`` is kept as computed (importance-weighted when ``weighted``: the weights
    are not stored, so it cannot be recomputed from the columns)."""

    drifted: bool
    share: float
    drift_share: float
    columns: tuple[ColumnResult, ...] = ()
    weighted: bool = False
    control: str = "share"  # "fdr": only the columns Benjamini-Hochberg kept count
    rate: float | None = None
    insufficient: bool = False  # too few rows to judge: shown, never alerted
    min_rows: int = 0

    @property
    def drifted_columns(self) -> int:
        return sum(c.drifted for c in self.columns)

    @property
    def columns_total(self) -> int:
        return len(self.columns)

    def to_dict(self) -> dict[str, Any]:
        return {
            "drifted": self.drifted,
            "drifted_columns": self.drifted_columns,
            "columns_total": self.columns_total,
            "share": self.share,
            "drift_share": self.drift_share,
            "weighted": self.weighted,
            "control": self.control,
            "rate": self.rate,
            "insufficient": self.insufficient,
            "min_rows": self.min_rows,
            "columns": [c.to_dict() for c in self.columns],
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Self:
        known = _known(cls, data)
        known["columns"] = tuple(ColumnResult.from_dict(c) for c in data.get("columns", ()))
        return cls(**known)


@dataclass(frozen=True)
class Calibration(_Flat):
    """How the window's thresholds were set (``drift.thresholds``)."""

    mode: str  # "calibrated" or "evidently"
    false_alarm_rate: float
    control: str


@dataclass(frozen=True)
class WindowResults:
    """One window's statistics, as the statistics job finalizes and stores them."""

    start: datetime
    end: datetime
    rows: int
    drift: DriftResult
    prediction_drift: tuple[ColumnResult, ...] = ()
    quality: tuple[QualityCheck, ...] = ()
    calibration: Calibration | None = None  # None in rows stored before thresholds modes
    multivariate: tuple[MultivariateResult, ...] = ()
    report: str | None = None  # the detail report's path, when one was written

    @property
    def quality_failed(self) -> tuple[QualityCheck, ...]:
        return tuple(q for q in self.quality if q.failed)

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "start": self.start.isoformat(),
            "end": self.end.isoformat(),
            "rows": self.rows,
            "drift": self.drift.to_dict(),
            "prediction_drift": [c.to_dict() for c in self.prediction_drift],
            "quality": [q.to_dict() for q in self.quality],
            "quality_failed": [q.to_dict() for q in self.quality_failed],
            "calibration": None if self.calibration is None else self.calibration.to_dict(),
            "multivariate": [m.to_dict() for m in self.multivariate],
        }
        if self.report is not None:  # as stored: the key only when a report was written
            out["report"] = self.report
        return out

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Self:
        calibration = data.get("calibration")
        if calibration is not None and "mode" not in calibration:
            calibration = None  # the first shape: per-column simulated calibrations
        return cls(
            start=datetime.fromisoformat(data["start"]),
            end=datetime.fromisoformat(data["end"]),
            rows=data["rows"],
            drift=DriftResult.from_dict(data["drift"]),
            prediction_drift=tuple(
                ColumnResult.from_dict(c) for c in data.get("prediction_drift", ())
            ),
            quality=tuple(QualityCheck.from_dict(q) for q in data.get("quality", ())),
            calibration=None if calibration is None else Calibration.from_dict(calibration),
            multivariate=tuple(
                MultivariateResult.from_dict(m) for m in data.get("multivariate", ())
            ),
            report=data.get("report"),
        )


# -- performance ------------------------------------------------------------------------


@dataclass(frozen=True)
class MetricResult(_Flat):
    """A realized metric with its interval (see :class:`monitor.concept.performance.Metric`)."""

    name: str
    value: float | None
    lower: float | None
    upper: float | None
    method: str  # "wilson", "delong" or "bootstrap"
    n: int
    higher_is_better: bool = True


@dataclass(frozen=True)
class RealizedPerformance:
    """A window's performance on its labels (see :class:`~monitor.concept.performance.Performance`)."""

    task: str  # "binary", "multiclass" or "regression"
    n: int
    confidence: float
    metrics: Mapping[str, MetricResult]
    classes: tuple[Any, ...] = ()
    threshold: float | None = None
    confusion: tuple[tuple[int, ...], ...] = ()
    resamples: int = 0
    seed: int = 0

    def to_dict(self) -> dict[str, Any]:
        return {
            "task": self.task,
            "n": self.n,
            "confidence": self.confidence,
            "metrics": {name: m.to_dict() for name, m in self.metrics.items()},
            "classes": list(self.classes),
            "threshold": self.threshold,
            "confusion": [list(row) for row in self.confusion],
            "resamples": self.resamples,
            "seed": self.seed,
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Self:
        known = _known(cls, data)
        known["metrics"] = {k: MetricResult.from_dict(m) for k, m in data["metrics"].items()}
        known["classes"] = tuple(data.get("classes", ()))
        known["confusion"] = tuple(tuple(row) for row in data.get("confusion", ()))
        return cls(**known)


@dataclass(frozen=True)
class DegradationResult(_Flat):
    """Whether a metric dropped past its alert threshold (see
    :class:`monitor.concept.performance.Degradation`)."""

    metric: str
    higher_is_better: bool
    reference: float | None
    current: float | None
    tolerance: float
    margin: float | None
    threshold: float | None
    worse_by: float | None
    degraded: bool
    n: int
    confidence: float


@dataclass(frozen=True)
class EstimatedMetricResult(_Flat):
    """A label-free estimate with its band (see :class:`monitor.concept.estimate.EstimatedMetric`)."""

    name: str
    value: float | None
    sampling_error: float | None
    reference: float | None
    lower_threshold: float | None
    upper_threshold: float | None
    alert: bool


@dataclass(frozen=True)
class EstimateResult:
    """A window's CBPE estimate (see :class:`monitor.concept.estimate.Estimate`)."""

    n: int
    threshold: float
    calibration: str
    chunk_size: int
    metrics: Mapping[str, EstimatedMetricResult]

    def to_dict(self) -> dict[str, Any]:
        out = _flat(self)
        out["metrics"] = {name: m.to_dict() for name, m in self.metrics.items()}
        return out

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Self:
        known = _known(cls, data)
        known["metrics"] = {
            k: EstimatedMetricResult.from_dict(m) for k, m in (data.get("metrics") or {}).items()
        }
        return cls(**known)


@dataclass(frozen=True)
class WindowPerformance:
    """One window's performance, as the performance job computes and stores it.

    ``state``: "pending" until the window's end is ``label_delay`` ago, then "complete"
    (coverage reached ``min_coverage``) or "incomplete". ``realized`` is None below
    ``min_labelled`` labels; ``degradation`` (per alerted metric) and ``target_drift``
    come with it. ``end`` is None when read back from the store (which keeps it with the
    window, not with its performance)."""

    start: datetime
    predictions: int
    labelled: int
    coverage: float
    state: str
    realized: RealizedPerformance | None = None
    degradation: Mapping[str, DegradationResult] | None = None
    target_drift: ColumnResult | None = None
    estimated: EstimateResult | None = None
    end: datetime | None = None

    def realized_dict(self) -> dict[str, Any] | None:
        """What the store keeps in ``window_performance.realized``: the realized
        performance with its degradation test and target drift (None without it)."""
        if self.realized is None:
            return None
        return {
            "performance": self.realized.to_dict(),
            "degradation": None
            if self.degradation is None
            else {k: d.to_dict() for k, d in self.degradation.items()},
            "target_drift": None if self.target_drift is None else self.target_drift.to_dict(),
        }

    @classmethod
    def from_stored(
        cls,
        *,
        start: datetime,
        predictions: int,
        labelled: int,
        state: str,
        realized: Mapping[str, Any] | None,
        estimated: Mapping[str, Any] | None,
    ) -> Self:
        """A window's performance from its stored columns (parsed JSON)."""
        realized = realized or {}
        performance = realized.get("performance")
        degradation = realized.get("degradation")
        target = realized.get("target_drift")
        return cls(
            start=start,
            predictions=predictions,
            labelled=labelled,
            coverage=labelled / predictions if predictions else 0.0,
            state=state,
            realized=None if performance is None else RealizedPerformance.from_dict(performance),
            degradation=None
            if degradation is None
            else {k: DegradationResult.from_dict(d) for k, d in degradation.items()},
            target_drift=None if target is None else ColumnResult.from_dict(target),
            estimated=None if estimated is None else EstimateResult.from_dict(estimated),
        )


@dataclass(frozen=True)
class DetectionDetails:
    """A detector's own account of a change in the error stream: the mean error before
    its change point and since, over how many errors; when the evidence (the label)
    arrived. Detections stored before these figures have only some of them."""

    label_ts: datetime | None = None
    prediction_ts: datetime | None = None
    error_before: float | None = None
    error_after: float | None = None
    errors_before: int | None = None
    errors_after: int | None = None
    change_position: int | None = None
    rising: bool = False
    measure: str = "error_rate"  # "absolute_error" for regression

    def to_dict(self) -> dict[str, Any]:
        out = _flat(self)
        out["label_ts"], out["prediction_ts"] = _iso(self.label_ts), _iso(self.prediction_ts)
        return out

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Self:
        known = _known(cls, data)
        known["label_ts"] = _time(known.get("label_ts"))
        known["prediction_ts"] = _time(known.get("prediction_ts"))
        return cls(**known)


@dataclass(frozen=True)
class Detection:
    """A concept-drift detection: which detector, at which error of the stream, dated
    by its label's arrival; ``created_at`` once stored."""

    detector: str
    position: int
    ts: datetime
    details: DetectionDetails
    created_at: datetime | None = None

    @property
    def rising(self) -> bool:
        """The detector's own figures say the error rose (a detection whose figures do
        not rise is no alarm of rising errors)."""
        d = self.details
        return (
            d.rising
            and d.error_before is not None
            and d.error_after is not None
            and d.error_after > d.error_before
        )

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "detector": self.detector,
            "position": self.position,
            "ts": self.ts,
            "details": self.details.to_dict(),
        }
        if self.created_at is not None:
            out["created_at"] = self.created_at
        return out
