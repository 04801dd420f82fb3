"""Row-count windows, assigned by :meth:`IngestRepository.commit` in the chunk's transaction.

Every test runs on SQLite and on PostgreSQL (the ``store`` fixture) and reads the store
back with plain selects.
"""

from __future__ import annotations

from collections import Counter
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import Connection, select, text

from storage import schema
from storage.errors import StorageError
from storage.ingest import Checkpoint, Chunk, IngestRepository, RowWindow, assign_row_windows
from storage.store import Store

T0 = datetime(2026, 11, 28, 10, 0, tzinfo=UTC)
NOW = datetime(2026, 11, 28, 12, 0, tzinfo=UTC)
US = timedelta(microseconds=1)
N = 5  # rows per window


def prediction(rid: str, ts: datetime) -> dict[str, Any]:
    """A ``predictions`` row as the parser builds it in row-window mode (no window yet)."""
    return {
        "id": rid,
        "ts": ts,
        "window_start": None,
        "model_version": "3",
        "variant": "champion",
        "features": '{"amount": 1.5}',
        "prediction": "1",
        "score": 0.5,
        "probabilities": None,
    }


def at(second: int) -> datetime:
    return T0 + timedelta(seconds=second)


def chunk(rows: list[dict[str, Any]], position: int, model: str = "churn") -> Chunk:
    return Chunk(
        model=model,
        source="live",
        kind="predictions",
        checkpoint=Checkpoint("1:2", "/logs/p.jsonl", "abc", position, position),
        rows=rows,
        window_rows=N,
    )


def windows(store: Store, model: str = "churn") -> list[tuple[datetime, datetime, int]]:
    w = schema.windows
    with store.connect() as conn:
        rows = conn.execute(
            select(w.c.start, w.c.end, w.c.predictions)
            .where(w.c.model == model)
            .order_by(w.c.start)
        )
        return [tuple(r) for r in rows]  # type: ignore[misc]


def assignment(store: Store, model: str = "churn") -> list[tuple[str, datetime]]:
    """(id, window_start) of the stored predictions in arrival (pk) order."""
    p = schema.predictions
    with store.connect() as conn:
        rows = conn.execute(
            select(p.c.id, p.c.window_start).where(p.c.model == model).order_by(p.c.pk)
        )
        return [tuple(r) for r in rows]  # type: ignore[misc]


def assert_consistent(store: Store, model: str = "churn") -> None:
    """Every window but the last holds N rows, which are consecutive in arrival order,
    and the windows table agrees with the rows."""
    stored = assignment(store, model)
    table = windows(store, model)
    starts = [start for start, _, _ in table]
    assert starts == sorted(set(starts)), "starts grow strictly"
    assert [n for _, _, n in table[:-1]] == [N] * (len(table) - 1)
    assert 0 < table[-1][2] <= N
    # consecutive: the stored assignment is the windows in order, each repeated n times
    assert [start for _, start in stored] == [s for s, _, n in table for _ in range(n)]
    p = schema.predictions
    with store.connect() as conn:
        for start, end, _ in table:
            latest = conn.execute(
                select(p.c.ts).where(p.c.model == model, p.c.window_start == start)
            ).scalars()
            assert end == max(start, *latest)


def test_windows_hold_exactly_n_rows_across_chunks(store: Store) -> None:
    repo = IngestRepository(store)
    sizes = [7, 3, 12, 1, 4]
    second = 0
    for i, size in enumerate(sizes):
        rows = [prediction(f"r{second + j}", at(second + j)) for j in range(size)]
        result = repo.commit(chunk(rows, position=i + 1), now=NOW)
        assert result.inserted == size and sum(result.windows.values()) == size
        second += size

    assert [n for _, _, n in windows(store)] == [5, 5, 5, 5, 5, 2]
    # a window starts at its first row's event time and ends at its last one's
    assert windows(store)[:2] == [(at(0), at(4), 5), (at(5), at(9), 5)]
    assert_consistent(store)


def test_the_chunk_result_counts_rows_per_window(store: Store) -> None:
    repo = IngestRepository(store)
    repo.commit(chunk([prediction(f"a{i}", at(i)) for i in range(3)], 1), now=NOW)
    result = repo.commit(chunk([prediction(f"b{i}", at(10 + i)) for i in range(9)], 2), now=NOW)

    assert result.windows == {at(0): 2, at(12): 5, at(17): 2}
    assert result.inserted == 9


def test_duplicates_within_and_across_chunks_do_not_count(store: Store) -> None:
    repo = IngestRepository(store)
    first = [prediction("a", at(0)), prediction("b", at(1)), prediction("a", at(2))]
    first += [prediction("c", at(3))]
    r1 = repo.commit(chunk(first, 1), now=NOW)
    second = [prediction("b", at(4)), prediction("d", at(5)), prediction("c", at(6))]
    second += [prediction(f"e{i}", at(7 + i)) for i in range(4)] + [prediction("d", at(20))]
    r2 = repo.commit(chunk(second, 2), now=NOW)
    only_duplicates = repo.commit(chunk([prediction("a", at(30))], 3), now=NOW)

    assert (r1.inserted, r1.duplicates) == (3, 1)
    assert (r2.inserted, r2.duplicates) == (5, 3)
    assert (only_duplicates.inserted, only_duplicates.windows) == (0, {})
    assert [i for i, _ in assignment(store)] == ["a", "b", "c", "d", "e0", "e1", "e2", "e3"]
    assert [n for _, _, n in windows(store)] == [5, 3]
    assert_consistent(store)
    with store.connect() as conn:  # the first of each id is the one stored
        ts = conn.execute(select(schema.predictions.c.ts).where(schema.predictions.c.id == "a"))
        assert ts.scalar_one() == at(0)


