"""Wiring: from a :class:`~driftd.config.Config` to the objects that do the work.

The CLI builds one :class:`App` per command; the daemon receives its jobs from here.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from datetime import UTC, datetime, timedelta
from functools import cached_property
from typing import Any

from driftd.config import Config, JobSchedule, SourceConfig
from driftd.daemon import Daemon, JobFn
from monitor.ingest import Ingestor, IngestReport, Progress, Source
from monitor.records import FeatureType, RecordSpec
from monitor.windows import TimeWindows
from storage.errors import ConfigError, DriftdError
from storage.ingest import IngestRepository
from storage.runs import FAILED, OK, RunLog
from storage.status import StatusQueries
from storage.store import Store, redact_url

logger = logging.getLogger(__name__)


class App:
    """One configured driftd: its store, sources, jobs and health."""

    def __init__(self, config: Config, *, store: Store | None = None) -> None:
        self.config = config
        self.store = store or Store(config.storage_url)
        self.runs = RunLog(self.store)
        self.status_queries = StatusQueries(self.store)
        self.repository = IngestRepository(self.store)

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

    # -- ingestion ----------------------------------------------------------------------

    @cached_property
    def schema(self) -> dict[str, FeatureType]:
        """Feature types: from the config, else inferred from the reference table."""
        if self.config.schema_:
            return dict(self.config.schema_)
        reference = self.config.reference
        if reference is None:
            return {}
        from monitor.schema import infer_schema, read_table

        try:
            frame = read_table(str(reference.path), nrows=10_000)
        except (OSError, ValueError) as exc:
            raise ConfigError(f"reference.path: cannot read {reference.path}: {exc}") from None
        fields = self.config.model.fields
        exclude = {
            reference.target,
            fields.id,
            fields.ts,
            fields.prediction,
            fields.score,
            fields.label,
            fields.model_version,
            fields.variant,
        }
        return infer_schema(frame, exclude={e for e in exclude if e})

    def sources(self) -> list[Source]:
        out = []
        for kind in ("predictions", "labels"):
            configured: list[SourceConfig] = getattr(self.config.sources, kind)
            for i, sc in enumerate(configured):
                name = sc.name or (kind if i == 0 else f"{kind}-{i + 1}")
                spec = RecordSpec(fields=self.config.fields_for(sc), schema=self.schema)
                out.append(Source(name, kind, tuple(sc.paths), sc.format, spec))  # type: ignore[arg-type]
        return out

    def ingestor(self, progress: Progress | None = None) -> Ingestor:
        return Ingestor(
            repository=self.repository,
            model=self.model,
            sources=self.sources(),
            windows=TimeWindows(self.config.windows.size),
            max_line_bytes=self.config.ingest.max_line_bytes,
            chunk_rows=self.config.ingest.chunk_rows,
            progress=progress,
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
        pk = self.runs.start("ingest")
        try:
            report = self.ingest(progress)
        except Exception as exc:
            self.runs.finish(pk, FAILED, error=f"{type(exc).__name__}: {exc}")
            raise
        self.runs.finish(pk, OK, summary=report.to_dict())
        return report

    # -- daemon -------------------------------------------------------------------------

    def jobs(self) -> dict[str, JobFn]:
        return {"ingest": lambda: self.ingest().to_dict()}

    def triggers(self) -> dict[str, Any]:
        from apscheduler.triggers.cron import CronTrigger
        from apscheduler.triggers.interval import IntervalTrigger

        def trigger(s: JobSchedule) -> Any:
            if s.cron is not None:
                return CronTrigger.from_crontab(s.cron, timezone=UTC)
            assert s.interval is not None
            return IntervalTrigger(seconds=int(s.interval.total_seconds()), timezone=UTC)

        schedule = self.config.schedule
        return {name: trigger(getattr(schedule, name)) for name in self.jobs()}

    def daemon(self) -> Daemon:
        return Daemon(
            jobs=self.jobs(),
            triggers=self.triggers(),
            runs=self.runs,
            engine=self.store.engine,
            misfire_grace=self.config.schedule.misfire_grace,
        )

    # -- health and status --------------------------------------------------------------

    def health(self, now: datetime | None = None) -> list[str]:
        """Why driftd is unhealthy; an empty list when it is healthy."""
        now = now or datetime.now(UTC)
        try:
            self.store.ping()
            revision = self.store.current_revision()
        except DriftdError as exc:
            return [f"database {redact_url(self.store.url)} does not answer: {exc}"]
        if revision != self.store.head_revision():
            return [
                f"database schema is at revision {revision or 'none'}, not "
                f"{self.store.head_revision()}: start driftd (run, once or ingest) to migrate it"
            ]
        problems = []
        max_age = self.config.health.max_ingest_age
        last_ok = self.runs.last("ingest", outcome="ok")
        if last_ok is None:
            problems.append("ingest has never completed")
        elif last_ok.finished_at and now - last_ok.finished_at > max_age:
            problems.append(
                f"last successful ingest finished {_ago(now - last_ok.finished_at)} ago "
                f"(limit {_ago(max_age)})"
            )
        last = self.runs.last("ingest")
        if last is not None and last.outcome == "failed":
            problems.append(f"last ingest failed: {last.error}")
        for run in self.runs.running():
            age = now - run.started_at
            if age > self.config.health.max_job_runtime:
                problems.append(
                    f"job {run.job} (run {run.pk}, pid {run.pid} on {run.host}) has been "
                    f"running for {_ago(age)}"
                )
        return problems

    def status(self) -> dict[str, Any]:
        return {
            "model": self.model,
            "database": redact_url(self.store.url),
            "counts": self.status_queries.counts(self.model),
            "ingestion": self.status_queries.ingestion(self.model),
            "windows": self.status_queries.windows(self.model),
            "jobs": {name: _run_dict(self.runs.last(name)) for name in self.jobs()},
        }


def _ago(delta: timedelta) -> str:
    seconds = int(delta.total_seconds())
    if seconds < 120:
        return f"{seconds}s"
    if seconds < 7200:
        return f"{seconds // 60}m"
    return f"{seconds // 3600}h{(seconds % 3600) // 60:02d}m"


def _run_dict(run: Any) -> Mapping[str, Any] | None:
    if run is None:
        return None
    return {
        "run": run.pk,
        "outcome": run.outcome,
        "started_at": run.started_at,
        "finished_at": run.finished_at,
        "error": run.error,
    }
