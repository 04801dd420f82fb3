"""The performance job over a real store: delayed labels, coverage and maturity,
realized vs estimated performance, and detectors fed in label arrival order."""

from __future__ import annotations

import itertools
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from typing import Any

import numpy as np
import orjson
import pytest

from monitor.concept.detectors import ADWIN, detect
from monitor.concept.estimate import CBPE
from monitor.concept.performance import classification_performance
from monitor.performance import DETECTORS, PerformanceEngine, PerformanceSettings
from monitor.results import Detection
from storage.ingest import Checkpoint, Chunk, IngestRepository
from storage.performance import PerformanceRepository
from storage.store import Store

T0 = datetime(2026, 11, 2, tzinfo=UTC)
W = timedelta(hours=6)
MODEL = "fraud"
_positions = itertools.count(1)


def scored(
    rng: np.random.Generator, n: int, shift: float = 0.0, spread: float = 1.0
) -> tuple[Any, Any]:
    """A well-calibrated model: scores are P(y=1|x); ``shift`` and ``spread`` move x
    (covariate shift) while P(y=1|x) stays the same."""
    x = rng.normal(shift, spread, n)
    p = 1.0 / (1.0 + np.exp(-(2.5 * x - 2.0)))
    y = (rng.random(n) < p).astype(int)
    return p, y


def commit(store: Store, rows: list[dict[str, Any]], kind: str, now: datetime) -> None:
    position = next(_positions)
    checkpoint = Checkpoint(f"1:{position}", f"/logs/{kind}.jsonl", None, position, position)
    IngestRepository(store).commit(Chunk(MODEL, kind, kind, checkpoint, rows, []), now=now)


def predictions(window: int, scores: Any, prefix: str = "p") -> list[dict[str, Any]]:
    start = T0 + window * W
    return [
        {
            "id": f"{prefix}{window}-{i}",
            "ts": start + timedelta(seconds=i),
            "window_start": start,
            "model_version": "1",
            "variant": "champion",
            "features": "{}",
            "prediction": orjson.dumps(int(s >= 0.5)).decode(),
            "score": float(s),
            "probabilities": None,
        }
        for i, s in enumerate(scores)
    ]


def labels(window: int, ys: Any, *, only: Any = None, prefix: str = "p") -> list[dict[str, Any]]:
    keep = range(len(ys)) if only is None else only
    return [
        {
            "id": f"{prefix}{window}-{i}",
            "ts": T0 + 10 * W,
            "label": orjson.dumps(int(ys[i])).decode(),
        }
        for i in keep
    ]


@pytest.fixture
def engine(store: Store) -> PerformanceEngine:
    rng = np.random.default_rng(0)
    ref_scores, ref_y = scored(rng, 20_000)
    settings = PerformanceSettings(
        label_delay=timedelta(days=1), min_coverage=0.8, metrics=("roc_auc", "accuracy")
    )
    return PerformanceEngine(
        repository=PerformanceRepository(store),
        model=MODEL,
        settings=settings,
        reference=classification_performance(ref_y, (ref_scores >= 0.5).astype(int), ref_scores),
        estimator=CBPE().fit(ref_scores, ref_y),
    )


def test_thirty_percent_labelled_is_reported_with_coverage_and_marked_incomplete(
    store: Store, engine: PerformanceEngine
) -> None:
    rng = np.random.default_rng(1)
    scores, ys = scored(rng, 2000)
    commit(store, predictions(0, scores), "predictions", T0 + W)
    commit(store, labels(0, ys, only=range(0, 2000, 10)[:60]), "labels", T0 + W)  # 3%

    # before maturity: pending, estimates available, realized from the few labels
    [result] = engine.update(T0 + 2 * W).values()
    assert result.state == "pending" and result.labelled == 60
    assert result.estimated is not None
    assert (result.estimated.metrics["roc_auc"].value or 0) > 0.8

    # 30% of the labels have arrived, and the window is past its label delay
    commit(store, labels(0, ys, only=range(600)), "labels", T0 + 6 * W)
    [result] = engine.update(T0 + 6 * W).values()
    assert result.labelled == 600 and result.coverage == pytest.approx(0.3)
    assert result.state == "incomplete"  # reported, never taken as final
    assert result.realized is not None
    assert result.realized.metrics["accuracy"].value is not None
    assert result.estimated is not None  # estimates continue

    [row] = PerformanceRepository(store).windows(MODEL)
    assert row.state == "incomplete" and row.coverage == pytest.approx(0.3)
    assert row.realized == result.realized and row.estimated == result.estimated

    # the rest arrives: complete
    commit(store, labels(0, ys, only=range(600, 2000)), "labels", T0 + 7 * W)
    [result] = engine.update(T0 + 7 * W).values()
    assert result.state == "complete" and result.coverage == 1.0


