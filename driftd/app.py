"""Wiring: from a :class:`~driftd.config.Config` to the objects that do the work.

The CLI builds one :class:`App` per command; the daemon receives its jobs from here.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping
from datetime import UTC, datetime, timedelta
from functools import cached_property
from typing import Any

from driftd.config import Config, JobSchedule, SourceConfig
from driftd.daemon import Daemon, JobFn
from monitor.ingest import Ingestor, IngestReport, Progress, Source
from monitor.records import FeatureType, RecordSpec
from storage.alerts import AlertRepository
from storage.errors import AlertDeliveryError, ConfigError, DriftdError
from storage.ingest import IngestRepository
from storage.runs import FAILED, OK, RunLog
from storage.statistics import StatisticsRepository
from storage.status import StatusQueries
from storage.store import Store, redact_url

logger = logging.getLogger(__name__)


class App:
    """One configured driftd: its store, sources, jobs and health."""

    def __init__(
        self,
        config: Config,
        *,
        store: Store | None = None,
        sink: Any = None,
        clock: Callable[[], datetime] | None = None,
    ) -> None:
        self.config = config
        self.clock = clock or (lambda: datetime.now(UTC))
        self.store = store or Store(config.storage_url)
        self.alert_repository = AlertRepository(self.store)
        self._sink = sink
        self.runs = RunLog(self.store)
        self.status_queries = StatusQueries(self.store)
        self.repository = IngestRepository(self.store)
        self.statistics_repository = StatisticsRepository(self.store)
        self._engine: Any = None
        self._reported: set[datetime] = set()  # windows found drifting by this process

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
            windows=self.config.windows.build(),
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

    # -- statistics ---------------------------------------------------------------------

    def reference_frame(self) -> Any:
        """The reference table (pandas), or a ConfigError naming what is wrong."""
        from monitor.schema import read_table

        reference = self.config.reference
        if reference is None:
            raise ConfigError("reference: drift statistics need a reference table")
        try:
            return read_table(str(reference.path))
        except (OSError, ValueError) as exc:
            raise ConfigError(f"reference.path: cannot read {reference.path}: {exc}") from None

    def profile(self) -> Any:
        """The stored reference profile, fitted (and stored) when missing or outdated."""
        from monitor.drift.stored import load_profile

        reference = self.config.reference
        if reference is None:
            raise ConfigError("reference: drift statistics need a reference table")
        st = reference.path.stat() if reference.path.exists() else None
        fingerprint = f"{st.st_size}:{st.st_mtime_ns}" if st else "missing"
        return load_profile(
            self.statistics_repository,
            self.model,
            reference.model_version,
            fingerprint if st else None,
            self._reference_columns,
        )

    def _reference_columns(self) -> Any:
        from monitor.statistics import PREDICTION, SCORE

        reference = self.config.reference
        assert reference is not None
        frame = self.reference_frame()
        columns = {name: frame[name].to_numpy() for name in self.schema if name in frame}
        schema = {name: kind for name, kind in self.schema.items() if name in frame}
        for pseudo, source, kind in (
            (SCORE, reference.score_column, FeatureType.NUMERIC),
            (PREDICTION, reference.prediction_column, FeatureType.CATEGORICAL),
        ):
            if source is None:
                continue
            if source not in frame:
                raise ConfigError(f"reference: no column {source!r} in {reference.path}")
            columns[pseudo], schema[pseudo] = frame[source].to_numpy(), kind
        return columns, schema

    def statistics_engine(self) -> Any:
        from monitor.statistics import DriftSettings, StatisticsEngine

        if self._engine is None:
            drift = self.config.drift
            settings = DriftSettings(
                method=drift.method,
                threshold=drift.threshold,
                mode=drift.thresholds,
                min_rows=drift.min_rows,
                false_alarm_rate=drift.false_alarm_rate,
                drift_share=drift.drift_share,
                columns={n: (c.method, c.threshold) for n, c in drift.columns.items()},
                importance=drift.importance,
            )
            self._engine = StatisticsEngine(
                repository=self.statistics_repository,
                model=self.model,
                profile=self.profile(),
                settings=settings,
                sample_size=drift.sample_size,
            )
        return self._engine

    def statistics(self) -> dict[str, Any]:
        """Fold new predictions into window states, then finalize changed windows."""
        engine = self.statistics_engine()
        folded = engine.fold()
        reports = self.config.drift.reports
        results = engine.finalize(report=None if reports == "none" else self._report)
        drifted = sorted(start.isoformat() for start, r in results.items() if r["drift"]["drifted"])
        from alerts.signals import window_evaluation

        known = {
            w["start"]: w
            for w in self.performance_repository.windows(
                self.model, len(results), starts=list(results)
            )
        }
        alerts = self.alert(
            [
                window_evaluation(
                    self.model,
                    r,
                    performance=known.get(start),
                    currency=self.config.performance.cost.currency,
                )
                for start, r in sorted(results.items())
            ]
        )
        return {
            **folded.to_dict(),
            "finalized": len(results),
            "dataset_drift": drifted,
            "window_summaries": [
                line for start, r in sorted(results.items()) if (line := summarize(start, r))
            ],
            "alerts": alerts,
        }

    # -- performance --------------------------------------------------------------------

    @cached_property
    def performance_repository(self) -> Any:
        from storage.performance import PerformanceRepository

        return PerformanceRepository(self.store)

    @cached_property
    def performance_engine(self) -> Any:
        """Realized performance, CBPE estimates and detectors; the reference's labelled
        rows (``reference.target``, with ``score_column``/``prediction_column`` when given)
        set the baseline and calibrate the estimator."""
        import numpy as np

        from monitor.concept.estimate import CBPE
        from monitor.performance import PerformanceEngine, PerformanceSettings, normalize
        from storage.performance import LabelledRow

        c, p = self.config, self.config.performance
        settings = PerformanceSettings(
            task=c.model.task,
            threshold=c.model.threshold,
            label_delay=p.label_delay,
            min_coverage=p.min_coverage,
            metrics=tuple(p.metrics),
            tolerance=p.tolerance,
            confidence=p.confidence,
            detectors=tuple(p.detectors),
        )
        engine = PerformanceEngine(
            repository=self.performance_repository, model=self.model, settings=settings
        )
        reference = c.reference
        if reference is None or reference.target is None:
            return engine
        frame = self.reference_frame()
        if reference.target not in frame:
            raise ConfigError(f"reference.target: no column {reference.target!r} in the reference")
        labels = [normalize(v) for v in frame[reference.target].tolist()]
        engine.reference_labels = labels
        if c.model.task == "binary":
            engine.positive = sorted(set(labels), key=str)[-1]
        scores = frame[reference.score_column].to_numpy(float) if reference.score_column else None
        if reference.prediction_column:
            predictions = frame[reference.prediction_column].tolist()
        elif scores is not None:
            predictions = [int(s >= c.model.threshold) for s in scores]
        else:
            return engine  # no model outputs on the reference: no baseline to compare to
        rows = [
            LabelledRow(str(i), datetime.now(UTC), pred, None if scores is None else scores[i], y)
            for i, (pred, y) in enumerate(zip(predictions, labels, strict=True))
        ]
        engine.reference = engine.realized(rows)
        if c.model.task == "binary" and scores is not None:
            cost = {"fn": p.cost.fn, "fp": p.cost.fp} if p.cost.fn or p.cost.fp else None
            positives = np.array([y == engine.positive for y in labels], dtype=int)
            engine.estimator = CBPE(threshold=c.model.threshold, cost=cost).fit(scores, positives)
        return engine

    def performance(self) -> dict[str, Any]:
        """Join labels, compute performance per changed window, feed the detectors."""
        from alerts.signals import detector_evaluation, performance_evaluation

        now = self.clock()
        engine = self.performance_engine
        results = engine.update(now)
        stream = engine.feed(now)
        review = [
            self.review_queue.refresh(self.model, start, profile=self._review_profile(), now=now)
            for start in sorted(results)
        ]
        metrics = self.config.performance.metrics
        evaluations = [performance_evaluation(self.model, r, metrics) for r in results.values()]
        evaluations.append(detector_evaluation(self.model, stream.detections, stream.errors))
        alerts = self.alert(evaluations)
        return {
            "windows": {
                start.isoformat(): {
                    "state": r["state"],
                    "coverage": round(r["coverage"], 4),
                    **{metric: _metric(r, metric) for metric in metrics},
                }
                for start, r in sorted(results.items())
            },
            "stream": stream.to_dict(),
            "review": {
                "added": sum(r["added"] for r in review),
                "upgraded": sum(r["upgraded"] for r in review),
            },
            "alerts": alerts,
        }

    @cached_property
    def review_repository(self) -> Any:
        from storage.review import ReviewRepository

        return ReviewRepository(self.store)

    @cached_property
    def review_queue(self) -> Any:
        """The review queue, refreshed for every window the performance job recomputes:
        misclassified rows once labelled, low-confidence and out-of-distribution rows
        before."""
        from monitor.review import ReviewQueue, ReviewSettings

        c = self.config
        settings = ReviewSettings(
            task=c.model.task,
            threshold=c.model.threshold,
            cost_fn=c.performance.cost.fn,
            cost_fp=c.performance.cost.fp,
            currency=c.performance.cost.currency,
            per_window=c.review.per_window,
            margin=c.review.margin,
            out_of_distribution=c.review.out_of_distribution,
        )
        return ReviewQueue(self.review_repository, settings)

    def _review_profile(self) -> Any:
        if self.config.reference is None:
            return None
        return self.statistics_engine().profile

    # -- alerts -------------------------------------------------------------------------

    def sink(self) -> Any:
        """Where alerts go: Slack with a bot token and a channel, else a Slack webhook,
        else the console (log)."""
        if self._sink is None:
            from alerts.sinks import ConsoleSink, SlackSink, WebhookSink, web_clients

            slack, secrets = self.config.alerts.slack, self.config.secrets
            if slack.channel and secrets.slack_bot_token is not None:
                client, poster = web_clients(
                    secrets.slack_bot_token.get_secret_value(),
                    base_url=slack.base_url,
                    timeout=slack.timeout,
                )
                self._sink = SlackSink(client=client, poster=poster, channel=slack.channel)
            elif secrets.slack_webhook_url is not None:
                self._sink = WebhookSink(
                    secrets.slack_webhook_url.get_secret_value(), timeout=slack.timeout
                )
            else:
                self._sink = ConsoleSink()
        return self._sink

    @cached_property
    def alert_manager(self) -> Any:
        from alerts.incidents import Policy
        from alerts.manager import AlertManager

        a = self.config.alerts
        return AlertManager(
            repository=self.alert_repository,
            policy=Policy(
                repeat_interval=a.repeat_interval,
                resolve_after=a.resolve_after,
                min_severity=a.min_severity,
            ),
            ui_url=a.ui_url,
            clock=self.clock,
        )

    @cached_property
    def dispatcher(self) -> Any:
        from alerts.dispatch import Dispatcher

        return Dispatcher(
            repository=self.alert_repository,
            sink=self.sink(),
            clock=self.clock,
            min_interval=self.config.alerts.min_interval,
        )

    def alert(self, evaluations: list[Any]) -> dict[str, Any]:
        """Fold evaluations into incidents, queue what to say, then try to say it."""
        cycle = self.alert_manager.evaluate(self.model, evaluations)
        delivery = self.deliver_alerts()
        return {**cycle.to_dict(), "delivery": delivery}

    def deliver_alerts(self) -> dict[str, Any]:
        """Send what is due in the outbox (the ``alerts`` job)."""
        report: dict[str, Any] = self.dispatcher.deliver().to_dict()
        return report

    def send_test_alert(self) -> str:
        """Queue a test message and deliver it now; where it went, or an error."""
        from storage.alerts import SENT

        sink = self.sink()
        payload = {"model": self.model, "test": True, "items": [], "context": {}}
        pk = self.alert_repository.enqueue(self.model, "test", payload, now=self.clock())
        self.dispatcher.deliver()
        item = self.alert_repository.item(pk)
        if item is None or item.status != SENT:
            error = (item.last_error if item else None) or "not delivered"
            # a test is for now: it is not retried later by the alerts job
            self.alert_repository.mark_failed(pk, error=f"test message: {error}")
            raise AlertDeliveryError(f"test message to {sink.describe()} not delivered: {error}")
        return f"test message delivered to {sink.describe()}" + (
            f" (ts {item.delivery_ref})" if item.delivery_ref else ""
        )

    def _alerting(self, job: str, fn: JobFn) -> JobFn:
        """``fn`` as a job whose outcome is also an alert evaluation (a failed job fires
        ``job_failed``, or ``ingestion`` for ingest; a later success clears it)."""
        from alerts.signals import quarantine_evaluation, run_evaluation

        def run() -> Any:
            try:
                summary = fn()
            except Exception as exc:
                self._alert_safely([run_evaluation(self.model, job, "failed", f"{exc}")])
                raise
            evaluations = [run_evaluation(self.model, job, "ok")]
            if job == "ingest" and isinstance(summary, dict):
                sources = summary.get("sources", {})
                evaluations.append(
                    quarantine_evaluation(
                        self.model,
                        {n: s.get("quarantined", {}) for n, s in sources.items()},
                        {n: s.get("rows", 0) + s.get("duplicates", 0) for n, s in sources.items()},
                        self.config.alerts.quarantine_rate,
                    )
                )
            self._alert_safely(evaluations)
            return summary

        return run

    def _alert_safely(self, evaluations: list[Any]) -> None:
        try:
            self.alert(evaluations)
        except Exception:  # alerting about a job must not change the job's outcome
            logger.exception("could not evaluate alerts")

    def _report(self, start: datetime, state: Any, drift: Any = None) -> str | None:
        from monitor.drift.report import (
            as_report_frame,
            capped,
            report_options,
            write_drift_report,
        )

        size = self.config.windows.size  # None: row-count windows
        previous = start - size if size else self.repository.window_before(self.model, start)
        self._reported.add(start)  # called for windows with dataset drift only
        if (
            self.config.drift.reports == "episode"
            and previous is not None
            and (previous in self._reported or self._drifted(previous))
        ):
            return None  # the episode's first window has the report

        rows = self.config.drift.report_rows
        frame = self.reference_frame()
        reference = as_report_frame({c: frame[c].to_numpy() for c in frame}, self.schema)
        current = as_report_frame(state.sample, self.schema)
        path = self.config.workspace / "reports" / f"drift-{self.model}-{start:%Y%m%dT%H%M}.html"
        write_drift_report(
            capped(reference, rows),
            capped(current, rows),
            self.schema,
            path,
            title=f"{self.model} window {start.isoformat()}",
            **report_options(drift),
        )
        return str(path)

    def _drifted(self, start: datetime) -> bool:
        import orjson

        payload = self.statistics_repository.result(self.model, start)
        if payload is None:
            return False
        return bool(orjson.loads(payload)["drift"]["drifted"])

    def window_results(self, limit: int = 50) -> list[dict[str, Any]]:
        import orjson

        out = []
        for row in self.statistics_repository.results(self.model, limit):
            out.append({**row, "results": orjson.loads(row["results"]) if row["results"] else None})
        return out

    # -- daemon -------------------------------------------------------------------------

    def jobs(self) -> dict[str, JobFn]:
        jobs: dict[str, JobFn] = {"ingest": lambda: self.ingest().to_dict()}
        # performance first: a drift alert then knows its window's coverage and cost
        if self.config.sources.labels:
            jobs["performance"] = self.performance
        if self.config.reference is not None:
            jobs["statistics"] = self.statistics
        jobs = {name: self._alerting(name, fn) for name, fn in jobs.items()}
        jobs["alerts"] = self.deliver_alerts
        return jobs

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
        for job in self.jobs():
            last = self.runs.last(job)
            if last is not None and last.outcome == "failed":
                problems.append(f"last {job} run ({last.pk}) failed: {last.error}")
        from alerts.dispatch import undeliverable

        problems += undeliverable(self.alert_repository)
        oldest = self.alert_repository.oldest_pending()
        if oldest is not None and now - oldest > self.config.health.max_alert_delay:
            problems.append(
                f"an alert has waited {_ago(now - oldest)} for delivery to "
                f"{self.sink().describe()} (limit {_ago(self.config.health.max_alert_delay)})"
            )
        for run in self.runs.running():
            age = now - run.started_at
            if age > self.config.health.max_job_runtime:
                problems.append(
                    f"job {run.job} (run {run.pk}, pid {run.pid} on {run.host}) has been "
                    f"running for {_ago(age)}"
                )
        return problems

    def status(self) -> dict[str, Any]:
        windows = self.status_queries.windows(self.model)
        results = {w["start"]: w["results"] for w in self.window_results(len(windows) or 1)}
        performance = {
            r["start"]: r
            for r in self.performance_repository.windows(self.model, len(windows) or 1)
        }
        review = self.review_repository.counts(self.model)
        for window in windows:
            window["statistics"] = _window_summary(results.get(window["start"]))
            window["performance"] = _performance_summary(performance.get(window["start"]))
            window["review"] = review["windows"].get(window["start"])
        return {
            "model": self.model,
            "database": redact_url(self.store.url),
            "counts": self.status_queries.counts(self.model),
            "ingestion": self.status_queries.ingestion(self.model),
            "windows": windows,
            "jobs": {name: _run_dict(self.runs.last(name)) for name in self.jobs()},
            "detections": self.performance_repository.detections(self.model, 20),
            "review": review["states"],
            "alerts": {
                "open": [
                    {"rule": i.rule, "scope": i.scope, "severity": i.severity, "since": i.opened_at}
                    for i in self.alert_repository.incidents(model=self.model, state="open")
                ],
                "outbox": self.alert_repository.outbox_counts(),
            },
        }


def _window_summary(results: Mapping[str, Any] | None) -> dict[str, Any] | None:
    """What `status` shows of a window's statistics (`driftd drift` shows everything)."""
    if not results:
        return None
    drift = results["drift"]
    return {
        "dataset_drift": drift["drifted"],
        "drift_share": drift["share"],
        "drifted_columns": [
            {k: c[k] for k in ("column", "method", "score", "threshold")}
            for c in drift["columns"]
            if c["drifted"]
        ],
        "quality_failed": [
            {k: q[k] for k in ("check", "column", "value", "threshold", "severity")}
            for q in results["quality_failed"]
        ],
        "prediction_drift": [
            c["column"] for c in results.get("prediction_drift", []) if c["drifted"]
        ],
        "multivariate_drift": [
            m["detector"] for m in results.get("multivariate", []) if m["drifted"]
        ],
        "report": results.get("report"),
    }


