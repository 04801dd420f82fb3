"""What keeps alerts from arriving, for ``driftd check`` and ``driftd alerts test``.

:func:`problems` is the alerting part of the health check: the sink's own verdict
(the Slack token works and has the scopes driftd uses), messages that cannot be
delivered, messages that wait behind an undelivered first message of their thread
(reported at once, not after ``max_delay``), and the oldest message waiting longer than
``max_delay``. :func:`send_test` posts a test message now and fails when the message
did not arrive or the sink is not fit for exactly-once delivery.
"""

from __future__ import annotations

import logging
from datetime import datetime, timedelta
from typing import Any

from alerts.abc import AlertStore
from alerts.dispatch import undeliverable
from alerts.errors import AlertDeliveryError
from alerts.sinks import Sink
from monitor.windows import format_duration
from storage.alert_rows import PENDING, SENT, OutboxItem

logger = logging.getLogger(__name__)


def problems(
    repository: AlertStore, sink: Sink, now: datetime, *, max_delay: timedelta
) -> list[str]:
    """Why alerts do not (or may not) arrive; empty when alerting is healthy."""
    return [*sink.verify(), *delivery_problems(repository, sink, now, max_delay=max_delay)]


def delivery_problems(
    repository: AlertStore, sink: Sink, now: datetime, *, max_delay: timedelta
) -> list[str]:
    """The outbox's part of :func:`problems` (no call to the sink)."""
    found = undeliverable(repository) + stuck(repository)
    oldest = repository.oldest_pending()
    if oldest is not None and now - oldest > max_delay:
        found.append(
            f"an alert has waited {format_duration(now - oldest)} for delivery to "
            f"{sink.describe()} (limit {format_duration(max_delay)})"
        )
    return found


def stuck(repository: AlertStore, *, limit: int = 5) -> list[str]:
    """Messages waiting for the first message of their thread, which has failed to go
    out at least once: they cannot be sent before it."""
    roots: dict[int, OutboxItem | None] = {}
    found = []
    for item in sorted(repository.outbox(status=PENDING, limit=500), key=lambda i: i.pk):
        if item.root_pk is None:
            continue
        if item.root_pk not in roots:
            roots[item.root_pk] = repository.item(item.root_pk)
        root = roots[item.root_pk]
        if root is None or root.status != PENDING or not (root.attempts or root.last_error):
            continue
        found.append(
            f"alert {item.pk} ({item.kind}) waits behind alert {root.pk}, the first message "
            f"of its thread, not delivered after {root.attempts} attempt(s): "
            f"{root.last_error or 'no answer yet'} (next attempt {root.next_attempt_at:%H:%M})"
        )
        if len(found) == limit:
            break
    return found


def send_test(
    repository: AlertStore, dispatcher: Any, sink: Sink, *, model: str, now: datetime
) -> str:
    """Queue a test message, deliver it now and check the sink; where it went, or an
    :class:`AlertDeliveryError` naming what is wrong (a test is for now: a message that
    did not arrive is marked failed, not retried later by the alerts job)."""
    found = sink.verify()
    payload = {"model": model, "test": True, "items": [], "context": {}}
    pk = repository.enqueue(model, "test", payload, now=now)
    dispatcher.deliver()
    item = repository.item(pk)
    if item is None or item.status != SENT:
        error = (item.last_error if item else None) or "not delivered"
        repository.mark_failed(pk, error=f"test message: {error}")
        found.insert(0, f"test message to {sink.describe()} not delivered: {error}")
        raise AlertDeliveryError("; ".join(found))
    where = f"test message delivered to {sink.describe()}" + (
        f" (ts {item.delivery_ref})" if item.delivery_ref else ""
    )
    if found:
        raise AlertDeliveryError(f"{where}, but: " + "; ".join(found))
    return where
