"""Crontab lines read as crontab(5) reads them: APScheduler 3's own from_crontab counts
weekdays from Monday = 0, so "0 8 * * 1" fired on Tuesdays."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from driftd.config import JobSchedule
from monitor.crontab import cron_trigger

SUNDAY = datetime(2026, 11, 29, 12, 0, tzinfo=UTC)  # a Sunday


def fires(cron: str, n: int = 7) -> list[str]:
    trigger, at, out = cron_trigger(cron), SUNDAY, []
    for _ in range(n):
        at = trigger.get_next_fire_time(None, at + timedelta(seconds=1))
        out.append(f"{at:%a %H:%M}")
    return out


@pytest.mark.parametrize(
    ("cron", "expected"),
    [
        ("0 8 * * 1", ["Mon 08:00"] * 2),
        ("0 8 * * 0", ["Sun 08:00"] * 2),
        ("0 8 * * 7", ["Sun 08:00"] * 2),
        ("0 8 * * mon", ["Mon 08:00"] * 2),
        ("30 6 * * 1-5", ["Mon 06:30", "Tue 06:30", "Wed 06:30", "Thu 06:30", "Fri 06:30"]),
        ("0 0 * * 6,0", ["Sat 00:00", "Sun 00:00"]),
    ],
)
def test_weekdays_as_crontab_counts_them(cron: str, expected: list[str]) -> None:
    assert fires(cron, len(expected)) == expected


def test_a_job_schedule_fires_on_the_weekday_written() -> None:
    trigger = JobSchedule(cron="0 8 * * 1").trigger()
    first = trigger.get_next_fire_time(None, SUNDAY)
    assert f"{first:%a %H:%M %Z}" == "Mon 08:00 UTC"


def test_a_bad_weekday_is_refused() -> None:
    with pytest.raises(ValueError, match="days are 0-7"):
        cron_trigger("0 8 * * 8")
