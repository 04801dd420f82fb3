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
import sqlite3
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from itertools import chain, repeat
from operator import attrgetter, itemgetter
from typing import Any

from sqlalchemy import Connection, Float, Table, func, select, text, update
from sqlalchemy import exc as sa_exc
from sqlalchemy.dialects import postgresql, sqlite

from storage import schema
from storage.errors import StorageError
from storage.store import Store

_WINDOW_START = itemgetter("window_start")


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
    window_size: timedelta = timedelta(hours=1)  # time windows: rows carry window_start
    # row-count windows of this many predictions: window_start is assigned at commit
    window_rows: int | None = None


@dataclass(frozen=True)
class ChunkResult:
    inserted: int
    duplicates: int
    quarantined: int
    windows: dict[datetime, int]  # window start -> rows inserted into it


def _upsert(conn: Connection, table: Table, keys: Sequence[str], update: dict[str, Any]) -> Any:
    module = postgresql if conn.dialect.name == "postgresql" else sqlite
    stmt = module.insert(table)
    return stmt.on_conflict_do_update(
        index_elements=list(keys),
        set_={k: (v(stmt.excluded) if callable(v) else v) for k, v in update.items()},
    )


def _first_of_each_id(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    unique: dict[str, dict[str, Any]] = {}
    for row in rows:
        unique.setdefault(row["id"], row)
    return rows if len(unique) == len(rows) else list(unique.values())


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

    def _write_rows(
        self, conn: Connection, table: Table, model: str, rows: list[dict[str, Any]]
    ) -> list[dict[str, Any]]:
        """Insert the rows whose id is not stored yet; returns those rows.

        Of rows sharing an id within the chunk, the first is the one stored.
        """
        if conn.dialect.name == "sqlite":
            return _sqlite_insert_new(conn, table, model, rows)
        return _postgres_insert_new(conn, table, model, rows)

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
        rows = _first_of_each_id(chunk.rows)
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


_ROWS_PER_INSERT = 200  # rows per SQLite INSERT statement (gains level off beyond)
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


_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_TWO_DIGITS = [f"{i:02d}" for i in range(100)]
_THREE_DIGITS = [f"{i:03d}" for i in range(1000)]
_TZINFO = attrgetter("tzinfo")
_REPEATED_TIMES = frozenset({"window_start"})  # thousands of rows share each value


def _refuse_naive(column: str, values: Sequence[datetime]) -> None:
    """Raise for a naive datetime, as :class:`UTCDateTime` does (the bulk paths bypass it)."""
    if None in set(map(_TZINFO, values)):
        naive = next(v for v in values if v.tzinfo is None)
        raise StorageError(
            f"naive datetime {naive!r} in column {column!r}: driftd stores aware UTC times"
        )


def _sqlite_times(column: str, values: Sequence[datetime]) -> list[str]:
    """Aware datetimes as the naive UTC text that :class:`UTCDateTime` stores in SQLite."""
    _refuse_naive(column, values)
    if column in _REPEATED_TIMES:
        unique = list(set(values))
        texts = dict(zip(unique, _utc_texts(unique), strict=True))
        return list(map(texts.__getitem__, values))
    return _utc_texts(values)


def _utc_texts(values: Iterable[datetime]) -> list[str]:
    """SQLAlchemy's SQLite ``DATETIME`` text of aware datetimes, in UTC.

    "2026-11-28 10:00:00.000000": the text SQLAlchemy reads back and compares with in
    SQL. Assembled from the exact difference to the epoch and table lookups, because
    ``isoformat`` costs 2.5 times as much, for every row ingested.
    """
    days: dict[int, str] = {}
    out = []
    for value in values:
        delta = value - _EPOCH  # exact, in UTC whatever the value's time zone
        day = days.get(delta.days)
        if day is None:
            day = days[delta.days] = (_EPOCH + timedelta(days=delta.days)).date().isoformat()
        hour, rest = divmod(delta.seconds, 3600)
        minute, second = divmod(rest, 60)
        us = delta.microseconds
        out.append(
            f"{day} {_TWO_DIGITS[hour]}:{_TWO_DIGITS[minute]}:{_TWO_DIGITS[second]}"
            f".{_THREE_DIGITS[us // 1000]}{_THREE_DIGITS[us % 1000]}"
        )
    return out


def _sqlite_insert_new(
    conn: Connection, table: Table, model: str, rows: list[dict[str, Any]]
) -> list[dict[str, Any]]:
    """Bulk INSERT through the DB-API's executemany; returns the rows inserted.

    The hot path of ingestion: SQLAlchemy's per-row parameter processing costs more than
    SQLite's insert itself, so the parameters are built column by column in C (values
    fetched by name, datetimes rendered by :func:`_sqlite_times`), and each statement
    inserts up to :data:`_ROWS_PER_INSERT` rows (a multi-row ``VALUES``): SQLite's own
    cost per row is then a fifth lower than with one statement per row, as the statement
    is set up, and its table and index cursors opened, once per batch. ``ON CONFLICT DO
    NOTHING`` skips only rows whose id is stored already (or came earlier in the chunk);
    any other constraint violation fails the chunk (``INSERT OR IGNORE`` would drop a NOT
    NULL violation silently). Duplicates are rare, so they are found after the insert,
    and only when the row count says there were some (rowids grow: rows above the
    previous maximum are this chunk's).
    """
    names, values = [], []
    for name in rows[0]:
        column = list(map(itemgetter(name), rows))
        if column.count(None) == len(column) and table.c[name].server_default is None:
            continue  # NULL anyway, and sqlite3 binds None slowly (an adapter lookup each)
        if isinstance(table.c[name].type, schema.UTCDateTime):
            column = _sqlite_times(name, column)
        names.append(name)
        values.append(column)
    columns = ", ".join(f'"{c}"' for c in ["model", *names])
    width = len(names) + 1
    marks = "(" + ", ".join("?" * width) + ")"

    def insert(n: int) -> str:
        return f"INSERT INTO {table.name} ({columns}) VALUES {', '.join([marks] * n)}" + (
            " ON CONFLICT DO NOTHING"
        )

    raw = conn.connection.driver_connection
    limit = raw.getlimit(sqlite3.SQLITE_LIMIT_VARIABLE_NUMBER) if raw is not None else 999
    per = max(1, min(_ROWS_PER_INSERT, limit // width))
    whole = len(rows) - len(rows) % per

    def batch(start: int, n: int) -> tuple[Any, ...]:
        """The parameters of rows start..start+n, row after row (zip reuses its tuple)."""
        parts = (column[start : start + n] for column in values)
        return tuple(chain.from_iterable(zip(repeat(model, n), *parts, strict=True)))

    before = conn.execute(select(func.max(table.c.pk))).scalar() or 0
    count = 0
    if whole:
        batches = [batch(i, per) for i in range(0, whole, per)]
        count += conn.exec_driver_sql(insert(per), batches).rowcount
    if whole < len(rows):
        rest = len(rows) - whole
        count += conn.exec_driver_sql(insert(rest), batch(whole, rest)).rowcount
    if count == len(rows):
        return rows
    inserted = set(
        conn.execute(
            select(table.c.id).where(table.c.pk > before, table.c.model == model)
        ).scalars()
    )
    # rows go in in order, so of rows sharing an id the first was inserted, if any
    return [r for r in _first_of_each_id(rows) if r["id"] in inserted]


def _pg_type(t: Any) -> str:
    """The binary COPY type of a column (text serves VARCHAR and TEXT alike)."""
    if isinstance(t, schema.UTCDateTime):
        return "timestamptz"
    if isinstance(t, Float):
        return "float8"
    return "text"


def _postgres_insert_new(
    conn: Connection, table: Table, model: str, rows: list[dict[str, Any]]
) -> list[dict[str, Any]]:
    """COPY into a temporary table, then one ``INSERT ... ON CONFLICT DO NOTHING``.

    The database finds the duplicates through the unique index while inserting: no
    lookup query whose plan depends on statistics (with stale ones, PostgreSQL scans
    every stored row of the model per lookup), and no race with a concurrent writer.
    """
    rows = _first_of_each_id(rows)
    names = list(rows[0])
    columns = [list(map(itemgetter(name), rows)) for name in names]
    for name, values in zip(names, columns, strict=True):
        if isinstance(table.c[name].type, schema.UTCDateTime):
            _refuse_naive(name, values)
    stage = f"_driftd_stage_{table.name}"  # dropped by the commit: always the current columns
    staged = ", ".join(f'"{c.name}"' for c in table.columns if c.name not in ("pk", "model"))
    quoted = ", ".join(f'"{c}"' for c in names)
    raw = conn.connection.driver_connection  # psycopg.Connection
    assert raw is not None
    dbapi_error = conn.dialect.loaded_dbapi.Error
    try:
        with raw.cursor() as cur:
            cur.execute(
                f"CREATE TEMPORARY TABLE IF NOT EXISTS {stage} ON COMMIT DROP"
                f" AS SELECT {staged} FROM {table.name} WITH NO DATA"
            )
            with cur.copy(f"COPY {stage} ({quoted}) FROM STDIN (FORMAT BINARY)") as copy:
                copy.set_types([_pg_type(table.c[name].type) for name in names])
                for row in zip(*columns, strict=True):
                    copy.write_row(row)
            cur.execute(
                f'INSERT INTO {table.name} ("model", {quoted}) SELECT %s, {quoted} FROM {stage}'
                f" ON CONFLICT (model, id) DO NOTHING RETURNING id",
                (model,),
            )
            inserted = {r[0] for r in cur}
    except dbapi_error as exc:  # the raw connection bypasses SQLAlchemy's translation
        raise sa_exc.DBAPIError.instance(None, None, exc, dbapi_error) from exc
    if len(inserted) == len(rows):
        return rows
    return [r for r in rows if r["id"] in inserted]
