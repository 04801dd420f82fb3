"""``driftd check``: why this driftd is unhealthy, as sentences; none when healthy."""

from __future__ import annotations

from datetime import datetime
from typing import TYPE_CHECKING

from monitor.windows import format_duration
from storage.errors import DriftdError
from storage.store import redact_url

if TYPE_CHECKING:
    from driftd.app import App


def problems(app: App, now: datetime) -> list[str]:
    """Database reachable and migrated, ingest recent, no failed or stuck job, alerts
    delivered in time."""
    store, health = app.store, app.config.health
    try:
        store.ping()
        revision = store.current_revision()
    except DriftdError as exc:
        return [f"database {redact_url(store.url)} does not answer: {exc}"]
    if revision != store.head_revision():
        return [
            f"database schema is at revision {revision or 'none'}, not "
            f"{store.head_revision()}: start driftd (run, once or ingest) to migrate it"
        ]
    found = []
    last_ok = app.runs.last("ingest", outcome="ok")
    if last_ok is None:
        found.append("ingest has never completed")
    elif last_ok.finished_at and now - last_ok.finished_at > health.max_ingest_age:
        found.append(
            f"last successful ingest finished {format_duration(now - last_ok.finished_at)} ago "
            f"(limit {format_duration(health.max_ingest_age)})"
        )
    found += _sources(app, now)
    for job in app.jobs():
        last = app.runs.last(job.name)
        if last is not None and last.outcome == "failed":
            found.append(f"last {job.name} run ({last.pk}) failed: {last.error}")
    from alerts import health as alerts_health

    found += alerts_health.problems(
        app.alert_repository, app.sink, now, max_delay=health.max_alert_delay
    )
    for run in app.runs.running():
        age = now - run.started_at
        if age > health.max_job_runtime:
            found.append(
                f"job {run.job} (run {run.pk}, pid {run.pid} on {run.host}) has been "
                f"running for {format_duration(age)}"
            )
    return found


def _sources(app: App, now: datetime) -> list[str]:
    """A source whose globs match no file, or that has read nothing new for longer
    than ``health.max_ingest_age``."""
    from monitor.sources import discover

    limit = app.config.health.max_ingest_age
    known = app.status_queries.ingestion(app.model)
    found = []
    for source in app.sources():
        if not discover(source.paths):
            found.append(f"source {source.name}: no file matches {', '.join(source.paths)}")
            continue
        last = (known.get(source.name) or {}).get("last_ingest_at")
        if last is not None and now - last > limit:
            found.append(
                f"source {source.name} has read nothing new for {format_duration(now - last)} "
                f"(limit {format_duration(limit)})"
            )
    return found
