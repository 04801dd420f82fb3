"""The interfaces :mod:`alerts` needs from storage, in one place.

The manager records incidents and queues their messages through an :class:`AlertStore`
(one :class:`AlertUnit` per evaluation: incident changes and the messages announcing
them commit together); the dispatcher and the health checks walk the outbox through it.
:class:`storage.alerts.AlertRepository` implements it, and tests may pass their own. The
rows exchanged are :mod:`storage.alert_rows` dataclasses, which load no SQLAlchemy; the
results :mod:`alerts.signals` reads are :mod:`monitor.results` dataclasses.
"""

from __future__ import annotations

from contextlib import AbstractContextManager
from datetime import datetime
from typing import Any, Protocol

from storage.alert_rows import Incident, OutboxItem, Silence


class AlertUnit(Protocol):
    """The writes of one alert evaluation, inside one transaction."""

    def open_incidents(self, model: str) -> list[Incident]: ...

    def insert_incident(self, **values: Any) -> int: ...

    def update_incident(self, pk: int, **values: Any) -> None: ...

    def enqueue(
        self,
        model: str,
        kind: str,
        payload: dict[str, Any],
        *,
        now: datetime,
        root_pk: int | None = None,
    ) -> int: ...

    def high_water(self, model: str) -> int | None: ...

    def set_high_water(self, model: str, position: int, now: datetime) -> None: ...


class AlertStore(Protocol):
    """Incidents, silences and the delivery outbox."""

    def unit(self, what: str = ...) -> AbstractContextManager[AlertUnit]: ...

    def silences(self, *, active_at: datetime | None = None) -> list[Silence]: ...

    def incidents_announced_by(self, root_pk: int) -> list[Incident]: ...

    def due(self, now: datetime, limit: int = ...) -> list[OutboxItem]: ...

    def item(self, pk: int) -> OutboxItem | None: ...

    def outbox(self, *, status: str | None = None, limit: int = ...) -> list[OutboxItem]: ...

    def oldest_pending(self) -> datetime | None: ...

    def enqueue(self, model: str, kind: str, payload: dict[str, Any], *, now: datetime) -> int: ...

    def begin_attempt(self, pk: int, *, retry_at: datetime) -> None: ...

    def mark_sent(
        self,
        pk: int,
        *,
        now: datetime,
        channel: str | None,
        ref: str | None,
        note: str | None = None,
    ) -> None: ...

    def mark_retry(self, pk: int, *, error: str, retry_at: datetime) -> None: ...

    def mark_failed(self, pk: int, *, error: str) -> None: ...
