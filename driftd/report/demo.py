"""The demo's last step: the weekly report of the week it replayed, as a manager gets it
(the summary arrives through the alerts pipeline, here the demo's console sink)."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from typing import TYPE_CHECKING

from driftd.report import generate
from driftd.report.settings import BusinessSettings
from driftd.report.weeks import week_of

if TYPE_CHECKING:
    from driftd.app import App
    from driftd.report.files import Written


def weekly_report(app: App, day: datetime, out: Callable[[str], None]) -> Written:
    """Write the report of the week containing ``day`` and narrate it."""
    settings = app.config.section("business") or BusinessSettings()
    assert isinstance(settings, BusinessSettings)
    week = week_of(day.date(), settings.timezone, settings.week_start)
    out("")
    out(f"weekly business report of {week.title()}, as of {app.clock():%a %d %b %H:%M} UTC:")
    written = generate(app, week)
    out("  " + written.document["headline"])
    out(f"  report: {written.html} ({written.bytes:,} bytes); every number: {written.json}")
    return written
