"""The statistics job: fold stored predictions into window states, then finalize them.

Folding reads the predictions stored after the job's cursor, turns them into per-window
partial states (:func:`monitor.drift.state.partial`), merges them into the stored states
and commits states and cursor together, so every prediction is folded exactly once and
a window's statistics never need its rows again. Finalizing turns each changed window's
state into drift and data-quality results against the reference profile.
"""

from __future__ import annotations

import logging
from collections import defaultdict
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, replace
from datetime import datetime
from typing import Any

import numpy as np
import orjson

from monitor.abc import StatisticsRepository as Repository
from monitor.drift.compare import ExactValues, Threshold, reference_column, window_drift
from monitor.drift.multivariate import (
    Encoder,
    MultivariateDrift,
    Reconstruction,
    domain_classifier,
)
from monitor.drift.profile import ReferenceProfile
from monitor.drift.quality import QualityThresholds, window_checks
from monitor.drift.samples import ReferenceColumn
from monitor.drift.state import NUMBERS, WindowState, merge, partial, row_keys
from monitor.drift.thresholds import Calibrated
from monitor.results import (
    Calibration,
    DriftResult,
    WindowResults,
    column_result,
    drift_result,
    multivariate_result,
    quality_check,
)
from storage.rows import StoredRow

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class DriftSettings:
    """How columns are tested: method and threshold per column, dataset rule.

    ``mode`` is ``drift.thresholds`` (:mod:`monitor.drift.thresholds`): "calibrated" or
    "evidently"; a column whose threshold is a number uses that number in both.
    ``min_rows``: fewest rows a window needs to be judged (None: per method).
    """

    method: str = "auto"
    threshold: float | str = "calibrated"
    mode: str = "calibrated"
    min_rows: int | None = None
    false_alarm_rate: float = 0.01
    drift_share: float = 0.5
    columns: Mapping[str, tuple[str, float | str | None]] = field(default_factory=dict)
    quality: QualityThresholds = field(default_factory=QualityThresholds)
    multivariate: bool = True  # domain classifier and PCA reconstruction on row samples
    importance: Mapping[str, float] = field(default_factory=dict)  # weights of the share


@dataclass
class FoldReport:
    rows: int = 0
    windows: set[datetime] = field(default_factory=set)

    def to_dict(self) -> dict[str, Any]:
        return {"rows": self.rows, "windows": sorted(w.isoformat() for w in self.windows)}


CHUNK = 10_000  # rows parsed at a time (parsed JSON costs ~2 KB a row)
# the domain classifier (gradient boosting, ~0.2 s a window) runs on windows of at least
# this many rows: below, its cross-validated AUC is too noisy to see more than the
# per-column tests and the PCA reconstruction do, and its cost dominated small windows
DOMAIN_CLASSIFIER_MIN_ROWS = 1000

SCORE = "@score"  # the model's output, profiled like a column when the reference has it
PREDICTION = "@prediction"
OUTPUTS = (SCORE, PREDICTION)


def columns_of(rows: list[StoredRow], names: list[str]) -> dict[str, list[Any]]:
    """Feature columns of stored rows (None where a row lacks the feature), and the
    model's outputs under :data:`SCORE` and :data:`PREDICTION` when asked for."""
    features_wanted = [n for n in names if n not in OUTPUTS]
    out: dict[str, list[Any]] = {name: [] for name in names}
    parsed = [orjson.loads(row.features) for row in rows]
    for name in features_wanted:
        out[name] = [features.get(name) for features in parsed]
    if SCORE in out:
        out[SCORE] = [row.score for row in rows]
    if PREDICTION in out:
        out[PREDICTION] = [
            None if row.prediction is None else orjson.loads(row.prediction) for row in rows
        ]
    return out


