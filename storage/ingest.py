"""Writing ingested chunks: rows, quarantine, window counts and checkpoint in one transaction.

This is what makes ingestion exactly-once: a chunk's rows and the checkpoint that says
they were read commit together or not at all, so a crash at any instant followed by a
restart re-reads exactly what was not committed. Records whose id is already stored are
not written again and are counted as duplicates.

Row-count windows (``Chunk.window_rows``) are assigned here, in the same transaction:
which rows are new, and how full the model's current window is, is known only to the
store. A crash before the commit leaves windows and rows as they were, so reading the
same records again assigns them the same windows.
"""

from __future__ import annotations

import hashlib
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from operator import itemgetter
from typing import Any

from sqlalchemy import Connection, Table, func, select, text, update
from sqlalchemy.dialects import postgresql, sqlite

from storage import schema
from storage.bulk import first_of_each_id, insert_new_postgres, insert_new_sqlite
from storage.errors import StorageError
from storage.rows import Checkpoint, Chunk, ChunkResult
from storage.store import Store

_WINDOW_START = itemgetter("window_start")


def _upsert(conn: Connection, table: Table, keys: Sequence[str], update: dict[str, Any]) -> Any:
    module = postgresql if conn.dialect.name == "postgresql" else sqlite
    stmt = module.insert(table)
    return stmt.on_conflict_do_update(
        index_elements=list(keys),
        set_={k: (v(stmt.excluded) if callable(v) else v) for k, v in update.items()},
    )


