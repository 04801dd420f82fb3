"""The typed results :mod:`monitor`'s jobs hand to :mod:`alerts`, the CLI and the report.

The statistics engine finalizes a window into a :class:`WindowResults`, the performance
engine a window into a :class:`WindowPerformance` and the error stream into
:class:`Detection` objects; the store keeps them (as JSON, inside :mod:`storage` only)
and gives them back as the same objects. The dataclasses are defined in
:mod:`storage.results` because :mod:`storage`, which imports no layer above it,
serialises and parses them; this module is where the layers above import them from, and
where they are built from the computation objects of :mod:`monitor.drift` and
:mod:`monitor.concept` (which keep what the computation needs, e.g. the importance
weights behind a dataset's drift share, and no more is stored than before).
"""

from __future__ import annotations

from collections.abc import Mapping

from monitor.concept.estimate import Estimate
from monitor.concept.performance import Degradation, Performance
from monitor.drift.compare import ColumnDrift, DatasetDrift
from monitor.drift.multivariate import MultivariateDrift
from monitor.drift.quality import Check
from storage.results import (
    Calibration,
    ColumnResult,
    DegradationResult,
    Detection,
    DetectionDetails,
    DriftResult,
    EstimatedMetricResult,
    EstimateResult,
    MetricResult,
    MultivariateResult,
    QualityCheck,
    RealizedPerformance,
    WindowPerformance,
    WindowResults,
)

__all__ = [
    "Calibration",
    "ColumnResult",
    "DegradationResult",
    "Detection",
    "DetectionDetails",
    "DriftResult",
    "EstimateResult",
    "EstimatedMetricResult",
    "MetricResult",
    "MultivariateResult",
    "QualityCheck",
    "RealizedPerformance",
    "WindowPerformance",
    "WindowResults",
    "column_result",
    "degradation_result",
    "degradations",
    "drift_result",
    "estimate_result",
    "multivariate_result",
    "quality_check",
    "realized_performance",
]

# The computation objects' dicts are exactly the results' shapes (a test checks that
# every field they have is a field of the result): converting through them keeps one
# definition of how a NaN becomes None.


def column_result(c: ColumnDrift) -> ColumnResult:
    return ColumnResult.from_dict(c.to_dict())


def drift_result(d: DatasetDrift) -> DriftResult:
    return DriftResult.from_dict(d.to_dict())


def quality_check(c: Check) -> QualityCheck:
    return QualityCheck.from_dict(c.to_dict())


def multivariate_result(m: MultivariateDrift) -> MultivariateResult:
    return MultivariateResult.from_dict(m.to_dict())


def realized_performance(p: Performance) -> RealizedPerformance:
    return RealizedPerformance.from_dict(p.to_dict())


def degradation_result(d: Degradation) -> DegradationResult:
    return DegradationResult.from_dict(d.to_dict())


def estimate_result(e: Estimate) -> EstimateResult:
    return EstimateResult.from_dict(e.to_dict())


def degradations(found: Mapping[str, Degradation]) -> dict[str, DegradationResult]:
    return {metric: degradation_result(d) for metric, d in found.items()}
