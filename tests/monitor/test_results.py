"""The typed results: built from the engines' computation objects without losing a field,
stored as the same JSON as when they were dicts, and read back, old shapes included."""

from __future__ import annotations

from dataclasses import fields, replace
from datetime import UTC, datetime, timedelta
from typing import Any

import numpy as np
import orjson
import pytest

from monitor.concept.estimate import CBPE
from monitor.concept.performance import classification_performance, degraded
from monitor.drift.compare import compare, window_drift
from monitor.drift.profile import fit_profile
from monitor.drift.quality import window_checks
from monitor.drift.state import partial, row_keys
from monitor.records import FeatureType
from monitor.results import (
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
    column_result,
    degradation_result,
    drift_result,
    estimate_result,
    multivariate_result,
    quality_check,
    realized_performance,
)
from monitor.statistics import DriftSettings, StatisticsEngine

T0 = datetime(2026, 11, 2, tzinfo=UTC)
SCHEMA = {"amount": FeatureType.NUMERIC, "country": FeatureType.CATEGORICAL}


def draw(g: np.random.Generator, n: int, shift: float = 0.0) -> dict[str, Any]:
    p = [0.5 - shift, 0.3, 0.2 + shift]
    return {
        "amount": g.lognormal(3.5 + shift, 0.8, n),
        "country": np.array(["DE", "FR", "US"], dtype=object)[g.choice(3, n, p=p)],
    }


PROFILE = fit_profile(draw(np.random.default_rng(0), 5000), SCHEMA, model_version="1")
ENGINE = StatisticsEngine(
    repository=None,  # type: ignore[arg-type]  # window_results reads no store
    model="m",
    profile=PROFILE,
    settings=DriftSettings(multivariate=True),
)


def state_of(seed: int, shift: float, n: int = 1500) -> Any:
    columns = draw(np.random.default_rng(seed), n, shift)
    columns["country"][:30] = "BR"  # unseen: a failed quality check
    keys = row_keys([f"{seed}-{i}" for i in range(n)])
    return partial({k: list(v) for k, v in columns.items()}, keys, PROFILE)


def names(cls: type) -> set[str]:
    return {f.name for f in fields(cls)}


def test_results_hold_every_field_of_the_computation_objects() -> None:
    """A field added to a computation object must be added to its result type too (or
    the store would silently drop it): the conversions are exact."""
    state = state_of(1, 0.3)
    drift = window_drift(state, PROFILE, references=ENGINE.references())
    assert drift_result(drift).to_dict() == drift.to_dict()
    for column in drift.columns:
        assert column_result(column).to_dict() == column.to_dict()
    checks = window_checks(PROFILE, state, expected_rows=10_000.0)
    assert any(c.failed for c in checks)
    for check in checks:
        assert quality_check(check).to_dict() == check.to_dict()
    joint = ENGINE.multivariate(state)
    assert joint
    for m in joint:
        assert multivariate_result(m).to_dict() == m.to_dict()

    g = np.random.default_rng(2)
    y = g.integers(0, 2, 600)
    scores = np.clip(y * 0.3 + g.random(600) * 0.7, 0, 1)
    performance = classification_performance(y, (scores >= 0.5).astype(int), scores)
    assert realized_performance(performance).to_dict() == performance.to_dict()
    worse = classification_performance(y, 1 - y, 1 - scores)
    drop = degraded(worse, performance, metric="roc_auc", tolerance=0.02)
    assert degradation_result(drop).to_dict() == drop.to_dict()
    estimator = CBPE(cost={"fn": 10.0, "fp": 1.0}).fit(scores, y)
    estimate = estimator.estimate(scores[:300])
    assert estimate_result(estimate).to_dict() == estimate.to_dict()

    pairs = [
        (ColumnResult, type(drift.columns[0])),
        (QualityCheck, type(checks[0])),
        (MultivariateResult, type(joint[0])),
        (MetricResult, type(performance.metrics["roc_auc"])),
        (RealizedPerformance, type(performance)),
        (DegradationResult, type(drop)),
        (EstimatedMetricResult, type(next(iter(estimate.metrics.values())))),
        (EstimateResult, type(estimate)),
    ]
    for result, computed in pairs:
        assert names(computed) <= names(result), (result, names(computed) - names(result))


def test_window_results_round_trip_through_their_stored_json() -> None:
    results = ENGINE.window_results(state_of(3, 0.3), T0, T0 + timedelta(hours=1), 1500, 1500.0)
    assert results.drift.drifted and results.quality_failed and results.multivariate
    stored = orjson.dumps(results.to_dict(), option=orjson.OPT_NON_STR_KEYS)
    assert WindowResults.from_dict(orjson.loads(stored)) == results
    shape = results.to_dict()
    assert list(shape) == [
        "start",
        "end",
        "rows",
        "drift",
        "prediction_drift",
        "quality",
        "quality_failed",
        "calibration",
        "multivariate",
    ]
    assert shape["start"] == T0.isoformat() and shape["drift"]["columns_total"] == 2
    assert shape["quality_failed"] == [q for q in shape["quality"] if q["failed"]]
    assert "report" in WindowResults.from_dict({**shape, "report": "r.html"}).to_dict()


