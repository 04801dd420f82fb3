"""The retrain job: when the triggers fire (and ``retrain.mode`` is ``auto``), train a
candidate, gate it and register it as ``challenger``; in ``suggest`` mode, alert only.
See :mod:`driftd.retraining`."""

from __future__ import annotations

from datetime import timedelta
from typing import TYPE_CHECKING

from driftd.config import Config, JobSchedule
from driftd.jobs.base import Job, JobResult, register

if TYPE_CHECKING:
    from driftd.app import App


@register
class Retrain(Job):
    name = "retrain"
    schedule = JobSchedule(interval=timedelta(minutes=30))
    order = 40  # after statistics and performance: it reads their signals

    @classmethod
    def enabled(cls, config: Config) -> bool:
        reference = config.reference
        return (
            reference is not None and reference.target is not None and bool(config.sources.labels)
        )

    def run(self, context: App) -> JobResult:
        from driftd.retraining import retrain

        return retrain(context)
