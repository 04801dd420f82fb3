"""The statistics job: fold new predictions into window states, finalize changed
windows (drift and data quality against the reference profile), write the Evidently
detail report of a drift episode, and alert."""

from __future__ import annotations

import logging
from datetime import datetime, timedelta
from typing import TYPE_CHECKING

from driftd.config import Config, JobSchedule
from driftd.display import summarize
from driftd.jobs.base import Job, JobResult, register

if TYPE_CHECKING:
    from driftd.app import App
    from monitor.drift.state import WindowState
    from monitor.results import DriftResult

logger = logging.getLogger(__name__)


@register
class Statistics(Job):
    name = "statistics"
    schedule = JobSchedule(interval=timedelta(minutes=15))
    order = 30  # after performance: a drift alert then knows its window's coverage and cost

    @classmethod
    def enabled(cls, config: Config) -> bool:
        return config.reference is not None

    def run(self, context: App) -> JobResult:
        from alerts.signals import window_evaluation

        engine = context.statistics_engine
        folded = engine.fold()
        reporter = None if context.config.drift.reports == "none" else EpisodeReports(context)
        results = engine.finalize(report=reporter)
        known = {
            w.start: w
            for w in context.performance_repository.windows(
                context.model, len(results), starts=list(results)
            )
        }
        currency = context.config.performance.cost.currency
        evaluations = [
            window_evaluation(context.model, r, performance=known.get(start), currency=currency)
            for start, r in sorted(results.items())
        ]
        summary = {
            **folded.to_dict(),
            "finalized": len(results),
            "dataset_drift": sorted(
                start.isoformat() for start, r in results.items() if r.drift.drifted
            ),
            "window_summaries": [
                line for start, r in sorted(results.items()) if (line := summarize(start, r))
            ],
        }
        return JobResult(summary, evaluations)


class EpisodeReports:
    """Writes the Evidently detail report of a window with dataset drift: with
    ``drift.reports: episode`` only for the first window of a run of drifted windows
    (the previous window is checked in this run's results, then in the store)."""

    def __init__(self, context: App) -> None:
        self.context = context
        self.drifted: set[datetime] = set()  # windows of this run found drifting

    def __call__(
        self, start: datetime, state: WindowState, drift: DriftResult | None = None
    ) -> str | None:
        from monitor.drift.report import (
            as_report_frame,
            capped,
            report_options,
            write_drift_report,
        )

        app, config = self.context, self.context.config
        size = config.windows.size  # None: row-count windows
        previous = start - size if size else app.ingest_repository.window_before(app.model, start)
        self.drifted.add(start)  # called for windows with dataset drift only
        if (
            config.drift.reports == "episode"
            and previous is not None
            and (previous in self.drifted or self._stored_drift(previous))
        ):
            return None  # the episode's first window has the report
        rows = config.drift.report_rows
        schema = app.reference.schema
        frame = app.reference.frame()
        reference = as_report_frame({c: frame[c].to_numpy() for c in frame}, schema)
        current = as_report_frame(state.sample, schema)
        path = config.workspace / "reports" / f"drift-{app.model}-{start:%Y%m%dT%H%M}.html"
        write_drift_report(
            capped(reference, rows),
            capped(current, rows),
            schema,
            path,
            title=f"{app.model} window {start.isoformat()}",
            **report_options(drift),
        )
        return str(path)

    def _stored_drift(self, start: datetime) -> bool:
        result = self.context.statistics_repository.result(self.context.model, start)
        return result is not None and result.drift.drifted