def test_late_rows_go_into_the_current_window_and_starts_still_grow(store: Store) -> None:
    repo = IngestRepository(store)
    rows = [prediction(f"r{i}", at(100 + i)) for i in range(5)]
    # a late batch: its first row opens a window one microsecond after the previous start
    rows += [prediction(f"late{i}", at(i)) for i in range(7)]
    repo.commit(chunk(rows, 1), now=NOW)

    table = windows(store)
    assert [start for start, _, _ in table] == [at(100), at(100) + US, at(100) + 2 * US]
    # the late window's end is at least its start (all its rows are older)
    assert table[1] == (at(100) + US, at(100) + US, 5)
    assert_consistent(store)


def _fail_after_checkpoint(monkeypatch: pytest.MonkeyPatch) -> None:
    real = IngestRepository._save_checkpoint

    def failing(self: IngestRepository, conn: Connection, *args: Any, **kwargs: Any) -> None:
        real(self, conn, *args, **kwargs)
        conn.execute(text("INSERT INTO no_such_table VALUES (1)"))

    monkeypatch.setattr(IngestRepository, "_save_checkpoint", failing)


def test_a_failed_chunk_changes_no_window_and_the_retry_gives_the_same_windows(
    store: Store, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Model "a" ingests three chunks straight; model "b" the same, with the second chunk
    failing once after all its writes (as a crash before the commit would): same windows."""
    chunks = [
        [prediction(f"r{i}", at(i)) for i in range(4)],
        [prediction(f"r{i}", at(i)) for i in range(2, 11)],  # two duplicates
        [prediction(f"r{i}", at(50 - i)) for i in range(11, 17)],  # late rows
    ]
    repo = IngestRepository(store)
    for i, rows in enumerate(chunks):
        repo.commit(chunk(rows, i + 1, model="a"), now=NOW)

    repo.commit(chunk(chunks[0], 1, model="b"), now=NOW)
    before = (windows(store, "b"), assignment(store, "b"))
    _fail_after_checkpoint(monkeypatch)
    with pytest.raises(StorageError):
        repo.commit(chunk(chunks[1], 2, model="b"), now=NOW)
    assert (windows(store, "b"), assignment(store, "b")) == before
    monkeypatch.undo()
    for i, rows in enumerate(chunks[1:], start=2):
        repo.commit(chunk(rows, i, model="b"), now=NOW)

    assert windows(store, "b") == windows(store, "a")
    assert assignment(store, "b") == assignment(store, "a")
    assert [n for _, _, n in windows(store, "a")] == [5, 5, 5, 2]
    assert_consistent(store, "a")


def test_models_have_their_own_row_windows(store: Store) -> None:
    repo = IngestRepository(store)
    repo.commit(chunk([prediction(f"r{i}", at(i)) for i in range(7)], 1, model="a"), now=NOW)
    repo.commit(chunk([prediction(f"r{i}", at(i)) for i in range(3)], 1, model="b"), now=NOW)

    assert [n for _, _, n in windows(store, "a")] == [5, 2]
    assert [n for _, _, n in windows(store, "b")] == [3]


def test_window_before_steps_back_one_window(store: Store) -> None:
    repo = IngestRepository(store)
    repo.commit(chunk([prediction(f"r{i}", at(i)) for i in range(12)], 1), now=NOW)

    starts = [start for start, _, _ in windows(store)]
    assert [repo.window_before("churn", s) for s in starts] == [None, *starts[:-1]]


# -- the assignment on its own ---------------------------------------------------------


def rows_at(*seconds: int) -> list[dict[str, Any]]:
    return [prediction(f"x{i}", at(s)) for i, s in enumerate(seconds)]


def test_assignment_fills_the_stored_window_first() -> None:
    last = RowWindow(at(0), at(3), 3, stored=True)
    out, touched = assign_row_windows(rows_at(4, 2, 6, 7), 4, last)

    assert [r["window_start"] for r in out] == [at(0), at(2), at(2), at(2)]
    assert [(w.start, w.end, w.rows, w.added, w.stored) for w in touched] == [
        (at(0), at(4), 4, 1, True),
        (at(2), at(7), 3, 3, False),
    ]
    assert last.rows == 4  # the stored window is the one updated


def test_assignment_after_a_full_window_opens_a_new_one() -> None:
    last = RowWindow(at(10), at(12), 4, stored=True)
    out, touched = assign_row_windows(rows_at(5), 4, last)

    assert out[0]["window_start"] == at(10) + US
    assert [(w.start, w.end, w.added) for w in touched] == [(at(10) + US, at(10) + US, 1)]


def test_assignment_without_windows_starts_at_the_first_row() -> None:
    out, touched = assign_row_windows(rows_at(3, 1, 2), 2, None)

    assert [r["window_start"] for r in out] == [at(3), at(3), at(3) + US]
    assert Counter(w.added for w in touched) == Counter({2: 1, 1: 1})
