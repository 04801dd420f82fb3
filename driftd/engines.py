"""Builders of the engines the jobs run, each from the config (and the reference).

The composition root (:class:`driftd.app.App`) calls each once; everything an engine
needs is computed before it is constructed.
"""

from __future__ import annotations

from datetime import datetime
from typing import TYPE_CHECKING

from driftd.config import Config
from driftd.errors import ConfigError
from driftd.reference import Reference

if TYPE_CHECKING:
    from alerts.sinks import Sink
    from monitor.ingest import Source
    from monitor.performance import PerformanceEngine
    from monitor.records import FeatureType
    from monitor.review import ReviewQueue
    from monitor.statistics import StatisticsEngine
    from storage.performance import PerformanceRepository
    from storage.review import ReviewRepository
    from storage.statistics import StatisticsRepository


def statistics_engine(
    config: Config, reference: Reference, repository: StatisticsRepository
) -> StatisticsEngine:
    from monitor.statistics import DriftSettings, StatisticsEngine

    drift = config.drift
    settings = DriftSettings(
        method=drift.method,
        threshold=drift.threshold,
        mode=drift.thresholds,
        min_rows=drift.min_rows,
        false_alarm_rate=drift.false_alarm_rate,
        drift_share=drift.drift_share,
        columns={n: (c.method, c.threshold) for n, c in drift.columns.items()},
        importance=drift.importance,
        multivariate=drift.multivariate,
    )
    return StatisticsEngine(
        repository=repository,
        model=config.model.name,
        profile=reference.profile(repository),
        settings=settings,
        sample_size=drift.sample_size,
    )


def performance_engine(
    config: Config, reference: Reference, repository: PerformanceRepository, *, now: datetime
) -> PerformanceEngine:
    """Realized performance, CBPE estimates and detectors; the reference's labelled
    rows (``reference.target``, with ``score_column``/``prediction_column`` when given)
    set the baseline and calibrate the estimator."""
    import numpy as np

    from monitor.concept.estimate import CBPE
    from monitor.performance import PerformanceEngine, PerformanceSettings, normalize
    from storage.rows import LabelledRow

    c, p = config, config.performance
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

    def engine(**known: object) -> PerformanceEngine:
        return PerformanceEngine(
            repository=repository,
            model=c.model.name,
            settings=settings,
            **known,  # type: ignore[arg-type]
        )

    spec = c.reference
    if spec is None or spec.target is None:
        return engine()
    frame = reference.frame()
    if spec.target not in frame:
        raise ConfigError(f"reference.target: no column {spec.target!r} in the reference")
    labels = [normalize(v) for v in frame[spec.target].tolist()]
    positive = sorted(set(labels), key=str)[-1] if c.model.task == "binary" else 1
    scores = frame[spec.score_column].to_numpy(float) if spec.score_column else None
    if spec.prediction_column:
        predictions = frame[spec.prediction_column].tolist()
    elif scores is not None:
        predictions = [int(s >= c.model.threshold) for s in scores]
    else:  # no model outputs on the reference: no baseline to compare to
        return engine(reference_labels=labels, positive=positive)
    rows = [
        LabelledRow(str(i), now, pred, None if scores is None else scores[i], y)
        for i, (pred, y) in enumerate(zip(predictions, labels, strict=True))
    ]
    baseline = engine(positive=positive).realized(rows)
    estimator = None
    if c.model.task == "binary" and scores is not None:
        cost = {"fn": p.cost.fn, "fp": p.cost.fp} if p.cost.fn or p.cost.fp else None
        positives = np.array([y == positive for y in labels], dtype=int)
        estimator = CBPE(threshold=c.model.threshold, cost=cost).fit(scores, positives)
    return engine(
        reference=baseline, estimator=estimator, positive=positive, reference_labels=labels
    )


def review_queue(config: Config, repository: ReviewRepository) -> ReviewQueue:
    """The review queue: misclassified rows once labelled, low-confidence and
    out-of-distribution rows before."""
    from monitor.review import ReviewQueue, ReviewSettings

    c = config
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
    return ReviewQueue(repository, settings)


def sink(config: Config) -> Sink:
    """Where alerts go: Slack with a bot token and a channel, else a Slack webhook,
    else the console (log)."""
    from alerts.sinks import ConsoleSink, SlackSink, WebhookSink, web_clients

    slack, secrets = config.alerts.slack, config.secrets
    if slack.channel and secrets.slack_bot_token is not None:
        client, poster = web_clients(
            secrets.slack_bot_token.get_secret_value(),
            base_url=slack.base_url,
            timeout=slack.timeout,
        )
        return SlackSink(client=client, poster=poster, channel=slack.channel)
    if secrets.slack_webhook_url is not None:
        return WebhookSink(secrets.slack_webhook_url.get_secret_value(), timeout=slack.timeout)
    return ConsoleSink()


def sources(config: Config, schema: dict[str, FeatureType]) -> list[Source]:
    """The configured sources, named (``predictions``, ``predictions-2``, ...)."""
    from monitor.ingest import Source
    from monitor.records import RecordSpec

    out = []
    for kind in ("predictions", "labels"):
        for i, sc in enumerate(getattr(config.sources, kind)):
            name = sc.name or (kind if i == 0 else f"{kind}-{i + 1}")
            spec = RecordSpec(fields=config.fields_for(sc), schema=schema)
            out.append(Source(name, kind, tuple(sc.paths), sc.format, spec))
    return out