def summarize(start: datetime, results: Mapping[str, Any]) -> str:
    """One line on a window's drift and failed quality checks; empty when all is well."""
    drift = results["drift"]
    columns = [c for c in drift["columns"] if c["drifted"]]
    failed = results["quality_failed"]
    joint = [m for m in results.get("multivariate", []) if m["drifted"]]
    outputs = [c for c in results.get("prediction_drift", []) if c["drifted"]]
    if not columns and not failed and not joint and not outputs:
        return ""
    parts = []
    if columns:
        head = "dataset drift" if drift["drifted"] else "drift"
        shown = ", ".join(
            f"{c['column']} ({c['method']} {c['score']:.3g} vs {c['threshold']:.3g})"
            for c in columns[:4]
        )
        more = f" and {len(columns) - 4} more" if len(columns) > 4 else ""
        parts.append(f"{head} in {len(columns)}/{drift['columns_total']} columns: {shown}{more}")
    if outputs:
        parts.append(
            "prediction drift: "
            + ", ".join(
                f"{c['column'][1:]} ({c['method']} {c['score']:.3g} vs {c['threshold']:.3g})"
                for c in outputs
            )
        )
    if joint:
        parts.append(
            "multivariate: "
            + ", ".join(f"{m['detector']} {m['score']:.3g} vs {m['threshold']:.3g}" for m in joint)
        )
    if failed:
        parts.append(
            "quality: "
            + ", ".join(
                f"{q['check']}"
                + (f" in {q['column']}" if q["column"] else "")
                + (f" ({q['detail']})" if q["detail"] else "")
                for q in failed[:3]
            )
        )
    if results.get("report"):
        parts.append(f"report {results['report']}")
    return f"window {start:%a %d %b %H:%M}: " + "; ".join(parts)


