"""The alert manager: a cycle's evaluations in, incidents and queued messages out.

Incident changes and the outbox rows announcing them are written in one transaction;
delivery (:mod:`alerts.dispatch`) happens afterwards and may fail without losing
anything.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from alerts.abc import AlertStore, AlertUnit
from alerts.incidents import Item, Plan, Policy, plan
from alerts.signals import EVENT_RULES, Evaluation
from storage.alert_rows import OPEN, RESOLVED

logger = logging.getLogger(__name__)


def utcnow() -> datetime:
    return datetime.now(UTC)


@dataclass
class CycleReport:
    opened: list[str] = field(default_factory=list)
    resolved: list[str] = field(default_factory=list)
    suppressed: list[str] = field(default_factory=list)
    queued: list[int] = field(default_factory=list)  # outbox pks
    stale_windows: int = 0

    def to_dict(self) -> dict[str, Any]:
        return {
            "opened": self.opened,
            "resolved": self.resolved,
            "suppressed": self.suppressed,
            "queued": self.queued,
            "stale_windows": self.stale_windows,
        }


def item_payload(item: Item, pk: int) -> dict[str, Any]:
    model, rule, scope = item.key
    return {
        "incident": pk,
        "rule": rule,
        "scope": scope,
        "change": item.change,
        "severity": item.severity,
        "summary": item.summary,
        "since": item.opened_at.isoformat(),
        "value": item.value,
        "threshold": item.threshold,
        "window": item.window.isoformat() if item.window else None,
        "details": dict(item.details),
    }


class AlertManager:
    def __init__(
        self,
        *,
        repository: AlertStore,
        policy: Policy | None = None,
        clock: Callable[[], datetime] = utcnow,
        ui_url: str | None = None,
    ) -> None:
        self.repository = repository
        self.policy = policy or Policy()
        self.clock = clock
        self.ui_url = ui_url
        self._lock = threading.Lock()  # jobs of one daemon may evaluate at the same time

    def evaluate(self, model: str, evaluations: Sequence[Evaluation]) -> CycleReport:
        """Fold one cycle's evaluations of ``model`` into incidents; queue the messages."""
        if not evaluations:
            return CycleReport()
        now = self.clock()
        silences = self.repository.silences(active_at=now)
        with self._lock, self.repository.unit() as unit:
            stored = unit.high_water(model)
            high_water = None if stored is None else datetime.fromtimestamp(stored, UTC)
            p = plan(
                model,
                evaluations,
                unit.open_incidents(model),
                silences,
                now=now,
                high_water=high_water,
                policy=self.policy,
            )
            report = self._write(unit, model, p, now)
            if p.high_water is not None and p.high_water != high_water:
                unit.set_high_water(model, int(p.high_water.timestamp()), now)
        for line in report.opened:
            logger.info("alert opened: %s", line)
        for line in report.resolved:
            logger.info("alert resolved: %s", line)
        return report

    def _write(self, unit: AlertUnit, model: str, p: Plan, now: datetime) -> CycleReport:
        report = CycleReport(stale_windows=p.stale_windows)
        pks: dict[tuple[str, str, str], int] = {}
        for w in p.incidents:
            i = w.incident
            values = {
                k: getattr(i, k)
                for k in (
                    "state",
                    "severity",
                    "summary",
                    "last_seen_at",
                    "last_window",
                    "clear_streak",
                    "last_notified_at",
                    "notified_severity",
                    "suppressed",
                    "resolved_at",
                    "details",
                )
            }
            if w.pk is None:
                w.pk = unit.insert_incident(
                    model=i.model, rule=i.rule, scope=i.scope, opened_at=i.opened_at, **values
                )
                report.opened.append(f"{i.rule}/{i.scope}: {i.summary}")
            else:
                unit.update_incident(w.pk, **values)
            pks[i.key] = w.pk
            if i.state == RESOLVED and i.rule not in EVENT_RULES:
                report.resolved.append(f"{i.rule}/{i.scope}")
            elif i.state == OPEN and i.suppressed:
                report.suppressed.append(f"{i.rule}/{i.scope}: {i.suppressed}")
        context = {k: v.isoformat() if isinstance(v, datetime) else v for k, v in p.context.items()}
        context["ui_url"] = self.ui_url
        if p.announce:
            payload = {
                "model": model,
                "context": context,
                "items": [item_payload(item, pks[item.key]) for item in p.announce],
            }
            root = unit.enqueue(model, "notify", payload, now=now)
            for item in p.announce:
                unit.update_incident(pks[item.key], root_pk=root)
            report.queued.append(root)
        for root_pk, items in sorted(p.threads.items()):
            payload = {
                "model": model,
                "context": context,
                "items": [item_payload(item, pks[item.key]) for item in items],
            }
            report.queued.append(unit.enqueue(model, "update", payload, now=now, root_pk=root_pk))
        return report
