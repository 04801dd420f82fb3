"""The ``serve:`` section of driftd.yaml: how ``driftd serve`` listens, limits requests
and writes its prediction log. The split is ``experiment.challenger_share``
(:mod:`driftd.config_experiment`), shared with the A/B analysis.

Relative paths are relative to the config file's directory, like every path in the
config (:meth:`ServeConfig.resolved`).
"""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

Alias = Literal["champion", "challenger"]


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


def _seconds(value: Any) -> Any:
    if isinstance(value, str):
        from monitor.windows import parse_duration

        return parse_duration(value)
    return value


class ServeLogConfig(_Section):
    """The prediction log: JSON Lines in driftd's contract, one new file per start and
    per rotation, named ``<stem>-<UTC time>-<nnnn><suffix>`` next to ``path``."""

    path: Path = Path("logs/predictions.jsonl")
    max_bytes: int = Field(64 << 20, ge=4096)  # rotate when a file would outgrow this
    hourly: bool = True  # rotate at each new UTC hour
    # flush every record to disk before answering (fdatasync): a served prediction
    # survives a power cut; without it, it survives a crash of the process only
    fsync: bool = True


class ServeConfig(_Section):
    """``driftd serve``: the reference prediction service."""

    host: str = "127.0.0.1"
    port: int = Field(8080, ge=0, le=65535)
    # moved to experiment.challenger_share (one split for serving and the A/B analysis);
    # kept only to refuse it with a message that says where it went
    challenger_share: float | None = Field(None, exclude=True)
    max_body_bytes: int = Field(64 << 10, ge=256, le=64 << 20)  # larger requests: 413
    reload_interval: timedelta = timedelta(seconds=5)  # how often alias moves are looked for
    # model files by alias (scikit-learn pickles or joblib files, trusted: loading runs
    # their code); empty: the registry's aliases
    models: dict[Alias, Path] = {}
    log: ServeLogConfig = ServeLogConfig()

    _parse = field_validator("reload_interval", mode="before")(lambda cls, v: _seconds(v))

    @field_validator("reload_interval")
    @classmethod
    def _positive(cls, v: timedelta) -> timedelta:
        if v <= timedelta(0):
            raise ValueError("must be a positive duration such as 5s")
        return v

    @field_validator("challenger_share")
    @classmethod
    def _moved(cls, v: float | None) -> float | None:
        if v is not None:
            raise ValueError(
                "moved to experiment.challenger_share: one split for driftd serve and the "
                "A/B analysis, so the two cannot disagree"
            )
        return v

    @field_validator("models")
    @classmethod
    def _champion_first(cls, v: dict[Alias, Path]) -> dict[Alias, Path]:
        if v and "champion" not in v:
            raise ValueError("name the champion's file (a challenger alone serves nothing)")
        return v

    def resolved(self, base: Path) -> ServeConfig:
        """Paths made absolute against ``base`` (the config file's directory)."""
        return self.model_copy(
            update={
                "models": {alias: (base / p).resolve() for alias, p in self.models.items()},
                "log": self.log.model_copy(update={"path": (base / self.log.path).resolve()}),
            }
        )
