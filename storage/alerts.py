"""Alert state: incidents, the delivery outbox and silences.

An incident change and the outbox rows that announce it are written in one
transaction (:meth:`AlertRepository.unit`), so an alert is never decided without being
queued, nor queued for a change that did not happen. Delivery then walks the outbox:
each attempt is counted *before* the message leaves (:meth:`begin_attempt`), so after a
crash an item with attempts is known to be "in doubt" and the sender checks whether it
already arrived before sending it again.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime
from typing import Any

import orjson
from sqlalchemy import Connection, func, select, update

from storage import schema
from storage.alert_rows import FAILED as FAILED
from storage.alert_rows import OPEN as OPEN
from storage.alert_rows import PENDING as PENDING
from storage.alert_rows import RESOLVED as RESOLVED
from storage.alert_rows import SENT as SENT
from storage.alert_rows import Incident as Incident
from storage.alert_rows import OutboxItem as OutboxItem
from storage.alert_rows import Silence as Silence
from storage.store import Store

CURSOR = "alerts"  # cursors.name: the latest window evaluated, in epoch seconds


def _incident(row: Any) -> Incident:
    values = dict(row._mapping)
    values["details"] = orjson.loads(values["details"]) if values["details"] else {}
    return Incident(**values)


def _item(row: Any) -> OutboxItem:
    values = dict(row._mapping)
    values["payload"] = orjson.loads(values["payload"])
    return OutboxItem(**values)


def _json(value: Any) -> str:
    return orjson.dumps(value, default=str).decode()


class Unit:
    """Writes of one alert evaluation, inside one transaction."""

    def __init__(self, conn: Connection) -> None:
        self.conn = conn

    def open_incidents(self, model: str) -> list[Incident]:
        t = schema.incidents
        rows = self.conn.execute(
            select(t).where(t.c.model == model, t.c.state == OPEN).order_by(t.c.pk)
        )
        return [_incident(r) for r in rows]

    def insert_incident(self, **values: Any) -> int:
        if "details" in values:
            values["details"] = _json(values["details"])
        result = self.conn.execute(schema.incidents.insert().values(**values))
        key = result.inserted_primary_key
        assert key is not None
        return int(key[0])

    def update_incident(self, pk: int, **values: Any) -> None:
        if "details" in values:
            values["details"] = _json(values["details"])
        t = schema.incidents
        self.conn.execute(update(t).where(t.c.pk == pk).values(**values))

    def enqueue(
        self,
        model: str,
        kind: str,
        payload: dict[str, Any],
        *,
        now: datetime,
        root_pk: int | None = None,
    ) -> int:
        result = self.conn.execute(
            schema.alert_outbox.insert().values(
                model=model,
                kind=kind,
                root_pk=root_pk,
                payload=_json(payload),
                status=PENDING,
                attempts=0,
                next_attempt_at=now,
                created_at=now,
            )
        )
        key = result.inserted_primary_key
        assert key is not None
        return int(key[0])

    def high_water(self, model: str) -> int | None:
        t = schema.cursors
        value = self.conn.execute(
            select(t.c.position).where(t.c.model == model, t.c.name == CURSOR)
        ).scalar()
        return None if value is None else int(value)

    def set_high_water(self, model: str, position: int, now: datetime) -> None:
        t = schema.cursors
        done = self.conn.execute(
            update(t)
            .where(t.c.model == model, t.c.name == CURSOR)
            .values(position=position, updated_at=now)
        )
        if not done.rowcount:
            self.conn.execute(
                t.insert().values(model=model, name=CURSOR, position=position, updated_at=now)
            )


class AlertRepository:
    def __init__(self, store: Store) -> None:
        self.store = store

    @contextmanager
    def unit(self, what: str = "recording alert incidents") -> Iterator[Unit]:
        with self.store.transaction(what) as conn:
            yield Unit(conn)

    # -- incidents ----------------------------------------------------------------------

    def incidents(
        self, *, model: str | None = None, state: str | None = None, limit: int = 100
    ) -> list[Incident]:
        t = schema.incidents
        query = select(t)
        if model is not None:
            query = query.where(t.c.model == model)
        if state is not None:
            query = query.where(t.c.state == state)
        with self.store.connect("reading incidents") as conn:
            rows = conn.execute(query.order_by(t.c.pk.desc()).limit(limit))
            return [_incident(r) for r in rows]

    def incidents_announced_by(self, root_pk: int) -> list[Incident]:
        """The incidents a message announced (its thread's subject), in order."""
        t = schema.incidents
        with self.store.connect("reading incidents") as conn:
            rows = conn.execute(select(t).where(t.c.root_pk == root_pk).order_by(t.c.pk))
            return [_incident(r) for r in rows]

    # -- outbox -------------------------------------------------------------------------

    def due(self, now: datetime, limit: int = 100) -> list[OutboxItem]:
        """Pending items whose next attempt is due, oldest first."""
        t = schema.alert_outbox
        with self.store.connect("reading the alert outbox") as conn:
            rows = conn.execute(
                select(t)
                .where(t.c.status == PENDING, t.c.next_attempt_at <= now)
                .order_by(t.c.pk)
                .limit(limit)
            )
            return [_item(r) for r in rows]

    def item(self, pk: int) -> OutboxItem | None:
        t = schema.alert_outbox
        with self.store.connect("reading the alert outbox") as conn:
            row = conn.execute(select(t).where(t.c.pk == pk)).first()
            return None if row is None else _item(row)

    def outbox(self, *, status: str | None = None, limit: int = 100) -> list[OutboxItem]:
        t = schema.alert_outbox
        query = select(t)
        if status is not None:
            query = query.where(t.c.status == status)
        with self.store.connect("reading the alert outbox") as conn:
            rows = conn.execute(query.order_by(t.c.pk.desc()).limit(limit))
            return [_item(r) for r in rows]

    def outbox_counts(self) -> dict[str, int]:
        t = schema.alert_outbox
        with self.store.connect("reading the alert outbox") as conn:
            rows = conn.execute(select(t.c.status, func.count()).group_by(t.c.status))
            return {status: n for status, n in rows}

    def oldest_pending(self) -> datetime | None:
        t = schema.alert_outbox
        with self.store.connect("reading the alert outbox") as conn:
            value: datetime | None = conn.execute(
                select(func.min(t.c.created_at)).where(t.c.status == PENDING)
            ).scalar()
            return value

    def enqueue(self, model: str, kind: str, payload: dict[str, Any], *, now: datetime) -> int:
        with self.unit("queueing an alert") as unit:
            return unit.enqueue(model, kind, payload, now=now)

    def begin_attempt(self, pk: int, *, retry_at: datetime) -> None:
        """Count an attempt before it is made: if the process dies during it, the next
        attempt knows the message may already have arrived."""
        t = schema.alert_outbox
        self._set(
            pk, "recording a delivery attempt", next_attempt_at=retry_at, attempts=t.c.attempts + 1
        )

    def mark_sent(
        self,
        pk: int,
        *,
        now: datetime,
        channel: str | None,
        ref: str | None,
        note: str | None = None,
    ) -> None:
        """Record a delivery; ``note`` is a warning about it (kept as its last error)."""
        self._set(
            pk,
            "recording a delivered alert",
            status=SENT,
            sent_at=now,
            channel=channel,
            delivery_ref=ref,
            last_error=note,
        )

    def mark_retry(self, pk: int, *, error: str, retry_at: datetime) -> None:
        self._set(pk, "recording a failed delivery", last_error=error, next_attempt_at=retry_at)

    def mark_failed(self, pk: int, *, error: str) -> None:
        self._set(pk, "recording an undeliverable alert", status=FAILED, last_error=error)

    def retry_failed(self, *, now: datetime) -> int:
        """Queue undeliverable items again (after the configuration was fixed)."""
        t = schema.alert_outbox
        with self.store.transaction("re-queueing undeliverable alerts") as conn:
            result = conn.execute(
                update(t)
                .where(t.c.status == FAILED)
                .values(status=PENDING, next_attempt_at=now, last_error=None)
            )
            return int(result.rowcount)

    def _set(self, pk: int, what: str, **values: Any) -> None:
        t = schema.alert_outbox
        with self.store.transaction(what) as conn:
            conn.execute(update(t).where(t.c.pk == pk).values(**values))

    # -- silences -----------------------------------------------------------------------

    def add_silence(
        self,
        *,
        model: str,
        rule: str,
        scope: str,
        starts_at: datetime,
        ends_at: datetime,
        comment: str,
        created_by: str | None,
    ) -> int:
        with self.store.transaction("adding a silence") as conn:
            result = conn.execute(
                schema.silences.insert().values(
                    model=model,
                    rule=rule,
                    scope=scope,
                    starts_at=starts_at,
                    ends_at=ends_at,
                    comment=comment,
                    created_by=created_by,
                    created_at=starts_at,
                )
            )
            key = result.inserted_primary_key
            assert key is not None
            return int(key[0])

    def silences(self, *, active_at: datetime | None = None) -> list[Silence]:
        t = schema.silences
        query = select(t)
        if active_at is not None:
            query = query.where(t.c.starts_at <= active_at, t.c.ends_at > active_at)
        with self.store.connect("reading silences") as conn:
            return [Silence(**r._mapping) for r in conn.execute(query.order_by(t.c.pk))]

    def expire_silence(self, pk: int, *, now: datetime) -> bool:
        """End a silence now (kept for the record); False when there is no such silence."""
        t = schema.silences
        with self.store.transaction("removing a silence") as conn:
            result = conn.execute(
                update(t).where(t.c.pk == pk, t.c.ends_at > now).values(ends_at=now)
            )
            return bool(result.rowcount)