class IngestRepository:
    """Checkpoint reads and atomic chunk writes for :mod:`monitor.ingest`."""

    def __init__(self, store: Store) -> None:
        self.store = store

    def checkpoints(self, model: str, source: str) -> dict[str, Checkpoint]:
        t = schema.checkpoints
        with self.store.connect("reading checkpoints") as conn:
            rows = conn.execute(select(t).where(t.c.model == model, t.c.source == source))
            return {
                r.file_key: Checkpoint(
                    r.file_key,
                    r.path,
                    r.head,
                    r.position,
                    r.line,
                    r.rows,
                    r.duplicates,
                    r.quarantined,
                )
                for r in rows
            }

    def window_before(self, model: str, start: datetime) -> datetime | None:
        """The start of the model's window before the one starting at ``start``, if any
        (row-count windows have no fixed length to step back by)."""
        w = schema.windows
        with self.store.connect("reading windows") as conn:
            return conn.execute(
                select(func.max(w.c.start)).where(w.c.model == model, w.c.start < start)
            ).scalar()

    def commit(self, chunk: Chunk, *, now: datetime | None = None) -> ChunkResult:
        """Write the chunk and advance its checkpoint atomically."""
        now = now or datetime.now(UTC)
        with self.store.transaction(f"ingesting {chunk.source}") as conn:
            return self._commit(conn, chunk, now)

    def _commit(self, conn: Connection, chunk: Chunk, now: datetime) -> ChunkResult:
        table = schema.predictions if chunk.kind == "predictions" else schema.labels
        windows: dict[datetime, int] = {}
        blocks = chunk.kind == "predictions" and chunk.block is not None and bool(chunk.rows)
        if blocks:
            before = conn.execute(select(func.max(table.c.pk))).scalar() or 0
        if not chunk.rows:
            new: list[dict[str, Any]] = []
        elif chunk.kind == "predictions" and chunk.window_rows is not None:
            new, windows = self._write_in_row_windows(conn, chunk, chunk.window_rows, now)
        else:
            new = self._write_rows(conn, table, chunk.model, chunk.rows)
            if chunk.kind == "predictions":
                inserted = Counter(map(_WINDOW_START, new))
                repeated = Counter(map(_WINDOW_START, chunk.rows)) - inserted
                windows = dict(inserted)
                if inserted or repeated:
                    self._count_windows(
                        conn, chunk.model, inserted, repeated, chunk.window_size, now
                    )
        duplicates = len(chunk.rows) - len(new)
        if blocks and new:
            self._write_blocks(conn, chunk, new, before)
        if chunk.quarantined:
            conn.execute(
                schema.quarantine.insert(),
                [
                    dict(q, model=chunk.model, source=chunk.source, created_at=now)
                    for q in chunk.quarantined
                ],
            )
        self._save_checkpoint(conn, chunk, inserted=len(new), duplicates=duplicates, now=now)
        return ChunkResult(len(new), duplicates, len(chunk.quarantined), windows)

    def _write_blocks(
        self, conn: Connection, chunk: Chunk, new: list[dict[str, Any]], before: int
    ) -> None:
        """One feature block per window of the rows just stored (:mod:`monitor.blocks`),
        with its runs of numeric values (``window_values``, kept after the fold).

        The chunk's rows are the model's only ones with ``before < pk <= upto``: one
        writer ingests a model's predictions (the daemon's lease), and other models' rows
        in that range are not the model's."""
        assert chunk.block is not None
        p = schema.predictions
        upto = conn.execute(select(func.max(p.c.pk))).scalar() or 0
        by_window: dict[datetime, list[dict[str, Any]]] = {}
        for row in new:
            by_window.setdefault(row["window_start"], []).append(row)
        blocks, runs = [], []
        span = {"model": chunk.model, "after_pk": before, "upto_pk": upto}
        for start, rows in by_window.items():
            encoded = chunk.block(rows)
            if encoded is None:  # folded from the rows' JSON instead
                return
            blocks.append(
                {**span, "window_start": start, "rows": len(rows), "payload": encoded.payload}
            )
            runs += [
                {**span, "start": start, "name": name, "rows": n, "payload": payload}
                for name, (n, payload) in encoded.runs.items()
            ]
        conn.execute(schema.feature_blocks.insert(), blocks)
        if runs:
            conn.execute(schema.window_values.insert(), runs)

    def _write_rows(
        self, conn: Connection, table: Table, model: str, rows: list[dict[str, Any]]
    ) -> list[dict[str, Any]]:
        """Insert the rows whose id is not stored yet; returns those rows.

        Of rows sharing an id within the chunk, the first is the one stored.
        """
        if conn.dialect.name == "sqlite":
            return insert_new_sqlite(conn, table, model, rows)
        return insert_new_postgres(conn, table, model, rows)

    def _write_in_row_windows(
        self, conn: Connection, chunk: Chunk, size: int, now: datetime
    ) -> tuple[list[dict[str, Any]], dict[datetime, int]]:
        """Store the chunk's new predictions into row-count windows; returns the rows
        stored and the rows added per window.

        The new rows (not stored yet, first of each id) fill the model's current window
        up to ``size`` rows, then open windows of ``size`` rows in their order.
        """
        model, p, w = chunk.model, schema.predictions, schema.windows
        _lock_row_windows(conn, model)
        rows = first_of_each_id(chunk.rows)
        stored = _stored_ids(conn, model, [r["id"] for r in rows])
        if stored:
            rows = [r for r in rows if r["id"] not in stored]
        if not rows:
            return [], {}
        last = conn.execute(
            select(w.c.start, w.c.end, w.c.predictions)
            .where(w.c.model == model)
            .order_by(w.c.start.desc())
            .limit(1)
        ).first()
        current = None if last is None else RowWindow(*last, stored=True)
        rows, touched = assign_row_windows(rows, size, current)
        new = self._write_rows(conn, p, model, rows)
        if len(new) != len(rows):  # cannot happen under the lock; never count a row twice
            raise StorageError(
                f"predictions of model {model!r} were stored by another writer meanwhile"
            )
        for window in touched:
            if window.stored:
                conn.execute(
                    update(w)
                    .where(w.c.model == model, w.c.start == window.start)
                    .values(
                        end=window.end,
                        predictions=w.c.predictions + window.added,
                        updated_at=now,
                    )
                )
            else:
                conn.execute(
                    w.insert().values(
                        model=model,
                        start=window.start,
                        end=window.end,
                        predictions=window.added,
                        updated_at=now,
                    )
                )
        return new, {window.start: window.added for window in touched}

    def _count_windows(
        self,
        conn: Connection,
        model: str,
        counts: Counter[datetime],
        duplicates: Counter[datetime],
        size: timedelta,
        now: datetime,
    ) -> None:
        """Add the chunk's new rows and repeated ids to its windows' counts; a window that
        only got duplicates is finalized again (its duplicate-id check changed)."""
        t = schema.windows
        update: dict[str, Any] = {
            "predictions": lambda ex: t.c.predictions + ex.predictions,
            "duplicates": lambda ex: t.c.duplicates + ex.duplicates,
            "updated_at": now,
        }
        rows = [
            {
                "model": model,
                "start": start,
                "end": start + size,
                "predictions": counts[start],
                "duplicates": duplicates[start],
                "updated_at": now,
            }
            for start in sorted(set(counts) | set(duplicates))
        ]
        conn.execute(_upsert(conn, t, ["model", "start"], update), rows)
        if duplicates:
            conn.execute(
                t.update()
                .where(t.c.model == model, t.c.start.in_(list(duplicates)))
                .values(finalized_at=None)
            )

    def _save_checkpoint(
        self, conn: Connection, chunk: Chunk, *, inserted: int, duplicates: int, now: datetime
    ) -> None:
        t = schema.checkpoints
        cp = chunk.checkpoint
        values = {
            "path": cp.path,
            "head": cp.head,
            "position": cp.position,
            "line": cp.line,
            "rows": inserted,
            "duplicates": duplicates,
            "quarantined": len(chunk.quarantined),
            "updated_at": now,
        }
        stmt = _upsert(
            conn,
            t,
            ["model", "source", "file_key"],
            dict(
                values,
                rows=lambda ex: t.c.rows + ex.rows,
                duplicates=lambda ex: t.c.duplicates + ex.duplicates,
                quarantined=lambda ex: t.c.quarantined + ex.quarantined,
            ),
        )
        conn.execute(
            stmt, [dict(values, model=chunk.model, source=chunk.source, file_key=cp.file_key)]
        )


