"""Standard crontab lines as APScheduler triggers.

APScheduler 3's ``CronTrigger.from_crontab`` numbers weekdays from Monday = 0, so the
standard "0 8 * * 1" (Mondays at 08:00) would fire on Tuesdays; :func:`cron_trigger`
reads the weekday field as crontab(5) does (0 and 7 are Sunday, 1 is Monday). APScheduler
is imported only when a trigger is built.
"""

from __future__ import annotations

from typing import Any
from zoneinfo import ZoneInfo


def cron_trigger(cron: str, timezone: str = "UTC") -> Any:
    """An APScheduler trigger for a standard crontab line (day of week 0 or 7 = Sunday,
    1 = Monday). APScheduler 3's own ``from_crontab`` counts 0 = Monday, so "0 8 * * 1"
    would fire on Tuesdays."""
    from apscheduler.triggers.cron import CronTrigger

    fields = cron.split()
    if len(fields) != 5:
        raise ValueError(f"cron {cron!r} needs 5 fields (minute hour day month weekday)")
    minute, hour, day, month, weekday = fields
    return CronTrigger(
        minute=minute,
        hour=hour,
        day=day,
        month=month,
        day_of_week=_weekdays(weekday),
        timezone=ZoneInfo(timezone),
    )


def _weekdays(field: str) -> str:
    """A crontab weekday field in APScheduler's numbering (0 = Monday); names pass."""
    if field == "*" or any(c.isalpha() for c in field):
        return field
    days: set[int] = set()
    for part in field.split(","):
        span, _, step = part.partition("/")
        try:
            if span == "*":
                low, high = 0, 6
            elif "-" in span:
                low, high = (int(x) for x in span.split("-", 1))
            else:
                low = int(span)
                high = 7 if step else low
            stride = int(step or 1)
        except ValueError:
            raise ValueError(f"weekday {field!r} is not a crontab weekday field") from None
        if not 0 <= low <= high <= 7 or stride < 1:
            raise ValueError(f"weekday {field!r}: days are 0-7 (0 and 7 are Sunday)")
        days.update((d - 1) % 7 for d in range(low, high + 1, stride))
    return ",".join(map(str, sorted(days)))
