"""Persistence for the statistics job: reference profiles, window states and results.

The statistics job folds stored predictions into per-window states exactly once: it
reads rows after its cursor (``predictions.pk``), and commits the updated window states
together with the new cursor position in one transaction.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping, Sequence
from datetime import UTC, datetime
from typing import Any

import orjson
from sqlalchemy import (
    ColumnElement,
    Connection,
    String,
    delete,
    or_,
    select,
    type_coerce,
    update,
)

from storage import schema
from storage.ingest import _upsert
from storage.results import WindowResults
from storage.rows import BlockGroup, StoredBlock, StoredRow, StoredRows, ValueRun
from storage.store import Store, read_large, read_once

CURSOR = "statistics"
# block heads listed per fold step (one block per window and ingested chunk: a backfill of
# one-minute windows has thousands per chunk)
BLOCK_HEADS = 10_000
_VALUES_PER_INSERT = 4 << 20  # bytes of window-value runs buffered per INSERT


class StatisticsRepository:
    def __init__(self, store: Store) -> None:
        self.store = store

    # -- reference profiles -------------------------------------------------------------

    def profile(self, model: str, version: str) -> str | memoryview | None:
        """The stored profile: msgpack (a buffer) or, stored by earlier versions, JSON
        text."""
        t = schema.reference_profiles
        with self.store.connect("reading the reference profile") as conn, read_once(conn):
            pk = conn.execute(
                select(t.c.pk).where(t.c.model == model, t.c.model_version == version)
            ).scalar()
            if pk is None:
                return None
            stored = read_large(conn, t.c.payload, pk)
            if stored is None:  # stored before 0009
                return conn.execute(select(t.c.profile).where(t.c.pk == pk)).scalar()
            return stored

    def save_profile(self, model: str, version: str, profile: bytes) -> None:
        t = schema.reference_profiles
        now = datetime.now(UTC)
        row = {"profile": "", "payload": profile, "created_at": now}
        with self.store.transaction("saving the reference profile") as conn:
            conn.execute(
                _upsert(conn, t, ["model", "model_version"], row),
                [{"model": model, "model_version": version, **row}],
            )

    # -- folding rows into window states ------------------------------------------------

    def cursor(self, model: str) -> int:
        t = schema.cursors
        with self.store.connect("reading the statistics cursor") as conn:
            return (
                conn.execute(
                    select(t.c.position).where(t.c.model == model, t.c.name == CURSOR)
                ).scalar()
                or 0
            )

    def rows_after(self, model: str, position: int, limit: int) -> list[StoredRow]:
        p = schema.predictions
        with self.store.connect("reading predictions") as conn:
            rows = conn.execute(
                select(p.c.pk, p.c.id, p.c.window_start, p.c.features, p.c.prediction, p.c.score)
                .where(_of_model(conn, model), p.c.pk > position)
                .order_by(p.c.pk)
                .limit(limit)
            )
            return [StoredRow(*r) for r in rows]

    def rows_batch_after(
        self, model: str, position: int, limit: int, upto: int | None = None
    ) -> StoredRows:
        """:meth:`rows_after` column by column, without a per-row conversion: the window
        starts, shared by thousands of rows, are converted once per distinct value.
        ``upto``: only rows with ``pk <= upto``."""
        p = schema.predictions
        query = (
            select(
                p.c.pk,
                p.c.id,
                type_coerce(p.c.window_start, String),  # as stored: converted below
                p.c.features,
                p.c.prediction,
                p.c.score,
            )
            .order_by(p.c.pk)
            .limit(limit)
        )
        with self.store.connect("reading predictions") as conn:
            query = query.where(_of_model(conn, model), p.c.pk > position)
            if upto is not None:
                query = query.where(p.c.pk <= upto)
            rows = conn.execute(query).all()
        if not rows:
            return StoredRows([], [], [], [], [], [])
        pks, ids, starts, features, predictions, scores = (list(c) for c in zip(*rows, strict=True))
        times = {raw: _utc(raw) for raw in set(starts)}
        return StoredRows(
            pks, ids, list(map(times.__getitem__, starts)), features, predictions, scores
        )

    def block_groups_after(self, model: str, position: int, rows: int) -> list[BlockGroup]:
        """The feature blocks of the first ingested chunks after ``position``, whole
        chunks of about ``rows`` rows in all (at least one chunk), in cursor order."""
        b = schema.feature_blocks
        with self.store.connect("reading feature blocks") as conn, read_once(conn):
            listed = select(b.c.pk, b.c.after_pk, b.c.upto_pk, b.c.rows).order_by(
                b.c.upto_pk, b.c.pk
            )
            heads = conn.execute(
                listed.where(b.c.model == model, b.c.upto_pk > position).limit(BLOCK_HEADS)
            ).all()
            if len(heads) == BLOCK_HEADS:
                # the last chunk's blocks may go on past the limit: a group is whole or
                # not read (the fold deletes a group's blocks once it folded them)
                last = heads[-1].upto_pk
                heads = [h for h in heads if h.upto_pk != last] or conn.execute(
                    listed.where(b.c.model == model, b.c.upto_pk == last)
                ).all()
            groups: list[BlockGroup] = []
            chosen: list[tuple[int, BlockGroup]] = []
            total = 0
            for pk, after, upto, n in heads:
                if not groups or groups[-1].upto != upto:
                    if total >= rows:
                        break
                    groups.append(BlockGroup(after, upto, []))
                chosen.append((pk, groups[-1]))
                total += n
            payloads = {}
            pks = [pk for pk, _ in chosen]
            for first in range(0, len(pks), 500):
                found = conn.execute(
                    select(b.c.pk, b.c.window_start, b.c.upto_pk, b.c.payload).where(
                        b.c.pk.in_(pks[first : first + 500])
                    )
                )
                payloads.update({pk: (start, upto, payload) for pk, start, upto, payload in found})
            runs = self._ingested_runs(conn, model, position, groups[-1].upto) if groups else {}
        for pk, group in chosen:
            start, upto, payload = payloads[pk]
            group.blocks.append(StoredBlock(start, payload, runs.get((upto, start), {})))
        return groups

    def _ingested_runs(
        self, conn: Connection, model: str, after: int, upto: int
    ) -> dict[tuple[int, datetime], dict[str, bytes]]:
        """The runs ingestion wrote with the blocks of rows ``after < pk <= upto``: (block's
        upto_pk, window start) -> column -> payload."""
        v = schema.window_values
        found = conn.execute(
            select(v.c.upto_pk, v.c.start, v.c.name, v.c.payload).where(
                v.c.model == model, v.c.upto_pk > after, v.c.upto_pk <= upto
            )
        )
        out: dict[tuple[int, datetime], dict[str, bytes]] = {}
        for block_upto, start, name, payload in found:
            out.setdefault((block_upto, start), {})[name] = payload
        return out

    def has_rows(self, model: str, after: int, upto: int) -> bool:
        """Whether the model has stored predictions with ``after < pk <= upto``."""
        p = schema.predictions
        with self.store.connect("reading predictions") as conn:
            found = conn.execute(
                select(p.c.pk)
                .where(_of_model(conn, model), p.c.pk > after, p.c.pk <= upto)
                .limit(1)
            ).first()
        return found is not None

    def window_features(
        self, model: str, start: datetime, chunk: int = 10_000
    ) -> Iterator[list[str]]:
        """The features (JSON objects) of every stored prediction of one window, for
        exact scores at finalize, ``chunk`` rows at a time (a window can hold millions)."""
        p = schema.predictions
        after = 0
        while True:
            with self.store.connect("reading a window's predictions") as conn:
                rows = conn.execute(
                    select(p.c.pk, p.c.features)
                    .where(p.c.model == model, p.c.window_start == start, p.c.pk > after)
                    .order_by(p.c.pk)
                    .limit(chunk)
                ).all()
            if not rows:
                return
            after = rows[-1][0]
            yield [features for _, features in rows]

    def states(self, model: str, starts: list[datetime]) -> dict[datetime, str | None]:
        w = schema.windows
        with self.store.connect("reading window states") as conn:
            rows = conn.execute(
                select(w.c.start, w.c.state).where(w.c.model == model, w.c.start.in_(starts))
            )
            return dict(rows.all())

    def commit_fold(
        self,
        model: str,
        position: int,
        states: Mapping[datetime, str],
        values: Iterable[ValueRun] = (),
        *,
        rows_after: int | None = None,
    ) -> None:
        """Save window states, runs of window values (consumed one at a time: each can be
        large) and advance the cursor, in one transaction; folded blocks are deleted.

        ``rows_after``: the rows after it were folded from their JSON, and ``values`` hold
        theirs: runs ingestion wrote of any of them are deleted (a chunk folded partly
        from its rows is folded from its rows to the end)."""
        now = datetime.now(UTC)
        with self.store.transaction("saving window states") as conn:
            w = schema.windows
            for start, state in states.items():
                conn.execute(
                    update(w)
                    .where(w.c.model == model, w.c.start == start)
                    .values(state=state, updated_at=now, finalized_at=None)
                )
            if rows_after is not None:
                v = schema.window_values
                conn.execute(
                    delete(v).where(
                        v.c.model == model, v.c.upto_pk > rows_after, v.c.after_pk < position
                    )
                )
            self._insert_values(conn, model, values)
            self._advance(conn, model, position, now)
            b = schema.feature_blocks
            conn.execute(delete(b).where(b.c.model == model, b.c.upto_pk <= position))

    def _insert_values(self, conn: Connection, model: str, runs: Iterable[ValueRun]) -> None:
        """Insert runs as they come, many small ones per statement (a backfill of
        one-minute windows makes thousands), a large one alone (each can be 8 MB)."""
        batch: list[dict[str, Any]] = []
        size = 0
        for start, name, n, payload in runs:
            row = {"model": model, "start": start, "name": name, "rows": n, "payload": payload}
            batch.append(row)
            size += len(payload)
            if size >= _VALUES_PER_INSERT:
                conn.execute(schema.window_values.insert(), batch)
                batch, size = [], 0
        if batch:
            conn.execute(schema.window_values.insert(), batch)

    def window_value_runs(
        self, model: str, start: datetime, folded: int
    ) -> list[tuple[int, str | None]]:
        """The stored runs of a window's values without their payloads: (pk, column; None
        for a run of every column, as stored before 0009), oldest first; of the runs
        ingestion wrote, those of rows folded (up to the cursor ``folded``)."""
        v = schema.window_values
        with self.store.connect("reading window values") as conn:
            rows = conn.execute(
                select(v.c.pk, v.c.name)
                .where(
                    v.c.model == model,
                    v.c.start == start,
                    or_(v.c.upto_pk.is_(None), v.c.upto_pk <= folded),
                )
                .order_by(v.c.pk)
            )
            return [(pk, name) for pk, name in rows]

    def window_value_payloads(self, pks: Sequence[int]) -> list[bytes]:
        """The payloads of some runs, in the order of ``pks``."""
        v = schema.window_values
        found: dict[int, bytes] = {}
        with self.store.connect("reading window values") as conn, read_once(conn):
            for first in range(0, len(pks), 500):
                rows = conn.execute(
                    select(v.c.pk, v.c.payload).where(v.c.pk.in_(list(pks[first : first + 500])))
                )
                found.update((pk, bytes(payload)) for pk, payload in rows)
        return [found[pk] for pk in pks]

    def replace_window_values(
        self,
        model: str,
        start: datetime,
        replaced: Sequence[int],
        runs: Iterable[ValueRun],
    ) -> None:
        """Store runs of a window's values in place of the runs ``replaced`` (pks), in one
        transaction; ``runs`` is consumed one at a time (each can be large)."""
        v = schema.window_values
        with self.store.transaction("saving window values") as conn:
            if replaced:
                conn.execute(delete(v).where(v.c.model == model, v.c.pk.in_(list(replaced))))
            self._insert_values(conn, model, runs)

    def _advance(self, conn: Connection, model: str, position: int, now: datetime) -> None:
        t = schema.cursors
        conn.execute(
            _upsert(conn, t, ["model", "name"], {"position": position, "updated_at": now}),
            [{"model": model, "name": CURSOR, "position": position, "updated_at": now}],
        )

    # -- results ------------------------------------------------------------------------

    def unfinalized(self, model: str) -> list[tuple[datetime, datetime, int, int, str]]:
        """Windows whose state (or duplicate count) changed since their results were
        computed: start, end, predictions, duplicates, state."""
        w = schema.windows
        with self.store.connect("reading windows") as conn:
            rows = conn.execute(
                select(w.c.start, w.c.end, w.c.predictions, w.c.duplicates, w.c.state)
                .where(w.c.model == model, w.c.state.is_not(None), w.c.finalized_at.is_(None))
                .order_by(w.c.start)
            )
            return [tuple(r) for r in rows]

    def window_sizes(self, model: str, limit: int) -> list[tuple[datetime, int]]:
        """(start, predictions) of the latest windows, latest first."""
        w = schema.windows
        with self.store.connect("reading window sizes") as conn:
            rows = conn.execute(
                select(w.c.start, w.c.predictions)
                .where(w.c.model == model)
                .order_by(w.c.start.desc())
                .limit(limit)
            )
            return [(start, n) for start, n in rows]

    def save_results(self, model: str, results: Mapping[datetime, WindowResults]) -> None:
        now = datetime.now(UTC)
        w = schema.windows
        with self.store.transaction("saving window results") as conn:
            for start, result in results.items():
                conn.execute(
                    update(w)
                    .where(w.c.model == model, w.c.start == start)
                    .values(results=_dump(result), finalized_at=now)
                )

    def result(self, model: str, start: datetime) -> WindowResults | None:
        w = schema.windows
        with self.store.connect("reading window results") as conn:
            payload = conn.execute(
                select(w.c.results).where(w.c.model == model, w.c.start == start)
            ).scalar()
        return None if payload is None else WindowResults.from_dict(orjson.loads(payload))

    def results(
        self, model: str, limit: int = 50, *, starts: Sequence[datetime] | None = None
    ) -> list[WindowResults]:
        """The latest finalized windows' results (only those of ``starts`` when given),
        oldest first."""
        w = schema.windows
        query = select(w.c.results).where(w.c.model == model, w.c.results.is_not(None))
        if starts is not None:
            query = query.where(w.c.start.in_(list(starts)))
            limit = max(limit, len(starts))
        with self.store.connect("reading window results") as conn:
            rows = conn.execute(query.order_by(w.c.start.desc()).limit(limit)).scalars().all()
        return [WindowResults.from_dict(orjson.loads(payload)) for payload in reversed(rows)]


def _dump(result: WindowResults) -> str:
    return orjson.dumps(result.to_dict(), option=orjson.OPT_NON_STR_KEYS).decode()


def _utc(raw: Any) -> datetime:
    """A stored time as :class:`~storage.schema.UTCDateTime` reads it: SQLite's naive
    UTC text, or PostgreSQL's aware datetime."""
    value = datetime.fromisoformat(raw) if isinstance(raw, str) else raw
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


def _of_model(conn: Connection, model: str) -> ColumnElement[bool]:
    """``predictions.model = model`` for a walk along the primary key from a cursor.

    SQLite picks the (model, window_start) index for it, then reads every row of the
    model and sorts them by pk, for each batch: quadratic in a large backlog. ``model ||
    ''`` has no index, so SQLite walks the primary key from the cursor instead."""
    p = schema.predictions
    return (p.c.model + "") == model if conn.dialect.name == "sqlite" else p.c.model == model