def test_labels_join_whether_they_arrive_before_or_after_their_predictions(
    store: Store, engine: PerformanceEngine
) -> None:
    rng = np.random.default_rng(2)
    scores, ys = scored(rng, 400)
    commit(store, labels(0, ys, only=range(200)), "labels", T0)  # early labels
    commit(store, predictions(0, scores), "predictions", T0 + W)
    commit(store, labels(0, ys, only=range(200, 400)), "labels", T0 + W)
    [result] = engine.update(T0 + 6 * W).values()
    assert result.labelled == 400 and result.state == "complete"
    assert result.realized is not None
    expected = classification_performance(ys, (scores >= 0.5).astype(int), scores)
    assert result.realized.metrics["roc_auc"].value == pytest.approx(
        expected["roc_auc"].value, abs=1e-12
    )
    assert engine.update(T0 + 7 * W) == {}  # nothing changed: nothing recomputed


def test_covariate_shift_shows_in_the_estimate_before_labels_and_matches_after(
    store: Store, engine: PerformanceEngine
) -> None:
    rng = np.random.default_rng(3)
    scores, ys = scored(rng, 5000, shift=0.8, spread=0.4)  # crowding the decision boundary
    commit(store, predictions(0, scores), "predictions", T0 + W)
    [before] = engine.update(T0 + W).values()
    assert before.estimated is not None
    estimate = before.estimated.metrics["roc_auc"]
    assert estimate.alert  # outside the reference's band, with no label at all
    assert before.labelled == 0 and before.realized is None

    commit(store, labels(0, ys), "labels", T0 + 5 * W)
    [after] = engine.update(T0 + 5 * W).values()
    assert after.realized is not None and after.degradation is not None
    realized = after.realized.metrics["roc_auc"].value
    assert estimate.value is not None and realized is not None
    assert estimate.sampling_error is not None
    assert abs(estimate.value - realized) < 3 * estimate.sampling_error
    assert after.degradation["roc_auc"].degraded


def error_stream(rng: np.random.Generator, n: int, change: int | None) -> Any:
    rate = np.where(np.arange(n) < (change if change is not None else n), 0.05, 0.25)
    return (rng.random(n) < rate).astype(int)


@pytest.mark.parametrize("change", [3000, None], ids=["concept-change", "stationary"])
def test_detectors_fire_after_a_concept_change_and_not_on_a_stationary_stream(
    store: Store, engine: PerformanceEngine, change: int | None
) -> None:
    rng = np.random.default_rng(4)
    errors = error_stream(rng, 6000, change)
    # predictions all say 0; the label is 1 exactly where the model erred
    commit(store, predictions(0, np.full(6000, 0.1)), "predictions", T0)
    found: list[Detection] = []
    for part in np.array_split(np.arange(6000), 7):  # labels arrive over several runs
        commit(store, labels(0, errors, only=part), "labels", T0 + W)
        found += engine.feed(T0 + W).detections
    rising = [d for d in found if d.details.rising]
    if change is None:
        assert rising == []
    else:
        first = {d.detector: d.position for d in reversed(rising)}
        assert set(first) == {"adwin", "page_hinkley", "hddm_a"}  # the default detectors
        assert all(change <= p < change + 500 for p in first.values()), first
    stored = PerformanceRepository(store).detections(MODEL, 1000)
    assert len(stored) == len(found)
    assert [replace(d, created_at=None) for d in stored] == found  # read back as written


