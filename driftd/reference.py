"""The reference table as configured: its feature schema, its checks at start, its
profile.

Features are the configured ``schema:``, or every column of the reference except the
model's own columns (target, score and prediction columns, and the log contract's field
names). :meth:`Reference.check` refuses a setup that cannot work (a missing file, a
misspelled column) with a :class:`~driftd.errors.ConfigError` naming the key and the
value, and returns warnings about columns driftd will treat specially.
"""

from __future__ import annotations

import logging
from functools import cached_property
from typing import TYPE_CHECKING, Any

import pandas as pd

from driftd.errors import ConfigError
from monitor.records import FeatureType

if TYPE_CHECKING:
    from driftd.config import Config, ReferenceConfig
    from monitor.drift.profile import ReferenceProfile
    from storage.statistics import StatisticsRepository

logger = logging.getLogger(__name__)

PREFIX_ROWS = 10_000  # rows read to infer the schema


class Reference:
    def __init__(self, config: Config) -> None:
        self.config = config

    @property
    def spec(self) -> ReferenceConfig:
        if self.config.reference is None:
            raise ConfigError("reference: drift statistics need a reference table")
        return self.config.reference

    def model_columns(self) -> set[str]:
        """Columns that are the model's inputs' neighbours, never features."""
        fields = self.config.model.fields
        names: set[str | None] = {
            fields.id,
            fields.ts,
            fields.prediction,
            fields.score,
            fields.probabilities,
            fields.label,
            fields.model_version,
            fields.variant,
        }
        reference = self.config.reference
        if reference is not None:
            names |= {reference.target, reference.score_column, reference.prediction_column}
        return {n for n in names if n}

    @cached_property
    def schema(self) -> dict[str, FeatureType]:
        """Feature types: from the config, else inferred from the reference table."""
        if self.config.schema_:
            return dict(self.config.schema_)
        if self.config.reference is None:
            return {}
        from monitor.schema import infer_schema

        return infer_schema(self._read(PREFIX_ROWS), exclude=self.model_columns())

    def frame(self) -> pd.DataFrame:
        """The whole reference table, numeric columns as numbers."""
        from monitor.schema import as_schema_types

        return as_schema_types(self._read(None), self.schema)

    def _read(self, rows: int | None) -> pd.DataFrame:
        from monitor.schema import read_table

        path = self.spec.path
        try:
            return read_table(str(path), nrows=rows)
        except FileNotFoundError:
            raise ConfigError(f"reference.path: no file {str(path)!r}") from None
        except (OSError, ValueError) as exc:
            raise ConfigError(f"reference.path: cannot read {str(path)!r}: {exc}") from None

    def check(self) -> list[str]:
        """Refuse a reference that does not fit the config; warn about odd columns."""
        if self.config.reference is None:
            return []
        from monitor.schema import mixed_columns

        spec = self.spec
        frame = self._read(None)
        columns = set(frame.columns)
        for key in ("target", "score_column", "prediction_column"):
            name = getattr(spec, key)
            if name is not None and name not in columns:
                raise ConfigError(
                    f"reference.{key}: no column {name!r} in {spec.path} "
                    f"(columns: {', '.join(map(str, frame.columns[:20]))})"
                )
        missing = [name for name in self.config.schema_ if name not in columns]
        if missing:
            raise ConfigError(
                f"schema: no column {', '.join(map(repr, missing))} in the reference {spec.path}"
            )
        if not self.schema:
            raise ConfigError(f"reference.path: {spec.path} has no feature column")
        if spec.score_column is not None:
            scores = pd.to_numeric(frame[spec.score_column], errors="coerce")
            bad = ~scores.between(0, 1) & frame[spec.score_column].notna()
            if bad.any():
                raise ConfigError(
                    f"reference.score_column: {spec.score_column!r} has {int(bad.sum())} values "
                    "that are not probabilities in [0, 1]"
                )
        if spec.target is not None and frame[spec.target].isna().all():
            raise ConfigError(f"reference.target: column {spec.target!r} has no value")
        notes = mixed_columns(frame, self.schema)
        return [f"reference column {name!r} {note}" for name, note in notes.items()]

    def profile(
        self, repository: StatisticsRepository, *, rebuild: bool = False
    ) -> ReferenceProfile:
        """The stored reference profile, with its calibrated null distributions; fitted
        (and stored, logged) when missing, outdated or asked for (see
        :func:`monitor.drift.stored.load_profile`)."""
        from monitor.drift.stored import load_profile

        spec = self.spec
        st = spec.path.stat() if spec.path.exists() else None
        fingerprint = f"{st.st_size}:{st.st_mtime_ns}" if st else None
        return load_profile(
            repository,
            self.config.model.name,
            spec.model_version,
            fingerprint,
            self._profile_columns,
            rebuild=rebuild,
        )

    def _profile_columns(self) -> tuple[dict[str, Any], dict[str, FeatureType]]:
        """The profiled columns: the features, and the model's outputs under the
        pseudo-columns of :mod:`monitor.statistics`."""
        from monitor.statistics import PREDICTION, SCORE

        spec = self.spec
        frame = self.frame()
        columns = {name: frame[name].to_numpy() for name in self.schema if name in frame}
        schema = {name: kind for name, kind in self.schema.items() if name in frame}
        for pseudo, source, kind in (
            (SCORE, spec.score_column, FeatureType.NUMERIC),
            (PREDICTION, spec.prediction_column, FeatureType.CATEGORICAL),
        ):
            if source is None:
                continue
            if source not in frame:
                raise ConfigError(f"reference: no column {source!r} in {spec.path}")
            columns[pseudo], schema[pseudo] = frame[source].to_numpy(), kind
        return columns, schema