_MICROSECOND = timedelta(microseconds=1)
_STORED_IDS_BATCH = 5_000  # bound parameters per query (SQLite allows 32,766)


@dataclass
class RowWindow:
    """A row-count window as :func:`assign_row_windows` leaves it."""

    start: datetime
    end: datetime
    rows: int  # rows in the window, stored before and added
    added: int = 0  # rows added by this chunk
    stored: bool = False  # the window row exists already


def assign_row_windows(
    rows: list[dict[str, Any]], size: int, last: RowWindow | None
) -> tuple[list[dict[str, Any]], list[RowWindow]]:
    """Row-count windows for new rows, in their order (pure).

    ``last`` is the model's latest window, if any. Returns the rows with their
    ``window_start`` set, and the windows they went to. A window's start is its first
    row's event time, or 1 microsecond after the previous window's start if that is not
    earlier; its end is the latest event time of its rows, and at least its start.
    """
    touched: list[RowWindow] = []
    current = last
    out = []
    for row in rows:
        ts: datetime = row["ts"]
        if current is None or current.rows >= size:
            start = ts if current is None or ts > current.start else current.start + _MICROSECOND
            current = RowWindow(start, start, 0)
        if current.added == 0:
            touched.append(current)
        current.rows += 1
        current.added += 1
        if ts > current.end:
            current.end = ts
        out.append(dict(row, window_start=current.start))
    return out, touched


def _stored_ids(conn: Connection, model: str, ids: list[str]) -> set[str]:
    """Which of these ids the model's predictions hold already."""
    p = schema.predictions
    found: set[str] = set()
    for i in range(0, len(ids), _STORED_IDS_BATCH):
        batch = ids[i : i + _STORED_IDS_BATCH]
        found.update(
            conn.execute(select(p.c.id).where(p.c.model == model, p.c.id.in_(batch))).scalars()
        )
    return found


def _lock_row_windows(conn: Connection, model: str) -> None:
    """Serialise writers filling one model's row windows (SQLite's write lock already does)."""
    if conn.dialect.name != "postgresql":
        return
    digest = hashlib.blake2b(f"row-windows:{model}".encode(), digest_size=8).digest()
    key = int.from_bytes(digest, "big", signed=True)
    conn.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": key})
