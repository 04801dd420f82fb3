"""The bundled demo's error stream through the performance job's detectors: silence over
the stationary days, then an alarm whose words and numbers agree (issue 10, defect 12).

The stream is the demo's own (:mod:`driftd.demo.data` with :func:`driftd.demo.run.run_demo`'s
defaults); labels reach the detectors in arrival order, tick by tick as the demo runs the
performance job, through :meth:`PerformanceEngine.feed` over an in-memory repository.
"""

from __future__ import annotations

import inspect
import re
from collections.abc import Sequence
from datetime import datetime, timedelta
from typing import Any

import orjson
import pytest
from threadpoolctl import threadpool_limits

from alerts.signals import CONCEPT_DRIFT, detector_evaluation
from driftd.demo import data
from driftd.demo.run import LABEL_DELAY_HOURS, START, run_demo
from monitor.performance import PerformanceEngine, PerformanceSettings
from monitor.results import Detection
from storage.performance import ErrorStream, StreamRow

DEMO = {
    name: p.default
    for name, p in inspect.signature(run_demo).parameters.items()
    if p.default is not inspect.Parameter.empty
}


class MemoryStream:
    """The error-stream part of the performance repository, in memory: labels in arrival
    order, detector states saved as JSON between runs as the store saves them."""

    def __init__(self) -> None:
        self.rows: list[StreamRow] = []
        self.saved = ErrorStream(0, 0, [], {})

    def stream(self, model: str) -> ErrorStream:
        return self.saved

    def stream_rows(
        self, model: str, *, after: int, pending: Sequence[int], limit: int
    ) -> list[StreamRow]:
        waiting = set(pending)
        old = [r for r in self.rows if r.label_pk in waiting]
        return old + [r for r in self.rows if r.label_pk > after][:limit]

    def save_stream(
        self, model: str, stream: ErrorStream, detections: Sequence[Detection], *, now: Any
    ) -> None:
        self.saved = ErrorStream(
            stream.label_cursor,
            stream.position,
            list(stream.pending),
            orjson.loads(orjson.dumps(stream.detectors)),
        )


def demo_ticks() -> tuple[int, list[tuple[datetime, list[StreamRow]]]]:
    """The demo's drift hour, and per tick of the performance job the labels that arrived."""
    days, tick, seed = DEMO["days"], DEMO["tick_hours"], DEMO["seed"]
    hours = days * 24
    drift_at = min(72, hours // 2)  # run_demo's default; the change stays
    model = data.train_baseline(data.make_reference(20_000, seed=seed), seed=seed)
    stream = data.ProductionStream(
        model=model,
        start=START,
        rows_per_hour=DEMO["rows_per_hour"],
        drift_at_hour=drift_at,
        seed=seed,
        label_delay_hours=LABEL_DELAY_HOURS,
    )
    predictions: dict[str, dict[str, Any]] = {}
    ticks, arrived, pk = [], [], 0
    for h in range(hours):
        batch = stream.hour(h)
        predictions.update((p["id"], p) for p in batch.predictions)
        for label in batch.labels:
            pk += 1
            p = predictions[label["id"]]
            arrived.append(
                StreamRow(
                    pk,
                    label["id"],
                    label["label"],
                    datetime.fromisoformat(label["ts"]),
                    datetime.fromisoformat(p["ts"]),
                    p["prediction"],
                )
            )
        if (h + 1) % tick == 0:
            ticks.append((START + timedelta(hours=h + 1), arrived))
            arrived = []
    return drift_at, ticks


@pytest.fixture(scope="module")
def demo() -> tuple[datetime, list[tuple[datetime, list[StreamRow]]]]:
    with threadpool_limits(1):  # scoring small batches: OpenMP threads only spin
        drift_at, ticks = demo_ticks()
    return START + timedelta(hours=drift_at), ticks


def feed(ticks: list[tuple[datetime, list[StreamRow]]]) -> list[tuple[datetime, Any]]:
    repository = MemoryStream()
    engine = PerformanceEngine(
        repository=repository,  # type: ignore[arg-type]  # the stream methods only
        model="card-fraud",
        settings=PerformanceSettings(),  # the default detectors, as the demo's config
    )
    runs = []
    for now, rows in ticks:
        repository.rows += rows
        runs.append((now, engine.feed(now)))
    return runs


def test_the_stationary_days_raise_no_concept_drift_alert(
    demo: tuple[datetime, list[tuple[datetime, list[StreamRow]]]],
) -> None:
    change, ticks = demo
    # the errors of the predictions made before the change, in arrival order, alone
    stationary = [
        (now, [r for r in rows if r.ts is not None and r.ts < change]) for now, rows in ticks
    ]
    runs = feed(stationary)
    assert sum(report.errors for _, report in runs) > 25_000
    assert [d for _, report in runs for d in report.detections] == []
    # and in the whole stream, every run up to the first label of a changed prediction
    first_changed = min(r.label_ts for _, rows in ticks for r in rows if r.ts and r.ts >= change)
    for now, report in feed(ticks):
        if now <= first_changed:
            assert report.detections == [], now
            assert detector_evaluation("card-fraud", [], report.errors).signals == ()


def test_after_the_change_the_alarm_says_the_error_rate_rose_with_its_own_numbers(
    demo: tuple[datetime, list[tuple[datetime, list[StreamRow]]]],
) -> None:
    change, ticks = demo
    stationary = [
        float(r.label != r.prediction) for _, rows in ticks for r in rows if r.ts < change
    ]
    stationary_rate = sum(stationary) / len(stationary)
    alarms = []
    for now, report in feed(ticks):
        evaluation = detector_evaluation("card-fraud", report.detections, report.errors)
        alarms += [(now, report, s) for s in evaluation.signals if s.rule == CONCEPT_DRIFT]
    assert alarms, "the change must be detected"
    now, report, signal = alarms[0]
    assert change < now <= change + timedelta(days=2)
    for d in report.detections:
        details = d.details
        assert d.ts > change  # the evidence (labels) arrived after the change
        assert d.rising and details.error_after is not None
        assert details.error_before == pytest.approx(stationary_rate, abs=0.01)
    # the message's numbers are the detectors' own before/after, rising as the words say
    assert signal.summary.startswith("error rate rising: ")
    shown = re.findall(r"(\d+\.\d)% -> (\d+\.\d)%", signal.summary)
    assert len(shown) == len(report.detections)
    for (before, after), d in zip(shown, report.detections, strict=True):
        assert float(before) < float(after)
        assert float(before) == pytest.approx(100 * (d.details.error_before or 0), abs=0.051)
        assert float(after) == pytest.approx(100 * (d.details.error_after or 0), abs=0.051)
