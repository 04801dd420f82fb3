"""The ingest job: read what is new in every source, exactly once."""

from __future__ import annotations

from datetime import timedelta
from typing import TYPE_CHECKING

from driftd.config import JobSchedule
from driftd.jobs.base import Job, JobResult, register

if TYPE_CHECKING:
    from driftd.app import App


@register
class Ingest(Job):
    name = "ingest"
    schedule = JobSchedule(interval=timedelta(minutes=5))
    order = 10

    def run(self, context: App) -> JobResult:
        from alerts.signals import quarantine_evaluation, source_evaluation

        report = context.ingest()
        quarantine = quarantine_evaluation(
            context.model,
            {name: s.quarantined for name, s in report.sources.items()},
            {name: s.rows + s.duplicates for name, s in report.sources.items()},
            context.config.alerts.quarantine_rate,
        )
        sources = source_evaluation(
            context.model,
            {name: s.matched for name, s in report.sources.items()},
            {source.name: source.paths for source in context.sources()},
        )
        return JobResult(report.to_dict(), [quarantine, sources])
