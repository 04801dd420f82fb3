"""Weeks as the business counts them: ISO week labels, days in the configured time zone,
and when the weekly report is due."""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo

from driftd.errors import ConfigError
from monitor.crontab import cron_trigger

_LABEL = re.compile(r"^(\d{4})-W(\d{2})$")


@dataclass(frozen=True)
class Week:
    """A week of local days: ``label`` is the ISO week (``2026-W45``); with weeks starting
    on Sunday, the week labelled W45 starts the Sunday before ISO W45's Monday."""

    label: str
    first_day: date
    timezone: str

    @property
    def days(self) -> list[date]:
        return [self.first_day + timedelta(days=i) for i in range(7)]

    def day_bounds(self, day: date) -> tuple[datetime, datetime]:
        """A local day as a UTC interval (23 or 25 hours on DST days)."""
        zone = ZoneInfo(self.timezone)
        start = datetime.combine(day, time(0), tzinfo=zone)
        end = datetime.combine(day + timedelta(days=1), time(0), tzinfo=zone)
        return start.astimezone(UTC), end.astimezone(UTC)

    @property
    def start(self) -> datetime:
        return self.day_bounds(self.first_day)[0]

    @property
    def end(self) -> datetime:
        return self.day_bounds(self.days[-1])[1]

    def previous(self) -> Week:
        return week_of(self.first_day - timedelta(days=7), self.timezone, self._start_name)

    @property
    def _start_name(self) -> str:
        return "sunday" if self.first_day.isoweekday() == 7 else "monday"

    def title(self) -> str:
        last = self.days[-1]
        return f"{self.label} ({self.first_day:%a %d %b} - {last:%a %d %b %Y}, {self.timezone})"


def week_of(day: date, timezone: str, week_start: str = "monday") -> Week:
    """The week containing local date ``day``."""
    if week_start == "sunday":
        first = day - timedelta(days=day.isoweekday() % 7)
        iso = (first + timedelta(days=1)).isocalendar()
    else:
        first = day - timedelta(days=day.isoweekday() - 1)
        iso = first.isocalendar()
    return Week(f"{iso.year}-W{iso.week:02d}", first, timezone)


def parse_week(label: str, timezone: str, week_start: str = "monday") -> Week:
    """``2026-W47`` as a :class:`Week`."""
    match = _LABEL.match(label.strip())
    if not match:
        raise ConfigError(f"--week {label!r} is not an ISO week such as 2026-W47")
    try:
        monday = date.fromisocalendar(int(match[1]), int(match[2]), 1)
    except ValueError as exc:
        raise ConfigError(f"--week {label!r}: {exc}") from None
    return (
        week_of(monday, timezone, week_start)
        if week_start == "monday"
        else week_of(monday - timedelta(days=1), timezone, week_start)
    )


def last_complete(now: datetime, timezone: str, week_start: str = "monday") -> Week:
    """The latest week that ended before ``now``."""
    today = now.astimezone(ZoneInfo(timezone)).date()
    return week_of(today, timezone, week_start).previous()


def last_due(cron: str, timezone: str, now: datetime) -> datetime | None:
    """The latest time at or before ``now`` when ``cron`` (in ``timezone``) fired, looking
    back eight days; None when it did not fire in that time."""
    trigger = cron_trigger(cron, timezone)
    fire = trigger.get_next_fire_time(None, now - timedelta(days=8))
    last = None
    for _ in range(20_000):  # a weekly cron: two steps; every minute: 11,520
        if fire is None or fire > now:
            break
        last = fire
        fire = trigger.get_next_fire_time(fire, fire + timedelta(microseconds=1))
    return None if last is None else last.astimezone(UTC)
