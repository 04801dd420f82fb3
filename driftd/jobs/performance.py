"""The performance job: join labels, compute realized and estimated performance of each
changed window, feed the concept-drift detectors, refresh the review queue, alert."""

from __future__ import annotations

from datetime import timedelta
from typing import TYPE_CHECKING

from driftd.config import Config, JobSchedule
from driftd.jobs.base import Job, JobResult, register

if TYPE_CHECKING:
    from driftd.app import App
    from monitor.results import WindowPerformance


@register
class Performance(Job):
    name = "performance"
    schedule = JobSchedule(interval=timedelta(minutes=15))
    order = 20

    @classmethod
    def enabled(cls, config: Config) -> bool:
        return bool(config.sources.labels)

    def run(self, context: App) -> JobResult:
        from alerts.signals import detector_evaluation, performance_evaluation

        now = context.clock()
        engine = context.performance_engine
        results = engine.update(now)
        stream = engine.feed(now)
        profile = context.statistics_engine.profile if context.config.reference else None
        review = context.review_queue.refresh_windows(
            context.model, sorted(results), profile=profile, now=now
        )
        metrics = context.config.performance.metrics
        evaluations = [performance_evaluation(context.model, r, metrics) for r in results.values()]
        evaluations.append(detector_evaluation(context.model, stream.detections, stream.errors))
        summary = {
            "windows": {
                start.isoformat(): {
                    "state": r.state,
                    "coverage": round(r.coverage, 4),
                    **{metric: _metric(r, metric) for metric in metrics},
                }
                for start, r in sorted(results.items())
            },
            "stream": stream.to_dict(),
            "review": {
                "added": sum(r["added"] for r in review),
                "upgraded": sum(r["upgraded"] for r in review),
            },
        }
        return JobResult(summary, evaluations)


def _metric(result: WindowPerformance, metric: str) -> dict[str, float | None]:
    """A window's realized and estimated value of ``metric`` (None where unknown)."""
    realized = None if result.realized is None else result.realized.metrics.get(metric)
    estimated = None if result.estimated is None else result.estimated.metrics.get(metric)
    return {
        "realized": None if realized is None else realized.value,
        "estimated": None if estimated is None else estimated.value,
    }
