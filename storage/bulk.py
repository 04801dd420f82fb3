"""Bulk insertion of new rows, per dialect: multi-row INSERTs on SQLite (datetimes
rendered as text once per distinct value), binary COPY into a staging table on
PostgreSQL. Rows whose id is stored already are skipped by the caller's query."""

from __future__ import annotations

import sqlite3
from collections.abc import Iterable, Sequence
from datetime import UTC, datetime, timedelta
from itertools import chain, repeat
from operator import attrgetter, itemgetter
from typing import Any

from sqlalchemy import Connection, Float, Table, func, select
from sqlalchemy import exc as sa_exc

from storage import schema
from storage.errors import StorageError

_ROWS_PER_INSERT = 200  # rows per SQLite INSERT statement (gains level off beyond)


def first_of_each_id(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    unique: dict[str, dict[str, Any]] = {}
    for row in rows:
        unique.setdefault(row["id"], row)
    return rows if len(unique) == len(rows) else list(unique.values())


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


def insert_new_sqlite(
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
    for name in _stored(rows[0]):
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
    return [r for r in first_of_each_id(rows) if r["id"] in inserted]


def _stored(row: dict[str, Any]) -> list[str]:
    """A row's columns: its keys but those starting with "_" (what ingestion passes along
    for itself, e.g. the decoded features a feature block is made from)."""
    return [name for name in row if not name.startswith("_")]


def _pg_type(t: Any) -> str:
    """The binary COPY type of a column (text serves VARCHAR and TEXT alike)."""
    if isinstance(t, schema.UTCDateTime):
        return "timestamptz"
    if isinstance(t, Float):
        return "float8"
    return "text"


def insert_new_postgres(
    conn: Connection, table: Table, model: str, rows: list[dict[str, Any]]
) -> list[dict[str, Any]]:
    """COPY into a temporary table, then one ``INSERT ... ON CONFLICT DO NOTHING``.

    The database finds the duplicates through the unique index while inserting: no
    lookup query whose plan depends on statistics (with stale ones, PostgreSQL scans
    every stored row of the model per lookup), and no race with a concurrent writer.
    """
    rows = first_of_each_id(rows)
    names = _stored(rows[0])
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
