"""The alert rows (incidents, outbox items, silences) and their states, free of
SQLAlchemy, so that :mod:`alerts` reads and writes them through its protocol
(:mod:`alerts.abc`) without loading the database layer; :mod:`storage.alerts` stores
them."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

OPEN, RESOLVED = "open", "resolved"
PENDING, SENT, FAILED = "pending", "sent", "failed"


@dataclass(frozen=True)
class Incident:
    pk: int
    model: str
    rule: str
    scope: str
    state: str
    severity: str
    summary: str
    opened_at: datetime
    last_seen_at: datetime
    last_window: datetime | None
    clear_streak: int
    last_notified_at: datetime | None
    notified_severity: str | None
    suppressed: str | None
    root_pk: int | None
    resolved_at: datetime | None
    details: dict[str, Any]

    @property
    def key(self) -> tuple[str, str, str]:
        return (self.model, self.rule, self.scope)


@dataclass(frozen=True)
class OutboxItem:
    pk: int
    model: str
    kind: str
    root_pk: int | None
    payload: dict[str, Any]
    status: str
    attempts: int
    next_attempt_at: datetime
    created_at: datetime
    sent_at: datetime | None
    channel: str | None
    delivery_ref: str | None
    last_error: str | None


@dataclass(frozen=True)
class Silence:
    pk: int
    model: str
    rule: str
    scope: str
    starts_at: datetime
    ends_at: datetime
    comment: str
    created_by: str | None
    created_at: datetime
