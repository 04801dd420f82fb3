"""The ``business`` config section: what the model's outcomes mean and cost, for the
weekly report (:mod:`driftd.jobs.report`)."""

from __future__ import annotations

from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import BaseModel, ConfigDict, Field, field_validator


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class OutcomeCosts(_Section):
    """Money per outcome, in ``currency``; negative for a gain. ``fp`` and ``fn`` default
    to ``performance.cost``'s; ``tp`` (e.g. the cost of reviewing a caught fraud) and
    ``tn`` to 0."""

    tp: float = 0.0
    fp: float | None = None
    fn: float | None = None  # the fixed part of a miss; `value_column` adds the row's value
    tn: float = 0.0


class BusinessSettings(_Section):
    unit: str = Field("prediction", min_length=1, max_length=50)  # e.g. transaction
    units: str | None = Field(None, max_length=50)  # plural; default: unit + "s"
    positive: str = Field("positive", min_length=1, max_length=50)  # e.g. fraud
    negative: str | None = Field(None, max_length=50)  # plural, e.g. "good transactions"
    currency: str | None = Field(None, min_length=1, max_length=10)  # default: performance's
    cost: OutcomeCosts = OutcomeCosts()
    # a feature holding what a missed positive is worth (e.g. amount): added to cost.fn
    value_column: str | None = None
    review_capacity: float | None = Field(None, gt=0)  # rows a day that can be reviewed
    timezone: str = "UTC"  # days, weeks and the cron below are in this zone
    week_start: str = Field("monday", pattern="^(monday|sunday)$")
    cron: str = "0 8 * * 1"  # when the report is due (crontab: Monday 08:00, 0/7 = Sunday)
    # categorical features whose values split the cost change; default: every
    # categorical and boolean feature of the schema
    segments: list[str] | None = None
    thresholds: int = Field(99, ge=3, le=999)  # what-if thresholds: 0.01 ... 0.99

    @field_validator("timezone")
    @classmethod
    def _zone(cls, v: str) -> str:
        try:
            ZoneInfo(v)
        except (ZoneInfoNotFoundError, ValueError):
            raise ValueError(f"unknown time zone {v!r} (use an IANA name: Europe/Berlin)") from None
        return v

    @field_validator("cron")
    @classmethod
    def _cron(cls, v: str) -> str:
        from driftd.report.weeks import cron_trigger

        try:
            cron_trigger(v, "UTC")
        except ValueError as exc:
            raise ValueError(f"cron {v!r}: {exc}") from None
        return v

    @property
    def plural(self) -> str:
        return self.units or f"{self.unit}s"

    @property
    def negative_name(self) -> str:
        return self.negative or f"good {self.plural}"
