"""Contract of :class:`storage.status.StatusQueries`: what ``driftd status`` shows."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import pytest

from storage.ingest import Checkpoint, Chunk, IngestRepository
from storage.status import StatusQueries
from storage.store import Store

T0 = datetime(2026, 11, 28, 10, 0, tzinfo=UTC)
HOUR = timedelta(hours=1)
NOW = datetime(2026, 11, 28, 13, 0, 0, 500_000, tzinfo=UTC)


def prediction(rid: str, window: int) -> dict[str, Any]:
    start = T0 + window * HOUR
    return {
        "id": rid,
        "ts": start + timedelta(minutes=1),
        "window_start": start,
        "model_version": "3",
        "variant": "champion",
        "features": '{"amount": 1.0}',
        "prediction": "1",
        "score": 0.7,
        "probabilities": None,
    }


def label(rid: str) -> dict[str, Any]:
    return {"id": rid, "ts": T0 + 10 * HOUR, "label": "1"}


def bad(reason: str, line: int = 1) -> dict[str, Any]:
    return {
        "path": "/logs/x.jsonl",
        "line": line,
        "byte_offset": 0,
        "reason": reason,
        "detail": None,
        "excerpt": None,
    }


def commit(
    store: Store,
    rows: list[dict[str, Any]],
    *,
    kind: str = "predictions",
    source: str = "live",
    file_key: str = "1:1",
    position: int = 100,
    quarantined: list[dict[str, Any]] | None = None,
    model: str = "churn",
    now: datetime = NOW,
) -> None:
    cp = Checkpoint(file_key, f"/logs/{source}-{file_key}.jsonl", None, position, position // 10)
    IngestRepository(store).commit(Chunk(model, source, kind, cp, rows, quarantined or []), now=now)


@pytest.fixture
def ingested(store: Store) -> Store:
    """Two prediction files, one labels file, and another model's data."""
    # labels may arrive before their predictions
    commit(
        store,
        [label("a1"), label("a2"), label("b1"), label("never-predicted")],
        kind="labels",
        source="labels",
        quarantined=[bad("missing_label")],
        now=NOW - HOUR,
    )
    commit(
        store,
        [prediction("a1", 0), prediction("a2", 0), prediction("a3", 0), prediction("b1", 1)],
        file_key="1:1",
        quarantined=[bad("bad_json", 1), bad("missing_id", 2)],
        now=NOW - HOUR,
    )
    commit(
        store,
        [prediction("a1", 0), prediction("b2", 1)],  # a1 again: a duplicate
        file_key="1:1",
        position=200,
        quarantined=[bad("bad_json", 3)],
        now=NOW,
    )
    commit(store, [prediction("c1", 2)], file_key="1:2", position=50, now=NOW - 2 * HOUR)
    commit(store, [label("b2")], kind="labels", source="labels", position=200, now=NOW)
    # another model, with the same ids: must not count for "churn"
    commit(store, [prediction("a3", 0), prediction("c1", 2)], model="fraud")
    commit(store, [label("a3"), label("c1")], kind="labels", source="labels", model="fraud")
    return store


def test_ingestion_per_source(ingested: Store) -> None:
    status = StatusQueries(ingested).ingestion("churn")

    assert set(status) == {"live", "labels"}
    live = status["live"]
    assert (live["files"], live["rows"], live["duplicates"]) == (2, 6, 1)
    assert live["quarantined"] == {"bad_json": 2, "missing_id": 1}
    assert live["last_ingest_at"] == NOW
    assert [(c["path"], c["position"], c["rows"]) for c in live["checkpoints"]] == [
        ("/logs/live-1:1.jsonl", 200, 5),
        ("/logs/live-1:2.jsonl", 50, 1),
    ]
    assert live["checkpoints"][1]["updated_at"] == NOW - 2 * HOUR
    labels = status["labels"]
    assert (labels["files"], labels["rows"], labels["duplicates"]) == (1, 5, 0)
    assert labels["quarantined"] == {"missing_label": 1}
    assert labels["last_ingest_at"] == NOW


def test_ingestion_of_an_unknown_model_is_empty(ingested: Store) -> None:
    assert StatusQueries(ingested).ingestion("nobody") == {}


