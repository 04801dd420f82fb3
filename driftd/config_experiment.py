"""The ``experiment:`` section: the A/B split, the sequential analysis, the promotion
policy and the bake period after a promotion.

``challenger_share`` is the one place the split is configured: ``driftd serve`` routes
that share of request ids to the challenger, and the A/B analysis checks the served
counts against the same share, so the two cannot disagree. Teams with their own serving
read it (and the phase) from ``driftd ab status --json``.
"""

from __future__ import annotations

from datetime import timedelta
from typing import TYPE_CHECKING, Literal

from pydantic import Field, field_validator, model_validator

from driftd.config_base import Section
from driftd.config_base import duration as _duration
from driftd.config_sections import METRICS as PERFORMANCE_METRICS
from monitor.ab.metrics import METRICS as AB_METRICS

if TYPE_CHECKING:
    from driftd.config import Config
    from monitor.ab.analysis import Settings


def _ab_metric(v: str) -> str:
    if v not in AB_METRICS:
        raise ValueError(f"unknown A/B metric {v!r}; choose from {', '.join(sorted(AB_METRICS))}")
    return v


def _performance_metric(v: str | None) -> str | None:
    if v is not None and v not in PERFORMANCE_METRICS:
        raise ValueError(
            f"unknown performance metric {v!r}; choose from {', '.join(PERFORMANCE_METRICS)}"
        )
    return v


# the performance metric (realized and estimated) that watches an A/B metric in the bake
BAKE_METRIC = {
    "accuracy": "accuracy",
    "error_rate": "accuracy",
    "fpr": "fpr",
    "fnr": "fnr",
    "cost": "cost",
    "abs_error": "mae",
}


class GuardrailConfig(Section):
    metric: str
    margin: float = Field(0.0, ge=0)  # tolerated worsening, in the metric's units

    _known = field_validator("metric")(lambda cls, v: _ab_metric(v))


class BakeWatchConfig(Section):
    metric: str
    max_drop: float = Field(0.0, ge=0)  # tolerated worsening, in the metric's units

    _known = field_validator("metric")(lambda cls, v: _performance_metric(v))


class BakeConfig(Section):
    """After a promotion: watch the new champion for ``period``; roll back to
    ``previous`` on a breach (see docs/ab-testing.md, "Bake period")."""

    period: timedelta = timedelta(days=2)
    # the performance metric watched; default: the A/B metric's counterpart
    metric: str | None = None
    max_drop: float = Field(0.02, ge=0)  # below the A/B's figure for the new champion
    guardrails: list[BakeWatchConfig] = []  # more performance metrics, each with its max_drop
    # act on CBPE estimates too, before labels arrive; off by default: CBPE is calibrated
    # on the reference's (the old model's) scores, so a new model's estimate is biased
    estimated: bool = False
    min_rows: int = Field(200, ge=1)  # rows behind a reading before it can roll back
    confidence: float = Field(0.95, gt=0.5, lt=1)

    _parse = field_validator("period", mode="before")(lambda cls, v: _duration(v))

    _known = field_validator("metric")(lambda cls, v: _performance_metric(v))


class ExperimentConfig(Section):
    enabled: bool = True
    # the share of request ids the challenger serves during the A/B test: driftd serve
    # uses it, and the analysis checks the served counts against it
    challenger_share: float = Field(0.1, gt=0, lt=1)
    metric: str = "accuracy"  # the primary A/B metric (monitor.ab.metrics)
    alpha: float = Field(0.05, gt=0, lt=1)
    guardrails: list[GuardrailConfig] = []
    min_sample: int = Field(1000, ge=1)  # labelled rows per arm before any decision
    max_duration: timedelta = timedelta(days=14)  # then roll back if undecided
    tuning_rows: int | None = Field(None, ge=1)  # default: 10 x min_sample
    srm_threshold: float = Field(0.001, gt=0, lt=1)
    srm_method: Literal["chi-square", "sequential"] = "chi-square"
    policy: Literal["manual", "auto"] = "manual"
    bake: BakeConfig = BakeConfig()

    _parse = field_validator("max_duration", mode="before")(lambda cls, v: _duration(v))

    _known = field_validator("metric")(lambda cls, v: _ab_metric(v))

    @model_validator(mode="after")
    def _positive_duration(self) -> ExperimentConfig:
        for name in ("max_duration",):
            if getattr(self, name) <= timedelta(0):
                raise ValueError(f"{name} must be a positive duration such as 14d")
        if self.bake.period < timedelta(0):
            raise ValueError("bake.period must not be negative (0: no bake period)")
        return self

    @property
    def split(self) -> dict[str, float]:
        return {"champion": 1.0 - self.challenger_share, "challenger": self.challenger_share}

    @property
    def bake_metric(self) -> str:
        return self.bake.metric or BAKE_METRIC[self.metric]

    def settings(self) -> Settings:
        """The analysis' settings (:class:`monitor.ab.analysis.Settings`)."""
        from monitor.ab.analysis import Guardrail, Settings

        return Settings(
            split=self.split,
            metric=self.metric,
            alpha=self.alpha,
            guardrails=tuple(Guardrail(g.metric, g.margin) for g in self.guardrails),
            min_sample=self.min_sample,
            max_duration=self.max_duration,
            tuning_rows=self.tuning_rows,
            srm_threshold=self.srm_threshold,
            srm_method=self.srm_method,
        )


def experiment_config(config: Config) -> ExperimentConfig:
    """The ``experiment:`` section of ``config`` (its defaults when absent)."""
    section = config.section("experiment")
    return section if isinstance(section, ExperimentConfig) else ExperimentConfig()


__all__ = [
    "BAKE_METRIC",
    "BakeConfig",
    "BakeWatchConfig",
    "ExperimentConfig",
    "GuardrailConfig",
    "experiment_config",
]
