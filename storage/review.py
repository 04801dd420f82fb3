"""The human review queue: items, their reviews, and the labels they give the next model.

An item is one prediction queued for a reason (``misclassified``, ``out_of_distribution``
or ``low_confidence``), at most one per (model, prediction). Its life::

    pending ──> confirmed    the label is right (the production label, or the prediction
       │                     when no label has arrived)
       ├────> relabelled     the reviewer gives the right label (``new_label``)
       └────> discarded      not usable for training (ambiguous, broken input)

A reviewed item can be reviewed again; the latest review counts and every review stays
in the item's history. Queueing (:meth:`ReviewRepository.enqueue`) is idempotent and
keeps at most ``per_window`` items per window across calls; a pending item is upgraded
when a stronger reason appears (its label arrived and shows an error), a reviewed item
is never touched.

:meth:`ReviewRepository.training_labels` is what the next training set is made of (see
:mod:`storage.labels`): the production labels, overridden by reviews.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any

import orjson
from sqlalchemy import Connection, and_, func, or_, select, text, update
from sqlalchemy.dialects import postgresql, sqlite

from storage import schema
from storage.errors import InvalidOperationError
from storage.labels import (
    CONFIRMED,
    DISCARDED,
    PENDING,
    RELABELLED,
    TrainingLabel,
    label_classes,
    training_labels,
)
from storage.review_rows import Candidate, ItemView, ReviewItem, WindowRow
from storage.store import Store

STATES = (PENDING, CONFIRMED, RELABELLED, DISCARDED)
# the reasons an item is queued for, strongest first (monitor.review chooses them)
REASONS = ("misclassified", "out_of_distribution", "low_confidence")

_CHUNK = 500  # ids per IN (...) list
_WINDOWS = 200  # windows whose rows one query reads


def _json(value: Any) -> str:
    return orjson.dumps(value, default=str).decode()


def _load(value: str | None) -> Any:
    return None if value is None else orjson.loads(value)


def _item(row: Any) -> ReviewItem:
    return _item_from(row._mapping)


def _item_from(mapping: Mapping[Any, Any]) -> ReviewItem:
    values = {c.name: mapping[c.name] for c in schema.review_items.columns}
    details = _load(values.pop("details")) or {}
    values["label"] = _load(values["label"])
    values["new_label"] = _load(values["new_label"])
    return ReviewItem(**values, why=details.get("why", {}), history=details.get("history", []))


def _details(why: Mapping[str, Any], history: list[dict[str, Any]]) -> str:
    return _json({"why": dict(why), "history": history})


def _insert(conn: Connection) -> Any:
    module = postgresql if conn.dialect.name == "postgresql" else sqlite
    return module.insert(schema.review_items).on_conflict_do_nothing(
        index_elements=["model", "prediction_id"]
    )


def _lock_windows(conn: Connection, model: str, starts: Sequence[datetime]) -> None:
    """Serialise concurrent queueing into the same windows (SQLite's write lock already
    does): one advisory lock per window, taken in key order so that two writers of
    overlapping windows cannot deadlock."""
    if conn.dialect.name != "postgresql":
        return
    keys = sorted({_lock_key(model, start) for start in starts})
    conn.execute(
        text(
            "SELECT count(pg_advisory_xact_lock(k))"
            " FROM (SELECT unnest(CAST(:keys AS bigint[])) AS k ORDER BY k) s"
        ),
        {"keys": keys},
    )


def _lock_key(model: str, window_start: datetime) -> int:
    digest = hashlib.blake2b(f"review:{model}:{window_start.isoformat()}".encode(), digest_size=8)
    return int.from_bytes(digest.digest(), "big", signed=True)


def _filtered(
    query: Any,
    model: str,
    state: str | None,
    reason: str | None,
    window: datetime | None,
    limit: int,
) -> Any:
    t = schema.review_items
    query = query.where(t.c.model == model)
    if state is not None:
        query = query.where(t.c.state == state)
    if reason is not None:
        query = query.where(t.c.reason == reason)
    if window is not None:
        query = query.where(t.c.window_start == window)
    return query.order_by(t.c.priority.desc(), t.c.pk).limit(limit)


def _view_query() -> Any:
    t, p, lab = schema.review_items, schema.predictions, schema.labels
    return select(
        t,
        p.c.ts.label("p_ts"),
        p.c.features.label("p_features"),
        p.c.prediction.label("p_prediction"),
        p.c.score.label("p_score"),
        p.c.probabilities.label("p_probabilities"),
        lab.c.label.label("p_label"),
    ).select_from(
        t.outerjoin(p, and_(p.c.model == t.c.model, p.c.id == t.c.prediction_id)).outerjoin(
            lab, and_(lab.c.model == t.c.model, lab.c.id == t.c.prediction_id)
        )
    )


def _view(row: Any) -> ItemView:
    return ItemView(
        item=_item_from(row._mapping),
        ts=row.p_ts,
        features=orjson.loads(row.p_features) if row.p_features else {},
        prediction=_load(row.p_prediction),
        score=row.p_score,
        probabilities=_load(row.p_probabilities),
        production_label=_load(row.p_label),
    )


class ReviewRepository:
    def __init__(self, store: Store) -> None:
        self.store = store

    # -- the rows a window's candidates are chosen from -----------------------------------

    def window_rows(self, model: str, window_start: datetime) -> list[WindowRow]:
        return self.windows_rows(model, [window_start]).get(window_start, [])

    def windows_rows(
        self, model: str, starts: Sequence[datetime]
    ) -> dict[datetime, list[WindowRow]]:
        """The rows of several windows, by window start, each window's in id order
        (windows without predictions are absent). One query per :data:`_WINDOWS`
        windows: a backfill of one-minute windows paid a round trip per window, and on
        SQLite, with ``ORDER BY id`` alone, a scan of the model's every prediction."""
        p, lab = schema.predictions, schema.labels
        out: dict[datetime, list[WindowRow]] = {}
        with self.store.connect("reading windows' predictions") as conn:
            for i in range(0, len(starts), _WINDOWS):
                query = (
                    select(
                        p.c.window_start,
                        p.c.id,
                        p.c.ts,
                        p.c.features,
                        p.c.prediction,
                        p.c.score,
                        lab.c.label,
                        p.c.probabilities,
                    )
                    .select_from(
                        p.outerjoin(lab, and_(lab.c.model == p.c.model, lab.c.id == p.c.id))
                    )
                    .where(p.c.model == model, p.c.window_start.in_(list(starts[i : i + _WINDOWS])))
                    .order_by(p.c.window_start, p.c.id)
                )
                for r in conn.execute(query):
                    out.setdefault(r.window_start, []).append(
                        WindowRow(
                            r.id,
                            r.ts,
                            orjson.loads(r.features),
                            _load(r.prediction),
                            r.score,
                            _load(r.label),
                            _load(r.probabilities),
                        )
                    )
        return out

    # -- queueing ---------------------------------------------------------------------------

    def enqueue(
        self,
        model: str,
        window_start: datetime,
        candidates: Sequence[Candidate],
        *,
        per_window: int,
        now: datetime,
    ) -> dict[str, int]:
        """Queue new candidates (in the given order, highest priority first) while the
        window has fewer than ``per_window`` items, and upgrade pending items to a
        stronger reason. Idempotent: an item already queued is not queued again."""
        return self.enqueue_windows(
            model, {window_start: candidates}, per_window=per_window, now=now
        )[window_start]

    def enqueue_windows(
        self,
        model: str,
        windows: Mapping[datetime, Sequence[Candidate]],
        *,
        per_window: int,
        now: datetime,
    ) -> dict[datetime, dict[str, int]]:
        """:meth:`enqueue` for several windows in one transaction: the windows' item
        counts, the candidates' existing items and the new items each in a few
        statements for all the windows, rather than a transaction per window."""
        t = schema.review_items
        rank = {reason: i for i, reason in enumerate(reversed(REASONS))}
        starts = list(windows)
        out = {start: {"added": 0, "upgraded": 0, "over_cap": 0} for start in starts}
        if not starts:
            return out
        with self.store.transaction("queueing review items") as conn:
            _lock_windows(conn, model, starts)
            queued = self._counts(conn, model, starts)
            ids = [c.prediction_id for start in starts for c in windows[start]]
            existing = self._existing(conn, model, ids)
            fresh: dict[datetime, list[Candidate]] = {}
            for start in starts:
                fresh[start] = []
                for c in windows[start]:
                    old = existing.get(c.prediction_id)
                    if old is None:
                        fresh[start].append(c)
                    elif old.state == PENDING and rank.get(c.reason, -1) > rank.get(old.reason, -1):
                        event = {
                            "at": now,
                            "event": "upgraded",
                            "from": old.reason,
                            "to": c.reason,
                            "was": old.why.get("summary"),
                        }
                        conn.execute(
                            update(t)
                            .where(t.c.pk == old.pk, t.c.state == PENDING)
                            .values(
                                reason=c.reason,
                                priority=c.priority,
                                label=None if c.label is None else _json(c.label),
                                details=_details(c.details, [*old.history, event]),
                            )
                        )
                        out[start]["upgraded"] += 1
            room = {start: max(per_window - queued.get(start, 0), 0) for start in starts}
            # rounds: a candidate another writer queued meanwhile is skipped (on
            # conflict, do nothing) and the next one takes its place
            while batches := {
                start: fresh[start][: room[start]]
                for start in starts
                if room[start] and fresh[start]
            }:
                rows = []
                for start, batch in batches.items():
                    fresh[start] = fresh[start][len(batch) :]
                    rows += [
                        {
                            "model": model,
                            "prediction_id": c.prediction_id,
                            "window_start": start,
                            "reason": c.reason,
                            "priority": c.priority,
                            "state": PENDING,
                            "label": None if c.label is None else _json(c.label),
                            "created_at": now,
                            "details": _details(
                                c.details, [{"at": now, "event": "queued", "reason": c.reason}]
                            ),
                        }
                        for c in batch
                    ]
                inserted = conn.execute(_insert(conn).returning(t.c.window_start), rows).all()
                added = dict.fromkeys(batches, 0)
                for (start,) in inserted:
                    added[start] += 1
                for start, n in added.items():
                    out[start]["added"] += n
                    room[start] -= n
        for start in starts:
            out[start]["over_cap"] = len(fresh[start])
        return out

    def _counts(self, conn: Connection, model: str, starts: list[datetime]) -> dict[datetime, int]:
        """Items queued per window, for the given windows."""
        t = schema.review_items
        found: dict[datetime, int] = {}
        for i in range(0, len(starts), _CHUNK):
            rows = conn.execute(
                select(t.c.window_start, func.count())
                .where(t.c.model == model, t.c.window_start.in_(starts[i : i + _CHUNK]))
                .group_by(t.c.window_start)
            )
            found.update((start, n) for start, n in rows)
        return found

    def _existing(self, conn: Connection, model: str, ids: list[str]) -> dict[str, ReviewItem]:
        t = schema.review_items
        found: dict[str, ReviewItem] = {}
        for i in range(0, len(ids), _CHUNK):
            chunk = ids[i : i + _CHUNK]
            rows = conn.execute(select(t).where(t.c.model == model, t.c.prediction_id.in_(chunk)))
            found.update((r.prediction_id, _item(r)) for r in rows)
        return found

    # -- reading ----------------------------------------------------------------------------

    def items(
        self,
        model: str,
        *,
        state: str | None = None,
        reason: str | None = None,
        window: datetime | None = None,
        limit: int = 100,
    ) -> list[ReviewItem]:
        """Items, highest priority first (then oldest first)."""
        query = _filtered(select(schema.review_items), model, state, reason, window, limit)
        with self.store.connect("reading review items") as conn:
            return [_item(r) for r in conn.execute(query)]

    def views(
        self,
        model: str,
        *,
        state: str | None = None,
        reason: str | None = None,
        window: datetime | None = None,
        limit: int = 100,
    ) -> list[ItemView]:
        """:meth:`items` with their predictions and production labels (for exports)."""
        query = _filtered(_view_query(), model, state, reason, window, limit)
        with self.store.connect("reading review items") as conn:
            return [_view(r) for r in conn.execute(query)]

    def item(self, model: str, key: int | str) -> ItemView | None:
        """One item with its prediction and production label. ``key`` is the item
        number (an int), or a prediction id (a str; an all-digit str that is no
        prediction id is taken as an item number)."""
        t = schema.review_items
        if isinstance(key, int):
            match = t.c.pk == key
        elif key.isdigit():
            match = or_(t.c.prediction_id == key, t.c.pk == int(key))
        else:
            match = t.c.prediction_id == key
        with self.store.connect("reading a review item") as conn:
            rows = conn.execute(_view_query().where(t.c.model == model, match)).all()
        if len(rows) > 1 and isinstance(key, str):  # a prediction id beats an item number
            rows = [r for r in rows if r.prediction_id == key]
        return _view(rows[0]) if rows else None

    def counts(self, model: str) -> dict[str, Any]:
        """Items per state, and per window per state (window starts as datetimes)."""
        t = schema.review_items
        with self.store.connect("counting review items") as conn:
            rows = conn.execute(
                select(t.c.window_start, t.c.state, func.count())
                .where(t.c.model == model)
                .group_by(t.c.window_start, t.c.state)
                .order_by(t.c.window_start, t.c.state)
            ).all()
        states: dict[str, int] = dict.fromkeys(STATES, 0)
        windows: dict[datetime | None, dict[str, int]] = {}
        for start, state, n in rows:
            states[state] = states.get(state, 0) + n
            windows.setdefault(start, dict.fromkeys(STATES, 0))[state] = n
        return {"states": states, "windows": windows}

    # -- reviewing --------------------------------------------------------------------------

    def review(
        self,
        model: str,
        pk: int,
        state: str,
        *,
        reviewer: str,
        now: datetime,
        new_label: Any = None,
        note: Mapping[str, Any] | None = None,
    ) -> ReviewItem | None:
        """Record a review (the latest replaces the previous one, which stays in the
        history); None when the model has no item ``pk``.

        ``relabelled`` needs ``new_label``. ``confirmed`` records the label it confirms:
        the production label, or the prediction when no label has arrived yet.
        """
        if state not in (CONFIRMED, RELABELLED, DISCARDED):
            raise InvalidOperationError(
                f"cannot review into state {state!r}; choose confirmed, relabelled or discarded"
            )
        if state == RELABELLED and new_label is None:
            raise InvalidOperationError("relabelled needs the new label")
        if state != RELABELLED and new_label is not None:
            raise InvalidOperationError(f"{state} takes no new label")
        view = self.item(model, pk)
        if view is None:
            return None
        old = view.item
        if state == CONFIRMED:
            new_label = view.production_label
            if new_label is None:
                new_label = view.prediction
            if new_label is None:
                raise InvalidOperationError(
                    f"review item {pk} of {model!r} has neither a label nor a prediction to confirm"
                )
        event: dict[str, Any] = {"at": now, "event": state, "by": reviewer}
        if new_label is not None:
            event["label"] = new_label
        if old.state != PENDING:
            event["replaces"] = {"state": old.state, "label": old.new_label, "by": old.reviewer}
        if note:
            event["note"] = dict(note)
        t = schema.review_items
        with self.store.transaction("recording a review") as conn:
            # re-read under the lock: two reviewers must not lose each other's history
            current = conn.execute(select(t.c.details).where(t.c.pk == pk).with_for_update())
            details = _load(current.scalar_one()) or {}
            history = [*details.get("history", []), event]
            conn.execute(
                update(t)
                .where(t.c.pk == pk)
                .values(
                    state=state,
                    new_label=None if new_label is None else _json(new_label),
                    reviewer=reviewer,
                    reviewed_at=now,
                    details=_details(details.get("why", {}), history),
                )
            )
            row = conn.execute(select(t).where(t.c.pk == pk)).one()
        return _item(row)

    # -- the next training set --------------------------------------------------------------

    def training_labels(self, model: str) -> list[TrainingLabel]:
        """Every labelled prediction with its training label and where it comes from,
        oldest first: reviews override production labels; discarded rows are left out."""
        return training_labels(self.store, model)

    def label_classes(self, model: str, *, limit: int = 100) -> list[Any]:
        """The distinct production labels of ``model`` (at most ``limit``)."""
        return label_classes(self.store, model, limit=limit)
