"""Delivery: the outbox, walked in order, each message sent exactly once.

For every due item: count the attempt (committed), pace the channel (at most one
message per ``min_interval`` seconds), send, mark it sent with Slack's ``ts``. A thread
update waits for the message it replies to; when that one could not be delivered at
all, the update is posted on its own. A transient failure leaves the item pending with
exponential backoff and stops this pass (the service is probably down; the next pass
resumes in order); a permanent failure marks it failed, with the error kept for
``driftd check`` and ``driftd alerts list``.

A message in doubt is first looked for in the channel. When that check cannot be made,
the message alone waits (others go on): a missing scope or an unexpected error decides
at once, a server error after ``check_attempts`` attempts, and the decision is to post
it at least once, with the warning kept on the sent item (``driftd alerts list``).
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from alerts.abc import AlertStore
from alerts.errors import AlertDeliveryError, PermanentDeliveryError
from alerts.manager import utcnow
from alerts.sinks import HistoryCheckError, Ref, Sink
from storage.alert_rows import FAILED, PENDING, SENT, OutboxItem

logger = logging.getLogger(__name__)


@dataclass
class DeliveryReport:
    sent: list[int] = field(default_factory=list)
    waiting: list[int] = field(default_factory=list)  # retry later
    failed: list[int] = field(default_factory=list)  # permanently
    errors: list[str] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return {
            "sent": self.sent,
            "waiting": self.waiting,
            "failed": self.failed,
            "errors": self.errors,
        }


def backoff(attempts: int, *, base: float = 10.0, cap: float = 3600.0) -> timedelta:
    """Wait before attempt ``attempts + 1``: 10 s, 20 s, 40 s ... at most an hour."""
    return timedelta(seconds=min(cap, base * 2 ** max(0, attempts - 1)))


class Dispatcher:
    def __init__(
        self,
        *,
        repository: AlertStore,
        sink: Sink,
        clock: Callable[[], datetime] = utcnow,
        sleep: Callable[[float], None] = time.sleep,
        monotonic: Callable[[], float] = time.monotonic,
        min_interval: float = 1.0,
        check_attempts: int = 3,
    ) -> None:
        self.repository = repository
        self.sink = sink
        self.clock = clock
        self.sleep = sleep
        self.monotonic = monotonic
        self.min_interval = min_interval
        self.check_attempts = check_attempts
        self._last_sent: float | None = None
        # the alerts job and the jobs that evaluate deliver from threads of one daemon:
        # one pass at a time, or two could send the same item
        self._lock = threading.Lock()

    def deliver(self, *, limit: int = 100) -> DeliveryReport:
        """Send what is due, oldest first."""
        with self._lock:
            return self._deliver(limit)

    def _deliver(self, limit: int) -> DeliveryReport:
        report = DeliveryReport()
        for item in self.repository.due(self.clock(), limit):
            thread: Ref | None = None
            root: OutboxItem | None = None
            if item.root_pk is not None:
                root = self.repository.item(item.root_pk)
                if root is not None and root.status == PENDING:
                    report.waiting.append(item.pk)  # its thread does not exist yet
                    continue
                if root is not None and root.status == SENT and self.sink.can_update:
                    thread = Ref(root.channel, root.delivery_ref)
            try:
                self._send(item, thread, root)
            except HistoryCheckError as exc:
                # this message only: the others do not depend on its history check
                retry_at = self.clock() + backoff(item.attempts + 1)
                self.repository.mark_retry(item.pk, error=str(exc), retry_at=retry_at)
                logger.warning("alert %d waits: %s; retrying at %s", item.pk, exc, retry_at)
                report.waiting.append(item.pk)
                report.errors.append(str(exc))
            except PermanentDeliveryError as exc:
                self.repository.mark_failed(item.pk, error=str(exc))
                logger.error("alert %d cannot be delivered: %s", item.pk, exc)
                report.failed.append(item.pk)
                report.errors.append(str(exc))
            except AlertDeliveryError as exc:
                retry_at = self.clock() + backoff(item.attempts + 1)
                self.repository.mark_retry(item.pk, error=str(exc), retry_at=retry_at)
                logger.warning(
                    "alert %d not delivered (%s); retrying at %s", item.pk, exc, retry_at
                )
                report.waiting.append(item.pk)
                report.errors.append(str(exc))
                break
            else:
                report.sent.append(item.pk)
        return report

    def _send(self, item: OutboxItem, thread: Ref | None, root: OutboxItem | None) -> None:
        now = self.clock()
        self.repository.begin_attempt(item.pk, retry_at=now + backoff(item.attempts + 1))
        if thread is not None and root is not None:
            # the original message shows every incident's current state
            self._pace()
            self.sink.update(thread, self._current(root))
        self._pace()
        note = None
        try:
            ref = self.sink.post(
                item.payload, key=item.pk, thread=thread, in_doubt=item.attempts > 0
            )
        except HistoryCheckError as exc:
            if exc.transient and item.attempts + 1 < self.check_attempts:
                raise
            note = f"posted without the duplicate check ({exc}): it may show twice"
            logger.warning("alert %d %s", item.pk, note)
            ref = self.sink.post(item.payload, key=item.pk, thread=thread, in_doubt=False)
        self._last_sent = self.monotonic()
        self.repository.mark_sent(
            item.pk, now=self.clock(), channel=ref.channel, ref=ref.ts, note=note
        )

    def _current(self, root: OutboxItem) -> dict[str, Any]:
        """The root message re-rendered with its incidents' present states."""
        states = {i.pk: i for i in self.repository.incidents_announced_by(root.pk)}
        items = []
        for item in root.payload.get("items", []):
            incident = states.get(item["incident"])
            if incident is not None:
                item = {
                    **item,
                    "state": incident.state,
                    "severity": incident.severity,
                    "summary": incident.summary,
                }
            items.append(item)
        return {**root.payload, "items": items}

    def _pace(self) -> None:
        if self._last_sent is not None:
            wait = self._last_sent + self.min_interval - self.monotonic()
            if wait > 0:
                self.sleep(wait)
        self._last_sent = self.monotonic()


def undeliverable(repository: AlertStore) -> list[str]:
    """Why alerts are stuck, for ``driftd check``: permanent failures."""
    return [
        f"alert {item.pk} ({item.kind}, {item.created_at:%Y-%m-%d %H:%M}) undeliverable: "
        f"{item.last_error}"
        for item in repository.outbox(status=FAILED, limit=5)
    ]
