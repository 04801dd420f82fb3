"""When to train the next model: a pure decision over the stored signals.

:func:`decide` reads a :class:`Policy` (from the ``retrain`` config section) and the
:class:`~storage.models.Signals` the store gathered, at a given time, and returns a
:class:`Decision`. No I/O and no clock: the caller passes ``now``.

Triggers, each fired on its own condition:

- ``drift``: dataset drift in each of the last ``drift_windows`` finalized windows;
- ``realized``: the latest complete window's realized metric worse than its threshold;
- ``estimated``: the latest label-free estimate worse than its threshold, and with
  ``confirm_estimates`` also the realized value on the labels arrived so far;
- ``detection``: a concept-drift detection since the last training;
- ``schedule``: a cron time passed since the last training (or since monitoring began);
- ``manual``: by hand, with a reason.

"Worse" is "below" for metrics where higher is better and "above" for error metrics
(log_loss, fnr, fpr, cost, mae, rmse, mape). A fired trigger trains only in ``auto``
mode, outside the cooldown and with enough new matured labels; ``suggest`` (the default)
only reports what would have trained. A manual trigger skips the mode, the cooldown and
the label minimum. The single-flight lock is :mod:`retrain.lock`'s.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Literal

from storage.models import Signals, WindowSignal

LOWER_IS_BETTER = frozenset({"log_loss", "fnr", "fpr", "cost", "mae", "rmse", "mape"})

Action = Literal["none", "suggest", "train", "blocked"]


@dataclass(frozen=True)
class Policy:
    mode: Literal["suggest", "auto"] = "suggest"
    drift_windows: int | None = 3
    realized_below: Mapping[str, float] = field(default_factory=dict)
    estimated_below: Mapping[str, float] = field(default_factory=dict)
    confirm_estimates: bool = False
    detections: bool = False
    schedule: str | None = None  # crontab expression, UTC
    cooldown: timedelta = timedelta(days=1)
    min_new_labels: int = 0


@dataclass(frozen=True)
class Fired:
    trigger: str  # drift, realized, estimated, detection, schedule, manual
    detail: str


@dataclass(frozen=True)
class Decision:
    action: Action
    fired: tuple[Fired, ...] = ()
    blocked: str | None = None  # why a fired trigger does not train now

    @property
    def train(self) -> bool:
        return self.action == "train"

    @property
    def trigger(self) -> str:
        """The first fired trigger's name (what a training records), or ``none``."""
        return self.fired[0].trigger if self.fired else "none"

    @property
    def reason(self) -> str:
        return "; ".join(f.detail for f in self.fired)


def worse(metric: str, value: float, threshold: float) -> bool:
    """Whether ``value`` of ``metric`` is on the bad side of ``threshold``."""
    return value > threshold if metric in LOWER_IS_BETTER else value < threshold


def _relation(metric: str) -> str:
    return ">" if metric in LOWER_IS_BETTER else "<"


def drift_held(windows: tuple[WindowSignal, ...], k: int) -> Fired | None:
    finalized = [w for w in windows if w.drifted is not None]
    if len(finalized) < k or not all(w.drifted for w in finalized[-k:]):
        return None
    return Fired(
        "drift",
        f"dataset drift in each of the last {k} windows (since {finalized[-k].start:%Y-%m-%d %H:%M})",
    )


def realized_below(
    windows: tuple[WindowSignal, ...], thresholds: Mapping[str, float]
) -> list[Fired]:
    out = []
    for metric, threshold in thresholds.items():
        latest = [w for w in windows if w.state == "complete" and metric in w.realized]
        if latest and worse(metric, value := latest[-1].realized[metric], threshold):
            out.append(
                Fired(
                    "realized",
                    f"realized {metric} {value:.4g} {_relation(metric)} {threshold:g}"
                    f" (window {latest[-1].start:%Y-%m-%d %H:%M})",
                )
            )
    return out


def estimated_below(
    windows: tuple[WindowSignal, ...], thresholds: Mapping[str, float], *, confirm: bool
) -> list[Fired]:
    out = []
    for metric, threshold in thresholds.items():
        estimates = [w for w in windows if metric in w.estimated]
        if not estimates or not worse(metric, value := estimates[-1].estimated[metric], threshold):
            continue
        detail = f"estimated {metric} {value:.4g} {_relation(metric)} {threshold:g}"
        if confirm:
            labelled = [w for w in windows if metric in w.realized]
            if not labelled or not worse(metric, real := labelled[-1].realized[metric], threshold):
                continue
            detail += f", confirmed by labels ({real:.4g})"
        out.append(Fired("estimated", detail))
    return out


def schedule_due(cron: str, *, since: datetime, now: datetime) -> Fired | None:
    """A cron time in (``since``, ``now``]."""
    from monitor.crontab import cron_trigger

    trigger = cron_trigger(cron, "UTC")
    due = trigger.get_next_fire_time(None, since + timedelta(seconds=1))
    if due is None or due > now:
        return None
    return Fired("schedule", f"scheduled ({cron}) at {due:%Y-%m-%d %H:%M} UTC")


def fired(policy: Policy, signals: Signals, *, now: datetime) -> list[Fired]:
    """Every automatic trigger whose condition holds."""
    out: list[Fired] = []
    if policy.drift_windows and (hit := drift_held(signals.windows, policy.drift_windows)):
        out.append(hit)
    out += realized_below(signals.windows, policy.realized_below)
    out += estimated_below(
        signals.windows, policy.estimated_below, confirm=policy.confirm_estimates
    )
    if policy.detections and signals.detections:
        n = len(signals.detections)
        out.append(
            Fired(
                "detection",
                f"{n} concept-drift detection(s), latest {signals.detections[-1]:%Y-%m-%d %H:%M}",
            )
        )
    if policy.schedule:
        last = signals.last_training
        since = last.started_at if last else (signals.windows[0].start if signals.windows else None)
        if since is not None and (hit := schedule_due(policy.schedule, since=since, now=now)):
            out.append(hit)
    return out


def decide(
    policy: Policy, signals: Signals, *, now: datetime, manual_reason: str | None = None
) -> Decision:
    """Whether to train now, which triggers fired, and what blocks them."""
    if manual_reason is not None:
        return Decision("train", (Fired("manual", manual_reason),))
    hits = tuple(fired(policy, signals, now=now))
    if not hits:
        return Decision("none")
    last = signals.last_training
    if last is not None and last.started_at + policy.cooldown > now:
        until = last.started_at + policy.cooldown
        return Decision("blocked", hits, f"cooldown until {until:%Y-%m-%d %H:%M} UTC")
    if signals.new_labels < policy.min_new_labels:
        return Decision(
            "blocked",
            hits,
            f"{signals.new_labels} new matured labelled rows, fewer than {policy.min_new_labels}",
        )
    return Decision("suggest" if policy.mode == "suggest" else "train", hits)