def _performance_summary(row: Mapping[str, Any] | None) -> dict[str, Any] | None:
    """What `status` shows of a window's performance: coverage and state, realized
    metrics with intervals, the degradation test, estimates with bounds."""
    if row is None:
        return None
    realized = (row["realized"] or {}).get("performance")
    estimated = row["estimated"]
    return {
        "state": row["state"],
        "labelled": row["labelled"],
        "coverage": row["coverage"],
        "realized": None
        if realized is None
        else {
            name: {k: m[k] for k in ("value", "lower", "upper", "method")}
            for name, m in realized["metrics"].items()
        },
        "degradation": (row["realized"] or {}).get("degradation"),
        "target_drift": (row["realized"] or {}).get("target_drift"),
        "estimated": None
        if estimated is None
        else {
            name: {
                k: m[k]
                for k in ("value", "sampling_error", "lower_threshold", "upper_threshold", "alert")
            }
            for name, m in estimated["metrics"].items()
        },
    }


def _metric(result: Mapping[str, Any], metric: str) -> dict[str, Any]:
    """A window's realized and estimated value of ``metric`` (None where unknown)."""
    realized = (result.get("realized") or {}).get("metrics", {}).get(metric)
    estimated = ((result.get("estimated") or {}).get("metrics") or {}).get(metric)
    return {
        "realized": None if realized is None else realized["value"],
        "estimated": None if estimated is None else estimated["value"],
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