def test_last_ingest_at(ingested: Store) -> None:
    status = StatusQueries(ingested)
    last = status.last_ingest_at("churn")
    assert last == NOW
    assert last is not None and last.utcoffset() == timedelta(0)
    assert status.last_ingest_at("nobody") is None


def test_windows_with_labelled_share(ingested: Store) -> None:
    windows = StatusQueries(ingested).windows("churn")

    assert [
        (w["start"], w["end"], w["predictions"], w["labelled"], w["label_coverage"])
        for w in windows
    ] == [
        (T0, T0 + HOUR, 3, 2, 0.6667),  # a1, a2 labelled before they were predicted
        (T0 + HOUR, T0 + 2 * HOUR, 2, 2, 1.0),  # b2 labelled afterwards
        (T0 + 2 * HOUR, T0 + 3 * HOUR, 1, 0, 0.0),
    ]
    # window 0 got only a duplicate at NOW: counted (a data-quality check reads it)
    assert [w["duplicates"] for w in windows] == [1, 0, 0]
    assert [w["updated_at"] for w in windows] == [NOW, NOW, NOW - 2 * HOUR]


def test_windows_limit_keeps_the_latest(ingested: Store) -> None:
    windows = StatusQueries(ingested).windows("churn", limit=2)
    assert [(w["start"], w["labelled"]) for w in windows] == [(T0 + HOUR, 2), (T0 + 2 * HOUR, 0)]


def test_windows_of_an_unknown_model_are_empty(ingested: Store) -> None:
    assert StatusQueries(ingested).windows("nobody") == []


def test_counts(ingested: Store) -> None:
    status = StatusQueries(ingested)
    assert status.counts("churn") == {"predictions": 6, "labels": 5, "quarantined": 4}
    assert status.counts("fraud") == {"predictions": 2, "labels": 2, "quarantined": 0}
    assert status.counts("nobody") == {"predictions": 0, "labels": 0, "quarantined": 0}


def test_windows_since_keeps_those_starting_then_or_later(ingested: Store) -> None:
    status = StatusQueries(ingested)
    since = status.windows("churn", since=T0 + HOUR)
    assert [w["start"] for w in since] == [T0 + HOUR, T0 + 2 * HOUR]
    assert since[0]["labelled"] == 2
    # an offset other than UTC names the same instant
    local = (T0 + 90 * timedelta(minutes=1)).astimezone(timezone(timedelta(hours=-5)))
    assert [w["start"] for w in status.windows("churn", since=local)] == [T0 + 2 * HOUR]
    assert [w["start"] for w in status.windows("churn", 1, since=T0)] == [T0 + 2 * HOUR]
    assert status.windows("churn", since=T0 + 3 * HOUR) == []


def test_quarantine_lists_newest_first_with_filters(ingested: Store) -> None:
    status = StatusQueries(ingested)
    listed = status.quarantine("churn")
    assert [(q["source"], q["reason"], q["line"]) for q in listed] == [
        ("live", "bad_json", 3),
        ("live", "missing_id", 2),
        ("live", "bad_json", 1),
        ("labels", "missing_label", 1),
    ]
    newest = listed[0]
    assert newest["path"] == "/logs/x.jsonl" and newest["created_at"] == NOW
    assert [q["line"] for q in status.quarantine("churn", reason="bad_json")] == [3, 1]
    assert [q["reason"] for q in status.quarantine("churn", source="labels")] == ["missing_label"]
    assert status.quarantine("churn", source="labels", reason="bad_json") == []
    assert [q["line"] for q in status.quarantine("churn", limit=2)] == [3, 2]
    assert [q["line"] for q in status.quarantine("churn", since=NOW)] == [3]  # the last commit
    assert status.quarantine("fraud") == []


def test_one_quarantined_record(ingested: Store) -> None:
    status = StatusQueries(ingested)
    newest = status.quarantine("churn")[0]
    assert status.quarantined("churn", newest["pk"]) == newest
    assert status.quarantined("fraud", newest["pk"]) is None  # another model's view
    assert status.quarantined("churn", 10**9) is None
