"""Contract of :meth:`IngestRepository.commit`: one chunk, one transaction, exactly once.

Every test runs on SQLite and on PostgreSQL (the ``store`` fixture), and reads what was
stored back with plain SQLAlchemy selects, not through the code under test.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import pytest
from sqlalchemy import Connection, select, text

from storage import schema
from storage.errors import StorageError
from storage.ingest import Checkpoint, Chunk, IngestRepository
from storage.store import Store

T0 = datetime(2026, 11, 28, 10, 0, tzinfo=UTC)
HOUR = timedelta(hours=1)
NOW = datetime(2026, 11, 28, 12, 30, 15, 250_001, tzinfo=UTC)


def prediction(rid: str, ts: datetime, size: timedelta = HOUR, **over: Any) -> dict[str, Any]:
    """A ``predictions`` row as :func:`monitor.records.prediction_parser` builds it."""
    start = T0 + ((ts - T0) // size) * size
    row = {
        "id": rid,
        "ts": ts,
        "window_start": start,
        "model_version": "3",
        "variant": "champion",
        "features": '{"amount": 129.5, "country": "DE", "is_new": false}',
        "prediction": "1",
        "score": 0.83,
        "probabilities": None,
    }
    row.update(over)
    return row


def label(rid: str, value: str = "0", ts: datetime = T0 + 5 * HOUR) -> dict[str, Any]:
    return {"id": rid, "ts": ts, "label": value}


def bad_record(line: int, reason: str = "bad_json") -> dict[str, Any]:
    """A quarantined record as :meth:`monitor.ingest.Ingestor._reject` builds it."""
    return {
        "path": "/logs/predictions.jsonl",
        "line": line,
        "byte_offset": 100 * line,
        "reason": reason,
        "detail": f"line {line} is not JSON",
        "excerpt": "{not json",
    }


def chunk(
    rows: list[dict[str, Any]],
    *,
    kind: str = "predictions",
    quarantined: list[dict[str, Any]] | None = None,
    position: int = 100,
    line: int = 10,
    file_key: str = "2049:1234",
    source: str = "live",
    model: str = "churn",
    window_size: timedelta = HOUR,
) -> Chunk:
    return Chunk(
        model=model,
        source=source,
        kind=kind,
        checkpoint=Checkpoint(file_key, f"/logs/{file_key}.jsonl", "abc123", position, line),
        rows=rows,
        quarantined=quarantined or [],
        window_size=window_size,
    )


def stored(store: Store, table: Any, *order: Any) -> list[Any]:
    with store.connect() as conn:
        return conn.execute(select(table).order_by(*(order or table.primary_key))).all()


def snapshot(store: Store) -> dict[str, list[tuple[Any, ...]]]:
    """Everything ingestion writes, for before/after comparisons."""
    tables = [
        schema.predictions,
        schema.labels,
        schema.quarantine,
        schema.windows,
        schema.checkpoints,
    ]
    return {t.name: [tuple(r) for r in stored(store, t)] for t in tables}


# --- rows ------------------------------------------------------------------------------


def test_rows_are_stored_as_given(store: Store) -> None:
    tricky = '{"note": "tab\\there, newline\\nand \\\\ backslash", "city": "Zürich ✓", "q": "\'"}'
    rows = [
        prediction("req-1", T0 + timedelta(minutes=1)),
        prediction(
            "req-2",
            T0 + timedelta(minutes=2),
            features=tricky,
            prediction=None,
            score=None,
            probabilities='{"a": 0.25, "b": 0.75}',
            model_version=None,
            variant=None,
        ),
        prediction("req-3", T0 + timedelta(minutes=3), features="tab\tnew\nline \\N \\ end"),
    ]
    result = IngestRepository(store).commit(chunk(rows), now=NOW)

    assert (result.inserted, result.duplicates, result.quarantined) == (3, 0, 0)
    got = {r.id: r._asdict() for r in stored(store, schema.predictions)}
    assert set(got) == {"req-1", "req-2", "req-3"}
    for row in rows:
        assert {k: got[row["id"]][k] for k in row} == row
        assert got[row["id"]]["model"] == "churn"


def test_rows_are_stored_whatever_the_key_order(store: Store) -> None:
    first = prediction("r1", T0, model_version="3", variant="champion")
    second = prediction("r2", T0, model_version="4", variant="challenger")
    keys = list(second)
    i, j = keys.index("model_version"), keys.index("variant")
    keys[i], keys[j] = keys[j], keys[i]
    second = {k: second[k] for k in keys}
    assert list(first) != list(second)
    IngestRepository(store).commit(chunk([first, second]), now=NOW)

    got = {r.id: (r.model_version, r.variant) for r in stored(store, schema.predictions)}
    assert got == {"r1": ("3", "champion"), "r2": ("4", "challenger")}


def test_same_id_in_two_models_is_two_rows(store: Store) -> None:
    repo = IngestRepository(store)
    repo.commit(chunk([prediction("req-1", T0)], model="churn"), now=NOW)
    result = repo.commit(chunk([prediction("req-1", T0)], model="fraud"), now=NOW)

    assert (result.inserted, result.duplicates) == (1, 0)
    assert sorted((r.model, r.id) for r in stored(store, schema.predictions)) == [
        ("churn", "req-1"),
        ("fraud", "req-1"),
    ]


# --- duplicates ------------------------------------------------------------------------


def test_duplicates_within_a_chunk_are_counted_and_stored_once(store: Store) -> None:
    first = prediction("req-1", T0, score=0.1)
    rows = [first, prediction("req-2", T0), prediction("req-1", T0, score=0.9)]
    result = IngestRepository(store).commit(chunk(rows), now=NOW)

    assert (result.inserted, result.duplicates) == (2, 1)
    got = stored(store, schema.predictions)
    assert sorted(r.id for r in got) == ["req-1", "req-2"]
    assert next(r.score for r in got if r.id == "req-1") == 0.1  # the first occurrence wins
    assert result.windows == {T0: 2}


def test_duplicates_of_stored_rows_are_counted_and_not_rewritten(store: Store) -> None:
    repo = IngestRepository(store)
    repo.commit(chunk([prediction("req-1", T0, score=0.1), prediction("req-2", T0)]), now=NOW)
    again = [prediction("req-1", T0, score=0.9), prediction("req-3", T0), prediction("req-2", T0)]
    result = repo.commit(chunk(again, position=200, line=20), now=NOW)

    assert (result.inserted, result.duplicates) == (1, 2)
    got = stored(store, schema.predictions)
    assert sorted(r.id for r in got) == ["req-1", "req-2", "req-3"]
    assert next(r.score for r in got if r.id == "req-1") == 0.1
    assert result.windows == {T0: 1}


def test_chunk_of_only_duplicates_still_advances_the_checkpoint(store: Store) -> None:
    repo = IngestRepository(store)
    repo.commit(chunk([prediction("req-1", T0)], position=100), now=NOW)
    result = repo.commit(chunk([prediction("req-1", T0)], position=200), now=NOW)

    assert (result.inserted, result.duplicates, result.windows) == (0, 1, {})
    (cp,) = stored(store, schema.checkpoints)
    assert (cp.position, cp.rows, cp.duplicates) == (200, 1, 1)
    (w,) = stored(store, schema.windows)
    assert w.predictions == 1


# --- quarantine ------------------------------------------------------------------------


def test_quarantined_records_are_stored_with_model_source_and_time(store: Store) -> None:
    bad = [bad_record(3), bad_record(7, "missing_id")]
    result = IngestRepository(store).commit(
        chunk([prediction("req-1", T0)], quarantined=bad), now=NOW
    )

    assert result.quarantined == 2
    got = stored(store, schema.quarantine)
    assert len(got) == 2
    for q, expected in zip(sorted(got, key=lambda r: r.line), bad, strict=True):
        assert {k: getattr(q, k) for k in expected} == expected
        assert (q.model, q.source, q.created_at) == ("churn", "live", NOW)


# --- windows ---------------------------------------------------------------------------


def test_window_counts_add_up_across_chunks(store: Store) -> None:
    size = timedelta(minutes=15)
    repo = IngestRepository(store)
    w0, w1, w2 = T0, T0 + size, T0 + 2 * size
    first = [prediction(f"a{i}", w0 + timedelta(minutes=i), size) for i in range(3)]
    first += [prediction("b0", w1 + timedelta(minutes=1), size)]
    r1 = repo.commit(chunk(first, window_size=size), now=NOW)

    later = NOW + timedelta(minutes=5)
    second = [prediction("a0", w0, size)]  # a duplicate: not counted again
    second += [prediction(f"b{i}", w1 + timedelta(minutes=i), size) for i in range(1, 3)]
    second += [prediction("c0", w2 + timedelta(minutes=14, seconds=59), size)]
    r2 = repo.commit(chunk(second, window_size=size, position=200), now=later)

    assert r1.windows == {w0: 3, w1: 1}
    assert r2.windows == {w1: 2, w2: 1}
    got = {w.start: w for w in stored(store, schema.windows)}
    assert {s: w.predictions for s, w in got.items()} == {w0: 3, w1: 3, w2: 1}
    assert all(w.end == w.start + size for w in got.values())
    assert all(w.model == "churn" for w in got.values())
    # the duplicate is counted in its window (a data-quality check reads it)
    assert {s: w.duplicates for s, w in got.items()} == {w0: 1, w1: 0, w2: 0}
    assert {s: w.updated_at for s, w in got.items()} == {w0: later, w1: later, w2: later}


def test_labels_do_not_touch_windows(store: Store) -> None:
    repo = IngestRepository(store)
    repo.commit(chunk([prediction("req-1", T0)]), now=NOW)
    before = stored(store, schema.windows)
    result = repo.commit(
        chunk([label("req-1"), label("req-2"), label("req-1")], kind="labels", source="labels"),
        now=NOW + HOUR,
    )

    assert (result.inserted, result.duplicates, result.windows) == (2, 1, {})
    assert stored(store, schema.windows) == before
    assert sorted(r.id for r in stored(store, schema.labels)) == ["req-1", "req-2"]


# --- checkpoints -----------------------------------------------------------------------


def test_checkpoint_is_upserted_with_counters_incremented(store: Store) -> None:
    repo = IngestRepository(store)
    repo.commit(
        chunk(
            [prediction("r1", T0), prediction("r2", T0), prediction("r1", T0)],
            quarantined=[bad_record(4)],
            position=100,
            line=4,
        ),
        now=NOW,
    )
    later = NOW + timedelta(seconds=30)
    repo.commit(
        chunk(
            [prediction("r2", T0), prediction("r3", T0)],
            quarantined=[bad_record(5), bad_record(6)],
            position=250,
            line=9,
        ),
        now=later,
    )

    (cp,) = stored(store, schema.checkpoints)
    assert (cp.model, cp.source, cp.file_key) == ("churn", "live", "2049:1234")
    assert (cp.path, cp.head, cp.position, cp.line) == ("/logs/2049:1234.jsonl", "abc123", 250, 9)
    assert (cp.rows, cp.duplicates, cp.quarantined) == (3, 2, 3)
    assert cp.updated_at == later
    assert repo.checkpoints("churn", "live") == {
        "2049:1234": Checkpoint("2049:1234", "/logs/2049:1234.jsonl", "abc123", 250, 9, 3, 2, 3)
    }


def test_checkpoints_are_kept_per_model_source_and_file(store: Store) -> None:
    repo = IngestRepository(store)
    repo.commit(chunk([prediction("r1", T0)], file_key="1:1"), now=NOW)
    repo.commit(chunk([prediction("r2", T0)], file_key="1:2", position=7), now=NOW)
    repo.commit(chunk([label("r1")], kind="labels", source="labels", file_key="1:1"), now=NOW)
    repo.commit(chunk([prediction("r1", T0)], model="fraud", file_key="1:1"), now=NOW)

    live = repo.checkpoints("churn", "live")
    assert sorted(live) == ["1:1", "1:2"]
    assert (live["1:2"].position, live["1:2"].rows) == (7, 1)
    assert list(repo.checkpoints("churn", "labels")) == ["1:1"]
    assert list(repo.checkpoints("fraud", "live")) == ["1:1"]
    assert repo.checkpoints("churn", "nothing") == {}


def test_empty_chunk_only_advances_the_checkpoint(store: Store) -> None:
    result = IngestRepository(store).commit(chunk([], position=42, line=3), now=NOW)

    assert (result.inserted, result.duplicates, result.quarantined, result.windows) == (
        0,
        0,
        0,
        {},
    )
    (cp,) = stored(store, schema.checkpoints)
    assert (cp.position, cp.line, cp.rows) == (42, 3, 0)
    assert stored(store, schema.predictions) == []
    assert stored(store, schema.windows) == []


# --- atomicity -------------------------------------------------------------------------


def _fail_after_checkpoint(monkeypatch: pytest.MonkeyPatch) -> None:
    """Make the last write of a chunk fail in the database, after all the others ran."""
    real = IngestRepository._save_checkpoint

    def failing(self: IngestRepository, conn: Connection, *args: Any, **kwargs: Any) -> None:
        real(self, conn, *args, **kwargs)
        conn.execute(text("INSERT INTO no_such_table VALUES (1)"))

    monkeypatch.setattr(IngestRepository, "_save_checkpoint", failing)


def test_a_failed_chunk_stores_nothing(store: Store, monkeypatch: pytest.MonkeyPatch) -> None:
    repo = IngestRepository(store)
    repo.commit(
        chunk([prediction("r1", T0), prediction("r2", T0 + HOUR)], quarantined=[bad_record(1)]),
        now=NOW,
    )
    before = snapshot(store)
    failed = chunk(
        [prediction("r1", T0), prediction("r3", T0), prediction("r4", T0 + 2 * HOUR)],
        quarantined=[bad_record(8)],
        position=300,
        line=30,
    )

    _fail_after_checkpoint(monkeypatch)
    with pytest.raises(StorageError, match="ingesting live"):
        repo.commit(failed, now=NOW + HOUR)
    assert snapshot(store) == before

    monkeypatch.undo()  # the retry, after the database recovered, stores it exactly once
    result = repo.commit(failed, now=NOW + HOUR)
    assert (result.inserted, result.duplicates) == (2, 1)
    (cp,) = stored(store, schema.checkpoints)
    assert (cp.position, cp.rows, cp.duplicates, cp.quarantined) == (300, 4, 1, 2)


def test_a_failed_labels_chunk_stores_nothing(
    store: Store, monkeypatch: pytest.MonkeyPatch
) -> None:
    repo = IngestRepository(store)
    repo.commit(chunk([label("r1")], kind="labels", source="labels"), now=NOW)
    before = snapshot(store)

    _fail_after_checkpoint(monkeypatch)
    with pytest.raises(StorageError):
        repo.commit(
            chunk([label("r2"), label("r3")], kind="labels", source="labels", position=9),
            now=NOW,
        )
    assert snapshot(store) == before


def test_an_unexpected_error_rolls_back_and_propagates(
    store: Store, monkeypatch: pytest.MonkeyPatch
) -> None:
    class Boom(Exception):
        pass

    def failing(*args: Any, **kwargs: Any) -> None:
        raise Boom("checkpoint write failed")

    monkeypatch.setattr(IngestRepository, "_save_checkpoint", failing)
    with pytest.raises(Boom):
        IngestRepository(store).commit(
            chunk([prediction("r1", T0)], quarantined=[bad_record(1)]), now=NOW
        )
    assert snapshot(store) == {t: [] for t in snapshot(store)}


def test_a_row_the_database_refuses_fails_the_chunk(store: Store) -> None:
    rows = [prediction("r1", T0, features=None), prediction("r2", T0)]
    with pytest.raises(StorageError):
        IngestRepository(store).commit(chunk(rows), now=NOW)
    assert snapshot(store) == {t: [] for t in snapshot(store)}


# --- timestamps ------------------------------------------------------------------------


def test_timestamps_round_trip_as_aware_utc_to_the_microsecond(store: Store) -> None:
    plus2 = timezone(timedelta(hours=2))
    ts = datetime(2026, 11, 28, 12, 34, 56, 789_012, tzinfo=plus2)  # 10:34:56.789012Z
    label_ts = datetime(2026, 11, 29, 1, 2, 3, 4, tzinfo=UTC)
    now = datetime(2026, 11, 30, 23, 59, 59, 999_999, tzinfo=UTC)
    repo = IngestRepository(store)
    repo.commit(chunk([prediction("r1", ts)], quarantined=[bad_record(2)]), now=now)
    repo.commit(chunk([label("r1", ts=label_ts)], kind="labels", source="labels"), now=now)

    with store.connect() as conn:
        values = {
            "prediction ts": conn.execute(select(schema.predictions.c.ts)).scalar_one(),
            "window_start": conn.execute(select(schema.predictions.c.window_start)).scalar_one(),
            "label ts": conn.execute(select(schema.labels.c.ts)).scalar_one(),
            "window start": conn.execute(select(schema.windows.c.start)).scalar_one(),
            "window end": conn.execute(select(schema.windows.c.end)).scalar_one(),
            "window updated": conn.execute(select(schema.windows.c.updated_at)).scalar_one(),
            "quarantined at": conn.execute(select(schema.quarantine.c.created_at)).scalar_one(),
            "checkpoints": tuple(conn.execute(select(schema.checkpoints.c.updated_at)).scalars()),
        }
    assert values == {
        "prediction ts": ts,
        "window_start": T0,
        "label ts": label_ts,
        "window start": T0,
        "window end": T0 + HOUR,
        "window updated": now,
        "quarantined at": now,
        "checkpoints": (now, now),
    }
    singles = [v for k, v in values.items() if k != "checkpoints"]
    for value in [*singles, *values["checkpoints"]]:
        assert value.tzinfo is not None and value.utcoffset() == timedelta(0), value
    with store.connect() as conn:
        assert conn.execute(select(schema.predictions.c.ts)).scalar_one().microsecond == 789_012


def test_timestamps_can_be_filtered_on(store: Store) -> None:
    """A comparison in SQL agrees with the Python one on both backends."""
    rows = [prediction(f"r{i}", T0 + timedelta(microseconds=i)) for i in range(5)]
    IngestRepository(store).commit(chunk(rows), now=NOW)
    cut = T0 + timedelta(microseconds=2)
    p = schema.predictions
    with store.connect() as conn:
        ids = conn.execute(select(p.c.id).where(p.c.ts >= cut).order_by(p.c.ts)).scalars()
        assert list(ids) == ["r2", "r3", "r4"]


def test_a_naive_timestamp_is_refused(store: Store) -> None:
    naive = datetime(2026, 11, 28, 10, 0)
    with pytest.raises(StorageError):
        IngestRepository(store).commit(chunk([dict(prediction("r1", T0), ts=naive)]), now=NOW)
    assert stored(store, schema.predictions) == []
