"""``driftd status``: one document of what driftd knows about its model."""

from __future__ import annotations

from datetime import datetime
from typing import TYPE_CHECKING, Any

from driftd.display import experiment_summary, performance_summary, run_dict, window_summary
from storage.store import redact_url

if TYPE_CHECKING:
    from driftd.app import App


def status(app: App, limit: int = 50, since: datetime | None = None) -> dict[str, Any]:
    """The latest ``limit`` windows (those starting at or after ``since``) and the rest."""
    model = app.model
    windows = app.status_queries.windows(model, limit, since=since)
    starts = [w["start"] for w in windows]
    results = {r.start: r for r in app.window_results(starts=starts)}
    performance = {
        r.start: r
        for r in app.performance_repository.windows(model, len(starts) or 1, starts=starts)
    }
    review = app.review_repository.counts(model)
    for window in windows:
        window["statistics"] = window_summary(results.get(window["start"]))
        window["performance"] = performance_summary(performance.get(window["start"]))
        window["review"] = review["windows"].get(window["start"])
    return {
        "model": model,
        "database": redact_url(app.store.url),
        "counts": app.status_queries.counts(model),
        "ingestion": app.status_queries.ingestion(model),
        "windows": windows,
        "jobs": {job.name: run_dict(app.runs.last(job.name)) for job in app.jobs()},
        "detections": [d.to_dict() for d in app.performance_repository.detections(model, 20)],
        "review": review["states"],
        "alerts": {
            "open": [
                {"rule": i.rule, "scope": i.scope, "severity": i.severity, "since": i.opened_at}
                for i in app.alert_repository.incidents(model=model, state="open")
            ],
            "outbox": app.alert_repository.outbox_counts(),
        },
        "experiment": experiment(app),
    }


def experiment(app: App) -> dict[str, Any] | None:
    """The challenger's experiment on trial (else the latest one): its phase and the
    shadow comparison."""
    from storage.experiment_state import ExperimentStates

    states = ExperimentStates(app.store)
    name = app.config.registry.name or app.model  # experiments are kept by registry name
    found = states.active(name) or next(iter(states.history(name, limit=1)), None)
    return experiment_summary(found)