def test_split_runs_detect_exactly_what_one_pass_detects(
    store: Store, engine: PerformanceEngine
) -> None:
    rng = np.random.default_rng(5)
    errors = error_stream(rng, 5000, 2500)
    commit(store, predictions(0, np.full(5000, 0.1)), "predictions", T0)
    positions = []
    for part in np.array_split(np.arange(5000), 13):
        commit(store, labels(0, errors, only=part), "labels", T0 + W)
        positions += [d.position for d in engine.feed(T0 + W).detections if d.detector == "adwin"]
    assert positions == detect(ADWIN, errors.astype(float))
    ph = [
        d.position
        for d in PerformanceRepository(store).detections(MODEL, 1000)
        if d.detector == "page_hinkley"
    ]
    assert ph == detect(DETECTORS["page_hinkley"], errors.astype(float))


def test_a_label_waits_for_its_late_prediction(store: Store, engine: PerformanceEngine) -> None:
    commit(store, labels(0, [1, 1, 1]), "labels", T0)
    report = engine.feed(T0)
    assert report.errors == 0 and report.waiting == 3
    commit(store, predictions(0, [0.1, 0.9, 0.2]), "predictions", T0 + W)
    report = engine.feed(T0 + W)
    assert report.errors == 3 and report.waiting == 0
    stream = PerformanceRepository(store).stream(MODEL)
    assert stream.position == 3 and stream.pending == []


def test_target_drift_compares_the_labels_with_the_reference_target(
    store: Store, engine: PerformanceEngine
) -> None:
    rng = np.random.default_rng(6)
    ref_scores, ref_y = scored(rng, 20_000)
    engine.reference_labels = list(ref_y)
    same_scores, same_y = scored(rng, 3000)
    shifted_scores, shifted_y = scored(rng, 3000, shift=1.0)  # many more positives
    commit(store, predictions(0, same_scores), "predictions", T0)
    commit(store, predictions(1, shifted_scores), "predictions", T0)
    commit(store, labels(0, same_y) + labels(1, shifted_y), "labels", T0 + W)
    results = engine.update(T0 + 8 * W)
    same, shifted = results[T0].target_drift, results[T0 + W].target_drift
    assert same is not None and shifted is not None
    assert same.column == "@target" and same.method == "jensenshannon"
    assert not same.drifted and shifted.drifted
    assert shifted.score is not None and same.score is not None
    assert shifted.score > 2 * same.score


def test_a_window_is_recomputed_once_when_it_matures_and_not_again(
    store: Store, engine: PerformanceEngine
) -> None:
    rng = np.random.default_rng(7)
    scores, ys = scored(rng, 500)
    commit(store, predictions(0, scores), "predictions", T0)
    commit(store, labels(0, ys), "labels", T0 + W)
    [first] = engine.update(T0 + 2 * W).values()
    assert first.state == "pending"  # fully labelled, but the label delay is not over
    assert engine.update(T0 + 3 * W) == {}  # nothing changed, nothing recomputed
    [matured] = engine.update(T0 + 6 * W).values()  # a day after the window's end
    assert matured.state == "complete"
    assert engine.update(T0 + 7 * W) == {}


def test_a_backfill_of_many_windows_costs_as_many_queries_as_a_few(
    store: Store, engine: PerformanceEngine
) -> None:
    """Catching up on many small windows reads and writes them in batches: the statements
    sent for 150 windows are those sent for 3 (issue 11: one-minute windows)."""
    from sqlalchemy import event

    rng = np.random.default_rng(8)
    statements: list[str] = []

    def count(conn: Any, cursor: Any, statement: str, *args: Any) -> None:
        statements.append(statement)

    def backfill(windows: range, prefix: str, now: datetime) -> int:
        for w in windows:
            scores, ys = scored(rng, 40)
            commit(store, predictions(w, scores, prefix), "predictions", now)
            commit(store, labels(w, ys, prefix=prefix), "labels", now)
        statements.clear()
        event.listen(store.engine, "before_cursor_execute", count)
        try:
            results = engine.update(now)
        finally:
            event.remove(store.engine, "before_cursor_execute", count)
        assert len(results) == len(windows)
        return len(statements)

    few = backfill(range(3), "a", T0 + 200 * W)
    many = backfill(range(3, 153), "b", T0 + 200 * W)
    assert many <= few  # (the first run also inserted the labels cursor)
