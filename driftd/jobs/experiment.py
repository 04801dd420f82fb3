"""The experiment job: the challenger's A/B analysis, its promotion (policy ``auto``) or
the alert asking for one (``manual``), and the bake period after a promotion, with a
rollback to ``previous`` on a breach. See :mod:`driftd.experimenting`; the settings are
the ``experiment:`` section (:mod:`driftd.config_experiment`)."""

from __future__ import annotations

from datetime import timedelta
from typing import TYPE_CHECKING

from driftd.config import Config, JobSchedule
from driftd.config_experiment import ExperimentConfig, experiment_config
from driftd.jobs.base import Job, JobResult, register

if TYPE_CHECKING:
    from driftd.app import App


@register
class Experiment(Job):
    name = "experiment"
    schedule = JobSchedule(interval=timedelta(minutes=30))
    order = 60  # after the shadow job (50): a better shadow verdict starts the A/B test
    section = "experiment"
    settings = ExperimentConfig

    @classmethod
    def enabled(cls, config: Config) -> bool:
        # the analysis and the bake read labelled rows
        return bool(config.sources.labels) and experiment_config(config).enabled

    def run(self, context: App) -> JobResult:
        from driftd.experimenting import run

        return run(context)
