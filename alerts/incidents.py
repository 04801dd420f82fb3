"""From evaluations to incident changes and notifications (pure: no I/O, no clock).

One open incident per (model, rule, scope). :func:`plan` folds a cycle's evaluations
into the model's open incidents and decides what to announce, following
Alertmanager's habits:

- a signal with no open incident opens one; it is announced unless silenced,
  inhibited or below the minimum severity (then it is recorded, not sent);
- while it keeps firing nothing is sent, until ``repeat_interval`` has passed since the
  last notice or its severity rose above the one last announced;
- it resolves after ``resolve_after`` clear looks in a row (windows for window rules,
  runs for job rules); a resolve notice is sent only for an incident that was announced;
- everything new in one cycle goes out as *one* message per model; repeats, escalations
  and resolves go to the thread of the message that announced the incident;
- an event rule's signal (a training started, a challenger registered) is announced and
  closed at once: each event is told once, none waits to resolve.

Windows older than the newest window already evaluated are not looked at again: late
data can refine an old window's statistics, but it does not page anyone about the past.
"""

from __future__ import annotations

import fnmatch
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta
from typing import Any, Literal

from alerts.signals import EVENT_RULES, ORDER, RANK, WINDOW_RULES, Evaluation, Signal
from storage.alert_rows import OPEN, RESOLVED, Incident, Silence

Change = Literal["new", "repeat", "escalated", "resolved"]


@dataclass(frozen=True)
class Policy:
    repeat_interval: timedelta = timedelta(hours=4)
    resolve_after: int = 2  # clear looks in a row before an incident resolves
    min_severity: str = "warning"  # weaker signals are recorded, not sent


@dataclass
class Working:
    """An incident while a cycle is folded into it (``pk`` None: not stored yet)."""

    incident: Incident
    pk: int | None
    touched: bool = False
    fired: bool = False


@dataclass(frozen=True)
class Item:
    """One incident's line in a message."""

    key: tuple[str, str, str]
    change: Change
    severity: str
    summary: str
    opened_at: datetime
    value: float | None = None
    threshold: float | None = None
    window: datetime | None = None
    details: Mapping[str, Any] = field(default_factory=dict)


@dataclass
class Plan:
    incidents: list[Working] = field(default_factory=list)  # touched ones, to write
    announce: list[Item] = field(default_factory=list)  # the cycle's new message
    threads: dict[int, list[Item]] = field(default_factory=dict)  # root pk -> updates
    context: dict[str, Any] = field(default_factory=dict)
    high_water: datetime | None = None
    stale_windows: int = 0  # evaluations skipped: windows older than the high water


def silence_for(silences: Iterable[Silence], model: str, rule: str, scope: str) -> Silence | None:
    for s in silences:
        if (
            fnmatch.fnmatchcase(model, s.model)
            and fnmatch.fnmatchcase(rule, s.rule)
            and fnmatch.fnmatchcase(scope, s.scope)
        ):
            return s
    return None


def _new(model: str, signal: Signal, now: datetime) -> Incident:
    return Incident(
        pk=0,
        model=model,
        rule=signal.rule,
        scope=signal.scope,
        state=OPEN,
        severity=signal.severity,
        summary=signal.summary,
        opened_at=now,
        last_seen_at=now,
        last_window=None,
        clear_streak=0,
        last_notified_at=None,
        notified_severity=None,
        suppressed=None,
        root_pk=None,
        resolved_at=None,
        details={},
    )


