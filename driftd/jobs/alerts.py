"""The alerts job: deliver what waits in the outbox (Slack, webhook or console)."""

from __future__ import annotations

from datetime import timedelta
from typing import TYPE_CHECKING

from driftd.config import JobSchedule
from driftd.jobs.base import Job, JobResult, register

if TYPE_CHECKING:
    from driftd.app import App


@register
class Alerts(Job):
    name = "alerts"
    schedule = JobSchedule(interval=timedelta(minutes=1))
    order = 900  # last in a cycle: it sends what the others queued
    alerts_on_failure = False  # its failures are the deliveries' own (see `driftd check`)

    def run(self, context: App) -> JobResult:
        return JobResult(context.dispatcher.deliver().to_dict())
