"""The sections of driftd's config about what the model costs and how driftd reports:
performance (label delay, metrics, costs, detectors), review, alerts and health."""

from __future__ import annotations

from datetime import timedelta
from typing import Literal

from pydantic import Field, field_validator

from driftd.config_base import Section
from driftd.config_base import duration as _duration


class CostConfig(Section):
    """What one error costs the business, in ``currency`` (for reports, estimates and
    review priority)."""

    fn: float = Field(0.0, ge=0)  # a missed positive (e.g. an undetected fraud)
    fp: float = Field(0.0, ge=0)  # a false alarm (e.g. a blocked good customer)
    currency: str = "USD"


class PerformanceConfig(Section):
    # a window's labels have matured when its end is this long ago
    label_delay: timedelta = timedelta(days=2)
    min_coverage: float = Field(0.8, ge=0, le=1)  # labelled share below which it is incomplete
    # the metrics whose drop is alerted, realized and estimated (each where available):
    # accuracy, precision, recall, f1, roc_auc, average_precision, log_loss, fnr, fpr;
    # mae, rmse, mape, r2 for regression; estimates also have cost (with performance.cost)
    metrics: list[str] = Field(["roc_auc"], min_length=1)
    tolerance: float = Field(0.02, ge=0)  # drops smaller than this are not alerted
    confidence: float = Field(0.95, gt=0.5, lt=1)
    cost: CostConfig = CostConfig()
    # sequential detectors on the error stream; "ddm" is available but not a default: it
    # raised about one false alarm per 10k predictions on stationary streams in our tests
    detectors: list[Literal["adwin", "ddm", "page_hinkley", "hddm_a"]] = [
        "adwin",
        "page_hinkley",
        "hddm_a",
    ]

    _parse = field_validator("label_delay", mode="before")(lambda cls, v: _duration(v))

    @field_validator("metrics")
    @classmethod
    def _known_metrics(cls, v: list[str]) -> list[str]:
        unknown = [m for m in v if m not in METRICS]
        if unknown:
            raise ValueError(f"unknown metric(s) {unknown}; choose from {', '.join(METRICS)}")
        return v


# what the realized performance and the estimates compute (monitor.concept)
METRICS = (
    "accuracy",
    "precision",
    "recall",
    "f1",
    "roc_auc",
    "average_precision",
    "log_loss",
    "fnr",
    "fpr",
    "cost",
    "mae",
    "rmse",
    "mape",
    "r2",
)


class ReviewConfig(Section):
    per_window: int = Field(50, ge=0, le=100_000)  # at most this many new items per window
    # before labels: scores this close to the decision threshold are low confidence
    margin: float = Field(0.1, ge=0, le=0.5)
    out_of_distribution: bool = True  # queue unseen categories and far out-of-range values


class SlackConfig(Section):
    # a channel name ("#ml-alerts") or id; the bot token comes from SLACK_BOT_TOKEN
    channel: str | None = Field(None, min_length=1, max_length=100)
    base_url: str | None = None  # the Web API's base URL, e.g. behind a proxy
    timeout: int = Field(15, ge=1, le=300)  # seconds per HTTP request


class AlertsConfig(Section):
    slack: SlackConfig = SlackConfig()
    repeat_interval: timedelta = timedelta(hours=4)  # re-notify a still-firing incident
    resolve_after: int = Field(2, ge=1, le=1000)  # clear windows (or runs) to resolve
    min_severity: Literal["info", "warning", "critical"] = "warning"  # weaker: recorded only
    quarantine_rate: float = Field(0.01, gt=0, le=1)  # quarantined share of an ingest run
    min_interval: float = Field(1.0, ge=0, le=60)  # seconds between messages to a channel
    ui_url: str | None = None  # linked from messages when set

    _parse = field_validator("repeat_interval", mode="before")(lambda cls, v: _duration(v))


class HealthConfig(Section):
    max_ingest_age: timedelta = timedelta(minutes=30)
    max_job_runtime: timedelta = timedelta(hours=1)
    max_alert_delay: timedelta = timedelta(minutes=15)  # an alert waiting longer is unhealthy

    _parse = field_validator("max_ingest_age", "max_job_runtime", "max_alert_delay", mode="before")(
        lambda cls, v: _duration(v)
    )
