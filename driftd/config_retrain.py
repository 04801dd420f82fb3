"""The ``retrain:`` and ``registry:`` config sections, and the registry built from them.

```yaml
retrain:
  mode: suggest              # suggest (default: only alert) or auto (train)
  triggers:
    drift_windows: 3         # dataset drift held this many consecutive windows
    realized_below: {roc_auc: 0.80}
    estimated_below: {roc_auc: 0.78}
    confirm_estimates: false # estimated drop must be confirmed by the labels so far
    detections: false        # a concept-drift detection (ADWIN, Page-Hinkley, ...)
    schedule: "0 3 * * 1"    # cron, UTC
  cooldown: 1d
  min_new_labels: 1000
  lookback: 30d              # production rows the training set may take
  test_window: 1d            # the final test window (the latest matured rows), touched once
  trainer: {kind: sklearn, seed: 0, max_epochs: 50}
  gates: {metric: roc_auc, min_delta: 0.0, slices: [country], cost: true}
registry:
  tracking_uri: null         # default sqlite:///<workspace>/mlflow.db
  name: null                 # default model.name
```
"""

from __future__ import annotations

from datetime import timedelta
from typing import TYPE_CHECKING, Literal

from pydantic import Field, field_validator, model_validator

from driftd.config_base import Section
from driftd.config_base import duration as _duration

if TYPE_CHECKING:
    from driftd.config import Config
    from retrain.registry import Registry
    from retrain.triggers import Policy
    from storage.store import Store


def _metric(name: str) -> str:
    from driftd.config_sections import METRICS

    if name not in METRICS:
        raise ValueError(f"unknown metric {name!r}; choose from {', '.join(METRICS)}")
    return name


class TriggersConfig(Section):
    drift_windows: int | None = Field(3, ge=1, le=10_000)  # None: drift does not trigger
    realized_below: dict[str, float] = {}
    estimated_below: dict[str, float] = {}
    confirm_estimates: bool = False
    detections: bool = False
    schedule: str | None = None  # crontab, UTC

    @field_validator("realized_below", "estimated_below")
    @classmethod
    def _known_metrics(cls, v: dict[str, float]) -> dict[str, float]:
        for name in v:
            _metric(name)
        return v

    @field_validator("schedule")
    @classmethod
    def _cron(cls, v: str | None) -> str | None:
        if v is not None:
            from monitor.crontab import cron_trigger

            try:
                cron_trigger(v)
            except ValueError as exc:
                raise ValueError(f"cron {v!r}: {exc}") from None
        return v


class TrainerConfig(Section):
    kind: Literal["keras", "sklearn", "custom"] = "sklearn"
    entry_point: str | None = None  # custom: "package.module:function"
    seed: int = 0
    max_epochs: int = Field(50, ge=1, le=10_000)

    @model_validator(mode="after")
    def _entry_point(self) -> TrainerConfig:
        if self.kind == "custom":
            module, _, function = (self.entry_point or "").partition(":")
            if not module or not function:
                raise ValueError(
                    "kind custom needs entry_point 'package.module:function'"
                    f" (got {self.entry_point!r})"
                )
        elif self.entry_point is not None:
            raise ValueError(f"entry_point is only for kind custom, not {self.kind!r}")
        return self


class GatesConfig(Section):
    metric: Literal["roc_auc", "accuracy", "recall"] = "roc_auc"  # the primary metric
    min_value: float | None = None  # the candidate's metric must reach this
    min_delta: float = 0.0  # and beat the champion's by this much (paired test)
    baseline_margin: float = Field(0.0, ge=0)  # and beat a trivial baseline by this much
    slices: list[str] = []  # columns whose every value must not regress
    slice_tolerance: float = Field(0.02, ge=0)
    cost: bool = True  # also require a cost at the serving threshold no higher


class RetrainConfig(Section):
    mode: Literal["suggest", "auto"] = "suggest"  # nothing trains until the user opts in
    triggers: TriggersConfig = TriggersConfig()
    cooldown: timedelta = timedelta(days=1)
    min_new_labels: int = Field(1000, ge=0)
    lookback: timedelta = timedelta(days=30)
    test_window: timedelta = timedelta(days=1)  # the final test: the latest matured rows
    trainer: TrainerConfig = TrainerConfig()
    gates: GatesConfig = GatesConfig()

    _parse = field_validator("cooldown", "lookback", "test_window", mode="before")(
        lambda cls, v: _duration(v)
    )

    def policy(self) -> Policy:
        """The trigger policy :func:`retrain.triggers.decide` applies."""
        from retrain.triggers import Policy

        t = self.triggers
        return Policy(
            mode=self.mode,
            drift_windows=t.drift_windows,
            realized_below=dict(t.realized_below),
            estimated_below=dict(t.estimated_below),
            confirm_estimates=t.confirm_estimates,
            detections=t.detections,
            schedule=t.schedule,
            cooldown=self.cooldown,
            min_new_labels=self.min_new_labels,
        )


class RegistryConfig(Section):
    tracking_uri: str | None = None  # default: sqlite:///<workspace>/mlflow.db
    name: str | None = Field(None, min_length=1, max_length=200)  # default: model.name


def tracking_uri(config: Config) -> str:
    return config.registry.tracking_uri or f"sqlite:///{config.workspace / 'mlflow.db'}"


def build_registry(config: Config, store: Store) -> Registry:
    """The registry of ``config``'s model: MLflow at ``registry.tracking_uri`` (default:
    a SQLite store in the workspace, artifacts under ``<workspace>/mlartifacts``)."""
    from retrain.registry import Registry
    from storage.models import ModelRepository

    uri = tracking_uri(config)
    embedded = uri.startswith("sqlite:")
    return Registry(
        name=config.registry.name or config.model.name,
        tracking_uri=uri,
        repository=ModelRepository(store),
        artifact_location=(config.workspace / "mlartifacts").as_uri() if embedded else None,
        scratch=config.workspace / "tmp",
    )
