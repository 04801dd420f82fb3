"""The composition root: from a :class:`~driftd.config.Config` to the objects that work.

The CLI builds one :class:`App` per command. It builds the store, the repositories, the
reference, the engines and the alert pipeline once each, on first use; tests inject a
store, a sink or a clock the way httpx takes a transport. What the jobs do is in
:mod:`driftd.jobs`, health in :mod:`driftd.health`, the status document in
:mod:`driftd.status`.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from functools import cached_property
from typing import TYPE_CHECKING, Any

from driftd import engines
from driftd.config import Config
from driftd.daemon import Daemon
from driftd.jobs import Job, registered
from driftd.reference import Reference
from monitor.ingest import Ingestor, IngestReport, Progress, Source
from storage.alerts import AlertRepository
from storage.ingest import IngestRepository
from storage.lease import Lease
from storage.performance import PerformanceRepository
from storage.review import ReviewRepository
from storage.runs import FAILED, OK, RunLog
from storage.statistics import StatisticsRepository
from storage.status import StatusQueries
from storage.store import Store

if TYPE_CHECKING:
    from alerts.dispatch import Dispatcher
    from alerts.manager import AlertManager
    from alerts.signals import Evaluation
    from alerts.sinks import Sink
    from monitor.performance import PerformanceEngine
    from monitor.results import WindowResults
    from monitor.review import ReviewQueue
    from monitor.statistics import StatisticsEngine

logger = logging.getLogger(__name__)


class App:
    """One configured driftd: its store, repositories, engines, alerts and jobs."""

    def __init__(
        self,
        config: Config,
        *,
        store: Store | None = None,
        sink: Sink | None = None,
        clock: Callable[[], datetime] | None = None,
    ) -> None:
        self.config = config
        self.clock = clock or (lambda: datetime.now(UTC))
        self.store = store or Store(config.storage_url)
        # repositories: cheap to make, no I/O until used
        self.runs = RunLog(self.store)
        self.ingest_repository = IngestRepository(self.store)
        self.statistics_repository = StatisticsRepository(self.store)
        self.performance_repository = PerformanceRepository(self.store)
        self.review_repository = ReviewRepository(self.store)
        self.alert_repository = AlertRepository(self.store)
        self.status_queries = StatusQueries(self.store)
        if sink is not None:
            self.sink = sink  # replaces the cached property below

    def open(self) -> App:
        """Check the database answers and bring its schema up to date."""
        self.config.workspace.mkdir(parents=True, exist_ok=True)
        self.store.migrate()
        return self

    def close(self) -> None:
        self.store.dispose()

    def __enter__(self) -> App:
        return self.open()

    def __exit__(self, *exc: object) -> None:
        self.close()

    @property
    def model(self) -> str:
        return self.config.model.name

    # -- reference and engines ----------------------------------------------------------

    @cached_property
    def lease(self) -> Lease:
        """This model's lease in this store: one driftd runs its jobs at a time."""
        return Lease(self.store, self.model)

    @cached_property
    def reference(self) -> Reference:
        return Reference(self.config)

    @cached_property
    def statistics_engine(self) -> StatisticsEngine:
        return engines.statistics_engine(self.config, self.reference, self.statistics_repository)

    @cached_property
    def performance_engine(self) -> PerformanceEngine:
        return engines.performance_engine(
            self.config, self.reference, self.performance_repository, now=self.clock()
        )

    @cached_property
    def review_queue(self) -> ReviewQueue:
        return engines.review_queue(self.config, self.review_repository)

    # -- ingestion ----------------------------------------------------------------------

    def sources(self) -> list[Source]:
        return engines.sources(self.config, self.reference.schema)

    def ingestor(self, progress: Progress | None = None) -> Ingestor:
        return Ingestor(
            repository=self.ingest_repository,
            model=self.model,
            sources=self.sources(),
            windows=self.config.windows.build(),
            max_line_bytes=self.config.ingest.max_line_bytes,
            chunk_rows=self.config.ingest.chunk_rows,
            progress=progress,
            feature_blocks=self.config.reference is not None,  # for the statistics job
        )

    def ingest(self, progress: Progress | None = None) -> IngestReport:
        report = self.ingestor(progress).run()
        logger.info(
            "ingested %d rows (%d duplicates, %d quarantined)",
            report.rows,
            report.duplicates,
            report.quarantined,
        )
        return report

    def ingest_now(self, progress: Progress | None = None) -> IngestReport:
        """Ingest now, recorded as a run of the ingest job (for the CLI)."""
        pk = self.runs.start("ingest", now=self.clock())
        try:
            report = self.ingest(progress)
        except Exception as exc:
            self.runs.finish(pk, FAILED, error=f"{type(exc).__name__}: {exc}")
            raise
        self.runs.finish(pk, OK, summary=report.to_dict())
        return report

    def window_results(
        self, limit: int = 50, *, starts: Sequence[datetime] | None = None
    ) -> list[WindowResults]:
        """The latest finalized windows' statistics (those of ``starts`` when given),
        oldest first."""
        return self.statistics_repository.results(self.model, limit, starts=starts)

    # -- alerts -------------------------------------------------------------------------

    @cached_property
    def sink(self) -> Sink:
        return engines.sink(self.config)

    @cached_property
    def alert_manager(self) -> AlertManager:
        from alerts.incidents import Policy
        from alerts.manager import AlertManager

        a = self.config.alerts
        policy = Policy(
            repeat_interval=a.repeat_interval,
            resolve_after=a.resolve_after,
            min_severity=a.min_severity,
        )
        return AlertManager(
            repository=self.alert_repository, policy=policy, ui_url=a.ui_url, clock=self.clock
        )

    @cached_property
    def dispatcher(self) -> Dispatcher:
        from alerts.dispatch import Dispatcher

        return Dispatcher(
            repository=self.alert_repository,
            sink=self.sink,
            clock=self.clock,
            min_interval=self.config.alerts.min_interval,
        )

    def alert(self, evaluations: Sequence[Evaluation]) -> dict[str, Any]:
        """Fold evaluations into incidents, queue what to say, then try to say it."""
        cycle = self.alert_manager.evaluate(self.model, evaluations)
        return {**cycle.to_dict(), "delivery": self.deliver_alerts()}

    def deliver_alerts(self) -> dict[str, Any]:
        """Send what is due in the outbox now."""
        return self.dispatcher.deliver().to_dict()

    def send_test_alert(self) -> str:
        """Check the sink (e.g. the Slack token's scopes), send a test message now, and
        say where it went; an AlertDeliveryError names what is wrong."""
        from alerts.health import send_test

        return send_test(
            self.alert_repository, self.dispatcher, self.sink, model=self.model, now=self.clock()
        )

    # -- jobs, daemon, health, status ---------------------------------------------------

    def jobs(self) -> list[Job]:
        """The registered jobs this configuration enables, in cycle order."""
        return [job() for job in registered().values() if job.enabled(self.config)]

    def daemon(self) -> Daemon:
        from driftd.jobs.runner import JobRunner
        from driftd.promotion import repair_at_start

        runner = JobRunner(self)
        jobs = self.jobs()
        schedule = self.config.schedule
        return Daemon(
            jobs={job.name: runner.callable(job) for job in jobs},
            triggers={job.name: schedule.of(job.name, job.schedule).trigger() for job in jobs},
            runs=self.runs,
            engine=self.store.engine,
            misfire_grace=schedule.misfire_grace,
            lease=self.lease,
            # an alias move recorded in driftd but not in MLflow (a crash, MLflow down)
            on_start=lambda: repair_at_start(self),
        )

    def health(self, now: datetime | None = None) -> list[str]:
        """Why driftd is unhealthy; an empty list when it is healthy."""
        from driftd.health import problems

        return problems(self, now or self.clock())

    def status(self, windows: int = 50, since: datetime | None = None) -> dict[str, Any]:
        """``windows``: how many of the latest windows, those starting at or after ``since``."""
        from driftd.status import status

        return status(self, windows, since)