def test_the_first_stored_shape_of_window_results_is_read() -> None:
    """Rows finalized by the first statistics engine: per-column calibrations, columns
    without the fields added since, no prediction drift or multivariate section."""
    column = {
        "column": "amount",
        "column_type": "num",
        "method": "wasserstein",
        "score": None,
        "threshold": 0.1,
        "drifted": False,
        "basis": "exact",
        "n_reference": 10,
        "n_current": 5,
    }
    old = {
        "start": "2026-11-02T00:00:00+00:00",
        "end": "2026-11-02T01:00:00+00:00",
        "rows": 5,
        "drift": {
            "drifted": False,
            "drifted_columns": 0,
            "columns_total": 1,
            "share": 0.0,
            "drift_share": 0.5,
            "columns": [column],
        },
        "quality": [],
        "quality_failed": [],
        "calibration": {"amount": {"method": "wasserstein", "quantile": 0.99}},
    }
    results = WindowResults.from_dict(old)
    assert results.start == T0 and results.calibration is None
    assert results.drift.columns == (ColumnResult.from_dict(column),)
    assert results.drift.columns[0].score is None and not results.drift.insufficient
    assert results.prediction_drift == () and results.multivariate == ()


def test_window_performance_is_stored_as_before_and_read_back() -> None:
    g = np.random.default_rng(4)
    y = g.integers(0, 2, 400)
    scores = np.clip(y * 0.4 + g.random(400) * 0.6, 0, 1)
    performance = classification_performance(y, (scores >= 0.5).astype(int), scores)
    drop = degraded(performance, performance, metric="roc_auc", tolerance=0.02)
    estimate = CBPE().fit(scores, y).estimate(scores)
    window = WindowPerformance(
        start=T0,
        end=T0 + timedelta(hours=1),
        predictions=500,
        labelled=400,
        coverage=0.8,
        state="complete",
        realized=realized_performance(performance),
        degradation={"roc_auc": degradation_result(drop)},
        estimated=estimate_result(estimate),
    )
    realized = window.realized_dict()
    assert realized == {
        "performance": performance.to_dict(),
        "degradation": {"roc_auc": drop.to_dict()},
        "target_drift": None,
    }
    estimated = orjson.loads(orjson.dumps(estimate.to_dict()))
    back = WindowPerformance.from_stored(
        start=T0,
        predictions=500,
        labelled=400,
        state="complete",
        realized=orjson.loads(orjson.dumps(realized)),
        estimated=estimated,
    )
    assert back.end is None and back.coverage == pytest.approx(0.8)
    assert replace(back, end=window.end) == window
    pending = WindowPerformance.from_stored(
        start=T0, predictions=0, labelled=0, state="pending", realized=None, estimated=None
    )
    assert pending.coverage == 0.0 and pending.realized is None and pending.degradation is None


def test_detections_old_and_new_details() -> None:
    new = Detection(
        "adwin",
        120,
        T0,
        DetectionDetails(
            label_ts=T0,
            prediction_ts=None,
            error_before=0.05,
            error_after=0.2,
            errors_before=100,
            errors_after=20,
            change_position=101,
            rising=True,
        ),
    )
    shape = new.to_dict()
    assert "created_at" not in shape and shape["ts"] == T0
    assert shape["details"]["label_ts"] == T0.isoformat()
    assert DetectionDetails.from_dict(orjson.loads(orjson.dumps(shape["details"]))) == new.details
    assert new.rising
    # stored before detectors told their own change: four figures
    old = DetectionDetails.from_dict(
        {"label_ts": T0.isoformat(), "error_before": None, "error_after": 0.1, "rising": True}
    )
    assert old.errors_before is None and old.label_ts == T0
    assert not Detection("adwin", 3, T0, old).rising


def test_a_weighted_share_is_kept_as_computed() -> None:
    """The importance weights are not stored, so the dataset's share is kept as it was
    computed rather than recomputed from the columns."""
    g = np.random.default_rng(5)
    reference, current = draw(g, 2000), draw(g, 2000, 0.3)
    kinds = {name: str(kind) for name, kind in SCHEMA.items()}
    drift = compare(reference, current, kinds)
    weighted = DriftResult.from_dict({**drift.to_dict(), "share": 0.9, "weighted": True})
    assert weighted.share == 0.9 and weighted.drifted_columns == drift.drifted_columns
