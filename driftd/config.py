"""driftd's configuration: one YAML file parsed into one immutable, typed tree.

:func:`load` is the only place that reads the file and the environment. Relative paths
in the file are resolved against the file's own directory. An invalid file is refused
with a :class:`~driftd.errors.ConfigError` whose message names each bad key and value.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from datetime import UTC, timedelta
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    SecretStr,
    ValidationError,
    field_validator,
    model_validator,
)

from driftd.config_base import Section
from driftd.config_base import duration as _duration
from driftd.config_retrain import RegistryConfig, RetrainConfig
from driftd.config_sections import (
    AlertsConfig,
    HealthConfig,
    PerformanceConfig,
    ReviewConfig,
)
from driftd.errors import ConfigError
from driftd.serve.config import ServeConfig
from monitor.records import FeatureType, Fields
from monitor.windows import RowWindows, TimeWindows, Windows

Task = Literal["binary", "multiclass", "regression"]
Format = Literal["jsonl", "csv", "parquet"]


class FieldNames(Section):
    """Where each contract field is found in a record (defaults follow the contract)."""

    id: str = "id"
    ts: str = "ts"
    features: str = "features"
    prediction: str = "prediction"
    score: str = "score"
    probabilities: str = "probabilities"
    model_version: str = "model_version"
    variant: str = "variant"
    label: str = "label"


class ModelConfig(Section):
    name: str = Field(min_length=1, max_length=200)
    task: Task = "binary"
    fields: FieldNames = FieldNames()
    threshold: float = Field(0.5, ge=0, le=1, description="serving decision threshold")


class ReferenceConfig(Section):
    path: Path
    target: str | None = None
    model_version: str = "reference"  # the model version the reference profile is for
    # the model's outputs on the reference rows (e.g. a validation set), for prediction
    # drift: the positive-class score and the served prediction
    score_column: str | None = None
    prediction_column: str | None = None


class SourceConfig(Section):
    paths: list[str] = Field(min_length=1)
    format: Format = "jsonl"
    name: str | None = None
    columns: FieldNames | None = None  # column mapping for this source (CSV, Parquet)


class SourcesConfig(Section):
    predictions: list[SourceConfig] = Field(min_length=1)
    labels: list[SourceConfig] = []


class WindowsConfig(Section):
    """Time windows of ``size`` (default 1h), or windows of ``rows`` predictions in
    arrival order: one of the two."""

    size: timedelta | None = timedelta(hours=1)
    rows: int | None = Field(None, ge=1, strict=True)  # strict: true is no row count

    _parse = field_validator("size", mode="before")(
        lambda cls, v: None if v is None else _duration(v)
    )

    @model_validator(mode="before")
    @classmethod
    def _rows_replace_size(cls, data: Any) -> Any:
        if isinstance(data, dict) and data.get("rows") is not None and "size" not in data:
            return {**data, "size": None}  # the default size does not apply
        return data

    @field_validator("size")
    @classmethod
    def _whole_seconds(cls, v: timedelta | None) -> timedelta | None:
        if v is not None and (v <= timedelta(0) or v % timedelta(seconds=1)):
            raise ValueError("must be a positive whole number of seconds")
        return v

    @model_validator(mode="after")
    def _one_kind(self) -> WindowsConfig:
        if (self.size is None) == (self.rows is None):
            both = "" if self.size is None else ", not both"
            raise ValueError(
                f"give 'size' (time windows, e.g. 1h) or 'rows' (windows of that many"
                f" predictions){both}"
            )
        return self

    def build(self) -> Windows:
        """The windows ingestion assigns predictions to."""
        if self.rows is not None:
            return RowWindows(self.rows)
        assert self.size is not None  # one of the two, checked above
        return TimeWindows(self.size)


class StorageConfig(Section):
    url: str | None = None  # default: sqlite:///<workspace>/driftd.db

    @field_validator("url")
    @classmethod
    def _known_backend(cls, v: str | None) -> str | None:
        if v is not None and not v.startswith(("sqlite:", "postgresql:", "postgresql+")):
            raise ValueError("must be a sqlite:/// or postgresql:// URL")
        return v


class IngestConfig(Section):
    max_line_bytes: int = Field(1 << 20, ge=1024)
    chunk_rows: int = Field(20_000, ge=1, le=1_000_000)


class ColumnDriftConfig(Section):
    method: str = "auto"
    threshold: float | Literal["calibrated"] | None = None  # None: the drift section's

    @field_validator("method")
    @classmethod
    def _known_method(cls, v: str) -> str:
        return _check_method(v)


def _check_method(name: str) -> str:
    from monitor.drift.methods import METHODS

    if name != "auto" and name not in METHODS:
        raise ValueError(f"unknown method {name!r}; choose auto or one of {', '.join(METHODS)}")
    return name


class DriftConfig(Section):
    method: str = "auto"  # Evidently's default choice per column
    threshold: float | Literal["calibrated"] = "calibrated"
    # "calibrated": per column, the null quantile of its score at the window's size for
    # false_alarm_rate, with minimum effects; the dataset verdict controls the
    # false-discovery rate over columns. "evidently": Evidently's fixed thresholds and
    # drift-share rule (decisions equal Evidently's). See monitor/drift/thresholds.py.
    thresholds: Literal["calibrated", "evidently"] = "calibrated"
    false_alarm_rate: float = Field(0.01, gt=0, lt=0.5)  # target per column and window
    # fewest rows a window needs to be judged; fewer: "insufficient", shown, never
    # alerted (None: per method, 20-50 rows, monitor/drift/nulls.py MIN_ROWS)
    min_rows: int | None = Field(None, ge=1)
    drift_share: float = Field(0.5, gt=0, le=1)  # dataset drift: share of drifted columns
    # optional importance per feature (e.g. the model's feature importances): the share
    # of drifted columns is weighted by it; features not named weigh 1
    importance: dict[str, float] = {}
    sample_size: int = Field(5000, ge=100, le=1_000_000)  # rows kept per window
    # the multivariate detectors on the row samples (domain classifier, PCA reconstruction
    # error): changes no single column shows, for ~1 s per window of 1,000+ rows
    multivariate: bool = True
    columns: dict[str, ColumnDriftConfig] = {}
    report_rows: int = Field(50_000, ge=100)  # rows of each side in the HTML detail report
    # Evidently HTML detail reports: "episode" = the first window of each run of windows
    # with dataset drift; "all" = every such window; "none"
    reports: Literal["episode", "all", "none"] = "episode"

    _method = field_validator("method")(lambda cls, v: _check_method(v))

    @field_validator("importance")
    @classmethod
    def _non_negative(cls, v: dict[str, float]) -> dict[str, float]:
        bad = {k: w for k, w in v.items() if not w >= 0}
        if bad:
            raise ValueError(f"importance weights must be >= 0: {bad}")
        return v


class JobSchedule(Section):
    interval: timedelta | None = None
    cron: str | None = None

    _parse = field_validator("interval", mode="before")(
        lambda cls, v: None if v is None else _duration(v)
    )

    @model_validator(mode="after")
    def _one_trigger(self) -> JobSchedule:
        if (self.interval is None) == (self.cron is None):
            raise ValueError("give exactly one of 'interval' or 'cron'")
        if self.cron is not None:
            from monitor.crontab import cron_trigger

            try:
                cron_trigger(self.cron)
            except ValueError as exc:
                raise ValueError(f"cron {self.cron!r}: {exc}") from None
        return self

    def trigger(self) -> Any:
        """The APScheduler trigger (UTC): interval triggers fire first at start."""
        from apscheduler.triggers.interval import IntervalTrigger

        from monitor.crontab import cron_trigger

        if self.cron is not None:
            return cron_trigger(self.cron)
        assert self.interval is not None  # one of the two, checked above
        return IntervalTrigger(seconds=int(self.interval.total_seconds()), timezone=UTC)


class ScheduleConfig(Section):
    """When each job runs: ``schedule.<job>: {interval: 5m}`` or ``{cron: "0 8 * * 1"}``
    for any registered job (see :mod:`driftd.jobs`); a job not named keeps its own
    default. ``misfire_grace``: how late a missed run may still start."""

    misfire_grace: timedelta = timedelta(minutes=30)
    jobs: dict[str, JobSchedule] = {}

    _parse = field_validator("misfire_grace", mode="before")(lambda cls, v: _duration(v))

    @model_validator(mode="before")
    @classmethod
    def _job_names(cls, data: Any) -> Any:
        if not isinstance(data, dict):
            return data
        jobs = {k: v for k, v in data.items() if k != "misfire_grace"}
        if not jobs:
            return data
        from driftd.jobs import registered

        known = registered()
        unknown = sorted(set(jobs) - set(known))
        if unknown:
            raise ValueError(
                f"no job named {', '.join(map(repr, unknown))}; jobs: {', '.join(sorted(known))}"
            )
        rest = {"misfire_grace": data["misfire_grace"]} if "misfire_grace" in data else {}
        return {**rest, "jobs": jobs}

    def of(self, job: str, default: JobSchedule) -> JobSchedule:
        """The schedule of ``job``: configured, else its default."""
        return self.jobs.get(job, default)


class Secrets(BaseModel):
    """Read from the environment by :func:`load`, never from the file; never shown."""

    model_config = ConfigDict(frozen=True)

    slack_bot_token: SecretStr | None = None  # SLACK_BOT_TOKEN
    slack_webhook_url: SecretStr | None = None  # SLACK_WEBHOOK_URL

    def values(self) -> list[str]:
        """The secret strings, for log redaction."""
        return [
            s.get_secret_value()
            for s in (self.slack_bot_token, self.slack_webhook_url)
            if s is not None
        ]


class Config(Section):
    """The whole configuration; see ``driftd init`` for a commented example."""

    model: ModelConfig
    sources: SourcesConfig
    reference: ReferenceConfig | None = None
    schema_: dict[str, FeatureType] = Field(default_factory=dict, alias="schema")
    windows: WindowsConfig = WindowsConfig()
    storage: StorageConfig = StorageConfig()
    workspace: Path = Path(".")
    ingest: IngestConfig = IngestConfig()
    drift: DriftConfig = DriftConfig()
    schedule: ScheduleConfig = Field(default_factory=ScheduleConfig)
    health: HealthConfig = HealthConfig()
    alerts: AlertsConfig = AlertsConfig()
    performance: PerformanceConfig = PerformanceConfig()
    review: ReviewConfig = ReviewConfig()
    retrain: RetrainConfig = RetrainConfig()
    registry: RegistryConfig = RegistryConfig()
    serve: ServeConfig = ServeConfig()  # `driftd serve`
    # the sections of registered jobs that add their own (see driftd.jobs), validated
    jobs: dict[str, BaseModel] = Field(default_factory=dict, exclude=True)
    config_path: Path | None = Field(None, exclude=True)
    secrets: Secrets = Field(default_factory=Secrets, exclude=True, repr=False)

    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)

    @property
    def storage_url(self) -> str:
        return self.storage.url or f"sqlite:///{self.workspace / 'driftd.db'}"

    def section(self, name: str) -> BaseModel | None:
        """A job's own config section (see :attr:`driftd.jobs.Job.section`)."""
        return self.jobs.get(name)

    def fields_for(self, source: SourceConfig) -> Fields:
        names = source.columns or self.model.fields
        return Fields(**names.model_dump())


