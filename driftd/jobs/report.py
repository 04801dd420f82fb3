"""The weekly report job: once the configured weekly time has passed (``business.cron``
in ``business.timezone``, default Monday 08:00), the report of the week that ended
before it is written and its summary sent, once.

The daemon's triggers are UTC, so the job itself is scheduled every hour and knows
when the report is due in local time (DST included); a run that finds the week's
report already written, or a week without predictions, does nothing. A daemon that was
down at the due time writes the report when it comes back.
"""

from __future__ import annotations

from datetime import timedelta
from typing import TYPE_CHECKING

from driftd.config import Config, JobSchedule
from driftd.jobs.base import Job, JobResult, register
from driftd.report.settings import BusinessSettings

if TYPE_CHECKING:
    from driftd.app import App


@register
class WeeklyReport(Job):
    name = "weekly_report"
    schedule = JobSchedule(interval=timedelta(hours=1))  # checks whether a report is due
    order = 800  # after the cycle's statistics, before alert delivery
    section = "business"
    settings = BusinessSettings

    @classmethod
    def enabled(cls, config: Config) -> bool:
        return config.model.task == "binary" and bool(config.sources.labels)

    def run(self, context: App) -> JobResult:
        from driftd.report import generate
        from driftd.report.files import paths
        from driftd.report.weeks import last_complete, last_due
        from storage.report import ReportQueries

        settings = context.config.section("business")
        if not isinstance(settings, BusinessSettings):  # a config built without the section
            settings = BusinessSettings()
        now = context.clock()
        due = last_due(settings.cron, settings.timezone, now)
        if due is None:
            return JobResult({"due": None})
        week = last_complete(due, settings.timezone, settings.week_start)
        summary = {"due": due.isoformat(), "week": week.label}
        if paths(context, week)[1].exists():
            return JobResult({**summary, "skipped": "already written"})
        if not ReportQueries(context.store).count(context.model, week.start, week.end):
            return JobResult({**summary, "skipped": "no predictions"})
        written = generate(context, week)
        return JobResult(
            {
                **summary,
                "html": str(written.html),
                "json": str(written.json),
                "notified": written.notified,
                "summary": written.document["summary"],
            }
        )