class StatisticsEngine:
    def __init__(
        self,
        *,
        repository: Repository,
        model: str,
        profile: ReferenceProfile,
        settings: DriftSettings | None = None,
        sample_size: int = 5000,
        batch_rows: int = 50_000,
        kept_values: int = 25_000_000,
    ) -> None:
        self.repository = repository
        self.model = model
        self.profile = profile
        self.settings = settings or DriftSettings()
        self.sample_size = sample_size
        self.batch_rows = batch_rows
        self._references: dict[str, ReferenceColumn] = {}
        self._multivariate: tuple[Encoder, Reconstruction] | None = None
        self._column_tests: tuple[dict[str, str], dict[str, Threshold]] | None = None
        # numeric values of the windows this process folded from their first row, kept
        # (up to `kept_values`) so that finalize scores them exactly without re-reading
        self.kept_values = kept_values
        self._kept: dict[datetime, dict[str, list[np.ndarray]]] = {}
        self._kept_total = 0  # values in _kept: summing them per call cost O(windows)

    def fold(self, progress: Callable[[int], None] | None = None) -> FoldReport:
        """Fold every stored prediction not folded yet."""
        report = FoldReport()
        names = list(self.profile.columns)
        position = self.repository.cursor(self.model)
        while True:
            rows = self.repository.rows_after(self.model, position, self.batch_rows)
            if not rows:
                return report
            by_window: dict[datetime, list[StoredRow]] = defaultdict(list)
            for row in rows:
                by_window[row.window_start].append(row)
            stored = self.repository.states(self.model, list(by_window))
            updated = {}
            for start, window_rows in by_window.items():
                previous = stored.get(start)
                batch = None
                for first in range(0, len(window_rows), CHUNK):  # parsed rows: bounded
                    chunk = window_rows[first : first + CHUNK]
                    columns = columns_of(chunk, names)
                    part = partial(
                        columns,
                        row_keys([r.id for r in chunk]),
                        self.profile,
                        sample_size=self.sample_size,
                    )
                    batch = part if batch is None else merge(batch, part)
                    self._keep(start, previous is None, columns)
                    del columns
                assert batch is not None
                if previous:
                    batch = merge(WindowState.from_dict(orjson.loads(previous)), batch)
                updated[start] = orjson.dumps(batch.to_dict()).decode()
            position = rows[-1].pk
            self.repository.commit_fold(self.model, position, updated)
            report.rows += len(rows)
            report.windows.update(by_window)
            if progress:
                progress(len(rows))

    def _keep(self, start: datetime, first: bool, columns: dict[str, list[Any]]) -> None:
        if not (first or start in self._kept):
            return
        numeric = [n for n, c in self.profile.columns.items() if c.numeric]
        if self._kept_total + len(numeric) * len(next(iter(columns.values()), [])) > (
            self.kept_values
        ):
            self._drop_kept(start)  # too many: finalize re-reads this window
            return
        window = self._kept.setdefault(start, {n: [] for n in numeric})
        for name in numeric:
            window[name].append(numeric_array(columns[name]))
            self._kept_total += window[name][-1].size

    def _drop_kept(self, start: datetime) -> dict[str, list[np.ndarray]] | None:
        window = self._kept.pop(start, None)
        if window is not None:
            self._kept_total -= sum(a.size for v in window.values() for a in v)
        return window

    # -- finalizing ---------------------------------------------------------------------

    def references(self) -> dict[str, ReferenceColumn]:
        if not self._references:
            self._references = {
                name: reference_column(column)
                for name, column in self.profile.columns.items()
                if column.n
            }
        return self._references

    def finalize(
        self, report: Callable[[datetime, WindowState, DriftResult], str | None] | None = None
    ) -> dict[datetime, WindowResults]:
        """Results of every window whose state changed since it was last finalized.

        ``report(start, state, drift)`` renders the detail report of a window with dataset
        drift (``drift``: its results' drift section, whose methods, thresholds and drift
        share the report uses) and returns where it is (or None when it decides not to);
        the results keep that path.
        """
        pending = self.repository.unfinalized(self.model)
        if not pending:
            return {}
        sizes = self.repository.window_sizes(self.model, 101)
        # the latest window is still filling, and the first began when the stream did (at
        # any moment of it): neither sets nor gets a volume expectation
        latest = sizes[0][0]
        first = sizes[-1][0] if len(sizes) < 101 else None
        complete = [n for start, n in sizes[1:] if start != first]
        expected = float(np.median(complete)) if len(complete) >= 3 else None
        results = {}
        for start, end, predictions, duplicates, payload in pending:
            state = WindowState.from_dict(orjson.loads(payload))
            result = self.window_results(
                state,
                start,
                end,
                predictions,
                None if start in (latest, first) else expected,
                duplicates=duplicates,
                exact_values=self._stored_values(start),
            )
            if report is not None and result.drift.drifted:
                try:
                    path = report(start, state, result.drift)
                    if path:
                        result = replace(result, report=path)
                except Exception:  # a failed report must not lose the statistics
                    logger.exception("could not write the drift report of window %s", start)
            results[start] = result
        self._kept.clear()
        self._kept_total = 0
        self.repository.save_results(self.model, results)
        return results

    def window_results(
        self,
        state: WindowState,
        start: datetime,
        end: datetime,
        predictions: int,
        expected_rows: float | None = None,
        *,
        duplicates: int = 0,
        exact_values: ExactValues | None = None,
    ) -> WindowResults:
        s = self.settings
        methods, thresholds = self._tests()
        calibrated = s.mode == "calibrated"
        features = [n for n in self.profile.columns if n not in OUTPUTS]
        common: dict[str, Any] = {
            "references": self.references(),
            "methods": methods,
            "thresholds": thresholds,
            "exact_values": exact_values,
            "least": s.min_rows,
            "rate": s.false_alarm_rate if calibrated else None,
        }
        drift = window_drift(
            state,
            self.profile,
            drift_share=s.drift_share,
            only=features,
            weights=s.importance,
            **common,
        )
        outputs = window_drift(state, self.profile, only=OUTPUTS, **common)
        checks = window_checks(
            self.profile,
            state,
            expected_rows=expected_rows,
            duplicates=duplicates,
            thresholds=s.quality,
        )
        multivariate = [] if drift.insufficient else self.multivariate(state)
        return WindowResults(
            start=start,
            end=end,
            rows=predictions,
            drift=drift_result(drift),
            prediction_drift=tuple(column_result(c) for c in outputs.columns),
            quality=tuple(quality_check(c) for c in checks),
            calibration=Calibration(s.mode, s.false_alarm_rate, drift.control),
            multivariate=tuple(multivariate_result(m) for m in multivariate),
        )

    def _tests(self) -> tuple[dict[str, str], dict[str, Threshold]]:
        """Each column's method and threshold, prepared once for every window: the
        calibrated ones remember their limit per window size (a quantile of the null,
        the same for the many windows of one size in a backfill)."""
        if self._column_tests is not None:
            return self._column_tests
        s = self.settings
        methods = {}
        thresholds: dict[str, Threshold] = {}
        for name in self.profile.columns:
            method, threshold = s.columns.get(name, (s.method, s.threshold))
            methods[name] = method
            if threshold is None:
                threshold = s.threshold
            null = self.profile.nulls.get(name)
            if threshold != "calibrated":
                thresholds[name] = float(threshold)
            elif s.mode == "calibrated" and null is not None:
                thresholds[name] = MemoCalibrated(null, s.false_alarm_rate)
            else:  # evidently mode: the method's fixed default
                thresholds[name] = None
        self._column_tests = (methods, thresholds)
        return self._column_tests

    def multivariate(self, state: WindowState) -> list[MultivariateDrift]:
        """Domain-classifier and PCA-reconstruction drift of the window's row sample."""
        reference = self.profile.sample
        if not self.settings.multivariate or not reference or not state.sample:
            return []
        if self._multivariate is None:
            schema = {
                n: c.kind
                for n, c in self.profile.columns.items()
                if n in reference and n not in OUTPUTS
            }
            encoder = Encoder(reference, schema)
            self._multivariate = (encoder, Reconstruction(reference, encoder))
        encoder, reconstruction = self._multivariate
        current = {name: state.sample[name] for name in encoder.numeric + encoder.categorical}
        rate = self.settings.false_alarm_rate
        out = [reconstruction.drift(current, false_alarm_rate=rate)]
        if state.rows >= DOMAIN_CLASSIFIER_MIN_ROWS:
            out.insert(0, domain_classifier(reference, current, encoder, false_alarm_rate=rate))
        return out

    def _stored_values(self, start: datetime) -> ExactValues:
        """A window's every value of a numeric column, re-read from the stored rows on
        first need (once per window for all its numeric columns)."""
        cache: dict[str, np.ndarray] = {}
        kept = self._drop_kept(start)

        def values(name: str) -> np.ndarray | None:
            if not cache and kept is not None:
                for column in list(kept):
                    cache[column] = np.concatenate(kept.pop(column))
            if not cache:
                numeric = [n for n, c in self.profile.columns.items() if c.numeric]
                parts: dict[str, list[np.ndarray]] = {n: [] for n in numeric}
                for stored in self.repository.window_features(self.model, start, CHUNK):
                    features = [orjson.loads(f) for f in stored]  # parsed rows: bounded
                    for column in numeric:
                        parts[column].append(numeric_array([f.get(column) for f in features]))
                for column in numeric:
                    cache[column] = np.concatenate(parts.pop(column))
            return cache.get(name)

        return values


@dataclass(frozen=True)
class MemoCalibrated(Calibrated):
    """A :class:`Calibrated` threshold that computes its limit once per method, window
    size and column type (a pure function of them, and of the null and rate)."""

    _limits: dict[tuple[str, int, str], float] = field(
        default_factory=dict, compare=False, repr=False
    )

    def threshold(self, method: str, n: int, column_type: str) -> float:
        key = (method, n, column_type)
        limit = self._limits.get(key)
        if limit is None:
            limit = self._limits[key] = super().threshold(method, n, column_type)
        return limit


def numeric_array(raw: list[Any]) -> np.ndarray:
    """Stored values of a numeric column as float64, NaN where missing or not a number
    (what the window state counts as present, see monitor.drift.state)."""
    if set(map(type, raw)) <= NUMBERS:
        try:
            return np.array(raw, dtype=np.float64)
        except OverflowError:
            pass
    return np.array([_number(v) for v in raw], dtype=np.float64)


def _number(value: Any) -> float:
    if not isinstance(value, int | float) or isinstance(value, bool):
        return float("nan")
    try:
        return float(value)
    except OverflowError:  # an integer beyond float64 is no usable number
        return float("nan")
