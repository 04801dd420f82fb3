"""The shadow job: score the challenger on the rows the champion served and compare the
two on the same rows once labels mature; a final verdict sends the challenger to the
A/B test or rejects it. See :mod:`driftd.shadowing`."""

from __future__ import annotations

from datetime import timedelta
from typing import TYPE_CHECKING

from driftd.config import Config, JobSchedule
from driftd.jobs.base import Job, JobResult, register
from driftd.shadowing import ShadowConfig, config_of

if TYPE_CHECKING:
    from driftd.app import App


@register
class Shadow(Job):
    name = "shadow"
    schedule = JobSchedule(interval=timedelta(minutes=30))
    order = 50  # after retrain: a new challenger is scored in the same cycle
    section = "shadow"
    settings = ShadowConfig

    @classmethod
    def enabled(cls, config: Config) -> bool:
        """Labels to compare on, a binary model (the paired tests are for two classes),
        and not switched off."""
        reference = config.reference
        return (
            reference is not None
            and reference.target is not None
            and bool(config.sources.labels)
            and config.model.task == "binary"
            and config_of(config).enabled
        )

    def run(self, context: App) -> JobResult:
        from driftd.shadowing import evaluate

        return evaluate(context)