def _location(loc: tuple[int | str, ...]) -> str:
    if loc[:2] == ("schedule", "jobs"):  # a job's schedule is written schedule.<job>
        loc = ("schedule", *loc[2:])
    return ".".join("schema" if p == "schema_" else str(p) for p in loc) or "(top level)"


def format_errors(exc: ValidationError, prefix: tuple[str, ...] = ()) -> str:
    lines = []
    for err in exc.errors():
        where = _location((*prefix, *err["loc"]))
        value = err.get("input")
        # an unknown key's value is not echoed: it may be a secret put in the wrong place
        hidden = isinstance(value, dict | list) or err["type"] == "extra_forbidden"
        shown = "" if hidden else f" (got {value!r})"
        message = err["msg"].removeprefix("Value error, ")
        lines.append(f"{where}: {message}{shown}")
    return "\n".join(lines)


ENVIRONMENT = {"slack_bot_token": "SLACK_BOT_TOKEN", "slack_webhook_url": "SLACK_WEBHOOK_URL"}


def parse(
    data: Mapping[str, Any],
    *,
    base: Path,
    path: Path | None = None,
    environ: Mapping[str, str] | None = None,
) -> Config:
    """A :class:`Config` from already-parsed YAML; relative paths resolve against ``base``;
    secrets come from ``environ`` (default: none)."""
    where = f"{path}: " if path else ""
    if "secrets" in data:
        raise ConfigError(
            f"{where}invalid configuration\nsecrets: secrets are read from the environment "
            f"({', '.join(ENVIRONMENT.values())}), never from the file"
        )
    environ = environ or {}
    secrets = Secrets(**{k: environ[v] for k, v in ENVIRONMENT.items() if environ.get(v)})
    from driftd.jobs import sections

    own = {name: model for name, model in sections().items() if name not in Config.model_fields}
    problems, jobs = [], {}
    for name, model in own.items():
        try:
            jobs[name] = model.model_validate(data.get(name) or {})
        except ValidationError as exc:
            problems.append(format_errors(exc, prefix=(name,)))
    try:
        config = Config.model_validate(
            {**{k: v for k, v in data.items() if k not in own}, "secrets": secrets, "jobs": jobs}
        )
    except ValidationError as exc:
        problems.insert(0, format_errors(exc))
    if problems:
        raise ConfigError(f"{where}invalid configuration\n" + "\n".join(problems)) from None
    if config.alerts.slack.channel and secrets.slack_bot_token is None:
        raise ConfigError(
            f"{where}invalid configuration\nalerts.slack.channel: "
            f"{config.alerts.slack.channel!r} is set but SLACK_BOT_TOKEN is not in the environment"
        )
    workspace = (base / config.workspace).resolve()
    reference = config.reference
    if reference is not None:
        reference = reference.model_copy(update={"path": (base / reference.path).resolve()})
    sources = config.sources.model_copy(
        update={
            kind: [
                s.model_copy(update={"paths": [str(base / os.path.expanduser(p)) for p in s.paths]})
                for s in getattr(config.sources, kind)
            ]
            for kind in ("predictions", "labels")
        }
    )
    storage = config.storage
    if storage.url and storage.url.startswith("sqlite:///") and storage.url != "sqlite:///:memory:":
        db = Path(storage.url.removeprefix("sqlite:///"))
        if not db.is_absolute():
            storage = storage.model_copy(update={"url": f"sqlite:///{(base / db).resolve()}"})
    return config.model_copy(
        update={
            "workspace": workspace,
            "reference": reference,
            "sources": sources,
            "storage": storage,
            "serve": config.serve.resolved(base),
            "config_path": path,
        }
    )


def load(path: str | Path) -> Config:
    """Read and validate a driftd YAML file."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise ConfigError(f"cannot read config {path}: {exc.strerror}") from None
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise ConfigError(f"{path}: not valid YAML: {exc}") from None
    if not isinstance(data, dict):
        raise ConfigError(f"{path}: expected a mapping of sections at the top level")
    return parse(data, base=path.resolve().parent, path=path, environ=os.environ)