def plan(
    model: str,
    evaluations: Sequence[Evaluation],
    open_incidents: Iterable[Incident],
    silences: Sequence[Silence],
    *,
    now: datetime,
    high_water: datetime | None,
    policy: Policy = Policy(),
) -> Plan:
    """What a cycle's evaluations of ``model`` change, and what to send about it."""
    out = Plan(high_water=high_water)
    working = {i.key: Working(i, i.pk) for i in open_incidents}
    resolved: list[Working] = []
    ordered = sorted(
        (e for e in evaluations if e.model == model),
        key=lambda e: (e.window is None, e.window or now),
    )
    for e in ordered:
        # the statistics' windows are looked at once, in order; performance windows
        # complete later (when labels mature) and are not held to that order
        if e.window is not None and e.covers & WINDOW_RULES:
            if out.high_water is not None and e.window < out.high_water:
                out.stale_windows += 1
                continue
            out.high_water = e.window
        if e.window is not None:
            out.context.update({k: v for k, v in e.context.items() if v is not None})
            out.context["window"] = e.window
        firing = {}
        for s in e.signals:
            key = (model, s.rule, s.scope)
            firing[key] = s
            w = working.get(key)
            if w is None:
                w = working[key] = Working(_new(model, s, now), None)
            silence = silence_for(silences, model, s.rule, s.scope)
            suppressed = (
                f"silenced by silence {silence.pk}"
                if silence is not None
                else f"inhibited by {s.inhibited_by}"
                if s.inhibited_by
                else "below the minimum severity"
                if RANK[s.severity] < RANK[policy.min_severity]
                else None
            )
            details = {
                **w.incident.details,
                **s.details,
                "value": s.value,
                "threshold": s.threshold,
            }
            if e.context.get("report"):
                details["report"] = e.context["report"]
            w.incident = replace(
                w.incident,
                severity=s.severity,
                summary=s.summary,
                last_seen_at=now,
                last_window=e.window or w.incident.last_window,
                clear_streak=0,
                suppressed=suppressed,
                details=details,
            )
            w.touched = w.fired = True
        for key, w in list(working.items()):
            i = w.incident
            if key in firing or i.rule not in e.covers:
                continue
            if e.scopes is not None and i.scope not in e.scopes:
                continue
            if e.window is not None:
                if i.last_window is not None and e.window <= i.last_window:
                    continue  # the same window again (still filling): one look per window
                i = replace(i, last_window=e.window)
            i = replace(i, clear_streak=i.clear_streak + 1)
            w.touched = True
            if i.clear_streak >= policy.resolve_after:
                i = replace(i, state=RESOLVED, resolved_at=now)
                resolved.append(w)
                del working[key]
            w.incident = i

    for w in [*working.values(), *resolved]:
        if not w.touched:
            continue
        out.incidents.append(w)
        change = _change(w, silences, now, policy)
        if change is None:
            continue
        i = w.incident
        item = Item(
            i.key,
            change,
            i.severity,
            i.summary,
            i.opened_at,
            i.details.get("value"),
            i.details.get("threshold"),
            i.last_window,
            i.details,
        )
        if change == "new":
            out.announce.append(item)
        else:
            assert i.root_pk is not None
            out.threads.setdefault(i.root_pk, []).append(item)
        if change != "resolved":
            w.incident = replace(i, last_notified_at=now, notified_severity=i.severity)
    for w in working.values():  # an event is told once, then closed without a notice
        if w.fired and w.incident.rule in EVENT_RULES:
            w.incident = replace(w.incident, state=RESOLVED, resolved_at=now)
    out.announce.sort(key=_importance)
    for items in out.threads.values():
        items.sort(key=_importance)
    return out


def _importance(item: Item) -> tuple[int, int, float, str]:
    """Severity first, then causes before symptoms, then how far past the threshold."""
    rule = item.key[1]
    position = ORDER.index(rule) if rule in ORDER else len(ORDER)
    excess = 0.0
    if item.value is not None and item.threshold:
        excess = abs(item.value / item.threshold)
    return (-RANK[item.severity], position, -excess, item.key[2])


def _change(
    w: Working, silences: Sequence[Silence], now: datetime, policy: Policy
) -> Change | None:
    i = w.incident
    announced = i.notified_severity is not None and i.root_pk is not None
    if i.state == RESOLVED:
        silenced = silence_for(silences, i.model, i.rule, i.scope) is not None
        return "resolved" if announced and not silenced else None
    if i.suppressed is not None or not w.fired:
        return None
    if not announced:
        return "new"
    assert i.notified_severity is not None
    if RANK[i.severity] > RANK[i.notified_severity]:
        return "escalated"
    if i.last_notified_at is not None and now - i.last_notified_at >= policy.repeat_interval:
        return "repeat"
    return None
