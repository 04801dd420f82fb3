"""Writing ingested chunks: rows, quarantine, window counts and checkpoint in one transaction.

This is what makes ingestion exactly-once: a chunk's rows and the checkpoint that says
they were read commit together or not at all, so a crash at any instant followed by a
restart re-reads exactly what was not committed. Records whose id is already stored are
not written again and are counted as duplicates.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import Connection, Table, func, select
from sqlalchemy.dialects import postgresql, sqlite

from storage import schema
from storage.store import Store

ID_BATCH = 5000


@dataclass(frozen=True)
class Checkpoint:
    """How far one file of one source has been read.

    ``rows``, ``duplicates`` and ``quarantined`` are totals as read from the store; when
    a chunk is committed they are incremented by the chunk's own counts.
    """

    file_key: str
    path: str
    head: str | None
    position: int
    line: int
    rows: int = 0
    duplicates: int = 0
    quarantined: int = 0


@dataclass
class Chunk:
    """One unit of ingestion: what to write and where reading got to."""

    model: str
    source: str
    kind: str  # "predictions" or "labels"
    checkpoint: Checkpoint
    rows: list[dict[str, Any]] = field(default_factory=list)
    quarantined: list[dict[str, Any]] = field(default_factory=list)
    window_size: timedelta = timedelta(hours=1)


@dataclass(frozen=True)
class ChunkResult:
    inserted: int
    duplicates: int
    quarantined: int
    windows: dict[datetime, int]  # window start -> rows inserted into it


def _insert(conn: Connection, table: Table) -> Any:
    """A dialect INSERT that silently skips rows violating a unique constraint."""
    if conn.dialect.name == "postgresql":
        return postgresql.insert(table).on_conflict_do_nothing()
    return sqlite.insert(table).on_conflict_do_nothing()


def _upsert(conn: Connection, table: Table, keys: Sequence[str], update: dict[str, Any]) -> Any:
    module = postgresql if conn.dialect.name == "postgresql" else sqlite
    stmt = module.insert(table)
    return stmt.on_conflict_do_update(
        index_elements=list(keys),
        set_={k: (v(stmt.excluded) if callable(v) else v) for k, v in update.items()},
    )


def _existing_ids(conn: Connection, table: Table, model: str, ids: list[str]) -> set[str]:
    found: set[str] = set()
    for i in range(0, len(ids), ID_BATCH):
        part = ids[i : i + ID_BATCH]
        rows = conn.execute(select(table.c.id).where(table.c.model == model, table.c.id.in_(part)))
        found.update(r[0] for r in rows)
    return found


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

    def commit(self, chunk: Chunk, *, now: datetime | None = None) -> ChunkResult:
        """Write the chunk and advance its checkpoint atomically."""
        now = now or datetime.now(UTC)
        with self.store.transaction(f"ingesting {chunk.source}") as conn:
            return self._commit(conn, chunk, now)

    def _commit(self, conn: Connection, chunk: Chunk, now: datetime) -> ChunkResult:
        table = schema.predictions if chunk.kind == "predictions" else schema.labels
        unique: dict[str, dict[str, Any]] = {}
        for row in chunk.rows:
            unique.setdefault(row["id"], row)
        rows = list(unique.values())
        new = self._write_rows(conn, table, chunk.model, rows) if rows else []
        duplicates = len(chunk.rows) - len(new)
        if chunk.quarantined:
            conn.execute(
                schema.quarantine.insert(),
                [
                    dict(q, model=chunk.model, source=chunk.source, created_at=now)
                    for q in chunk.quarantined
                ],
            )
        windows: dict[datetime, int] = {}
        if chunk.kind == "predictions" and new:
            windows = dict(Counter(row["window_start"] for row in new))
            self._count_windows(conn, chunk.model, windows, chunk.window_size, now)
        self._save_checkpoint(conn, chunk, inserted=len(new), duplicates=duplicates, now=now)
        return ChunkResult(len(new), duplicates, len(chunk.quarantined), windows)

    def _write_rows(
        self, conn: Connection, table: Table, model: str, rows: list[dict[str, Any]]
    ) -> list[dict[str, Any]]:
        """Insert the rows whose id is not stored yet; returns those rows."""
        if conn.dialect.name == "sqlite":
            return _sqlite_insert_new(conn, table, model, rows)
        existing = _existing_ids(conn, table, model, [r["id"] for r in rows])
        new = [dict(r, model=model) for r in rows if r["id"] not in existing]
        if new:
            _copy_rows(conn, table, new)
        return new

    def _count_windows(
        self,
        conn: Connection,
        model: str,
        counts: dict[datetime, int],
        size: timedelta,
        now: datetime,
    ) -> None:
        t = schema.windows
        stmt = _upsert(
            conn,
            t,
            ["model", "start"],
            {"predictions": lambda ex: t.c.predictions + ex.predictions, "updated_at": now},
        )
        conn.execute(
            stmt,
            [
                {
                    "model": model,
                    "start": start,
                    "end": start + size,
                    "predictions": n,
                    "updated_at": now,
                }
                for start, n in counts.items()
            ],
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


def _sqlite_time(value: datetime, cache: dict[datetime, str]) -> str:
    """SQLAlchemy's SQLite DATETIME text for an aware UTC datetime (what UTCDateTime stores)."""
    text = cache.get(value)
    if text is None:
        text = value.astimezone(UTC).replace(tzinfo=None).isoformat(" ", "microseconds")
        if len(cache) < 10_000:
            cache[value] = text
    return text


def _sqlite_insert_new(
    conn: Connection, table: Table, model: str, rows: list[dict[str, Any]]
) -> list[dict[str, Any]]:
    """Bulk INSERT OR IGNORE through the DB-API's executemany; returns the rows inserted.

    The hot path of ingestion: SQLAlchemy's per-row parameter processing costs more than
    SQLite's insert itself, so datetimes are rendered here in exactly the text form that
    :class:`storage.schema.UTCDateTime` stores and reads back. Duplicates are rare, so
    they are found after the insert, and only when the row count says there were some
    (rowids grow: rows above the previous maximum are this chunk's).
    """
    columns = ["model", *rows[0]]
    times = [i for i, c in enumerate(columns) if isinstance(table.c[c].type, schema.UTCDateTime)]
    cache: dict[datetime, str] = {}
    params = []
    for row in rows:
        values = [model, *row.values()]
        for i in times:
            values[i] = _sqlite_time(values[i], cache)
        params.append(tuple(values))
    names = ", ".join(f'"{c}"' for c in columns)
    marks = ", ".join("?" for _ in columns)
    before = conn.execute(select(func.max(table.c.pk))).scalar() or 0
    result = conn.exec_driver_sql(
        f"INSERT OR IGNORE INTO {table.name} ({names}) VALUES ({marks})", params
    )
    if result.rowcount == len(rows):
        return rows
    inserted = set(
        conn.execute(
            select(table.c.id).where(table.c.pk > before, table.c.model == model)
        ).scalars()
    )
    return [r for r in rows if r["id"] in inserted]


def _copy_rows(conn: Connection, table: Table, rows: Iterable[dict[str, Any]]) -> None:
    """PostgreSQL COPY: several times faster than INSERT for bulk rows."""
    rows = list(rows)
    columns = list(rows[0])
    raw = conn.connection.driver_connection  # psycopg.Connection
    assert raw is not None
    names = ", ".join(f'"{c}"' for c in columns)
    with raw.cursor() as cur, cur.copy(f"COPY {table.name} ({names}) FROM STDIN") as copy:
        for row in rows:
            copy.write_row([row[c] for c in columns])
