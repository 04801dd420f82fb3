"""The statistics job: fold stored predictions into window states, then finalize them.

Folding reads the predictions stored after the job's cursor (their feature blocks,
:mod:`monitor.blocks`, else their JSON), turns them into per-window partial states
(:func:`monitor.drift.state.partial`), merges them into the stored states and commits
states and cursor together (with the sorted values of rows folded from their JSON; the
blocks' values are stored already), so every prediction is folded exactly once and a
window's statistics never need its rows again. Finalizing turns each
changed window's state into drift and data-quality results against the reference
profile.
"""

from __future__ import annotations

import logging
from collections import defaultdict
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime
from operator import attrgetter
from typing import Any

import msgspec
import numpy as np
import orjson

from monitor import blocks
from monitor.abc import StatisticsRepository as Repository
from monitor.drift.compare import ExactValues, Threshold, reference_column, window_drift
from monitor.drift.encoded import EncodedColumn
from monitor.drift.multivariate import (
    Encoder,
    MultivariateDrift,
    Reconstruction,
    domain_classifier,
)
from monitor.drift.profile import ReferenceProfile
from monitor.drift.quality import QualityThresholds, window_checks
from monitor.drift.runs import encode_run, merge_sorted
from monitor.drift.samples import ReferenceColumn
from monitor.drift.state import WindowState, merge, partial, row_keys
from monitor.drift.thresholds import MemoCalibrated
from monitor.results import (
    Calibration,
    DriftResult,
    WindowResults,
    column_result,
    drift_result,
    multivariate_result,
    quality_check,
)
from monitor.window_values import WindowValues
from storage.rows import BlockGroup, StoredBlock, StoredRow, StoredRows, ValueRun

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

SCORE = blocks.SCORE  # the model's output, profiled like a column when the reference has it
PREDICTION = blocks.PREDICTION
# what one fold step reads: window start, rows, columns, the rows' sample keys
_Part = tuple[
    datetime, int, Mapping[str, Sequence[Any] | EncodedColumn], np.ndarray, frozenset[str]
]
OUTPUTS = (SCORE, PREDICTION)


def columns_of(rows: list[StoredRow], names: list[str]) -> dict[str, list[Any]]:
    """Feature columns of stored rows (None where a row lacks the feature), and the
    model's outputs under :data:`SCORE` and :data:`PREDICTION` when asked for."""
    batch = StoredRows(
        [r.pk for r in rows],
        [r.id for r in rows],
        [r.window_start for r in rows],
        [r.features for r in rows],
        [r.prediction for r in rows],
        [r.score for r in rows],
    )
    return FeatureDecoder(names).columns(batch, range(len(rows)))


class FeatureDecoder:
    """Columns of stored features: each row's JSON object decoded straight into a struct
    of the profiled names (msgspec; fields it does not name are skipped, a missing one
    is None), then read out a column at a time. Building a dictionary per row and
    looking every name up in it cost twice as much, and dominated the fold."""

    def __init__(self, names: list[str]) -> None:
        self.names = names
        self.features = [n for n in names if n not in OUTPUTS]
        fields = [f"f{i}" for i in range(len(self.features))]
        self.struct = msgspec.defstruct(
            "Features",
            [(f, Any, None) for f in fields],
            rename=dict(zip(fields, self.features, strict=True)),
            gc=False,
        )
        self.decode = msgspec.json.Decoder(self.struct).decode
        self.getters = dict(zip(self.features, map(attrgetter, fields), strict=True))

    def _row(self, text: str) -> Any:
        try:
            return self.decode(text)
        except (msgspec.DecodeError, TypeError):  # not an object: every feature missing
            data = orjson.loads(text)
            get = data.get if isinstance(data, dict) else {}.get
            return self.struct(*[get(n) for n in self.features])

    def columns(self, batch: StoredRows, rows: Sequence[int]) -> dict[str, list[Any]]:
        """The profiled columns of ``rows`` (positions in ``batch``)."""
        texts = batch.features
        if isinstance(rows, range) and rows.step == 1:
            chosen = texts[rows.start : rows.stop]
        else:
            chosen = [texts[i] for i in rows]
        decode, row = self.decode, self._row
        try:
            parsed = [decode(t) for t in chosen]
        except (msgspec.DecodeError, TypeError):
            parsed = [row(t) for t in chosen]
        out: dict[str, list[Any]] = {
            name: list(map(getter, parsed)) for name, getter in self.getters.items()
        }
        if SCORE in self.names:
            out[SCORE] = [batch.scores[i] for i in rows]
        if PREDICTION in self.names:
            served = [batch.predictions[i] for i in rows]
            out[PREDICTION] = [None if p is None else orjson.loads(p) for p in served]
        return {name: out[name] for name in self.names}


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
        block_rows: int = 250_000,
    ) -> None:
        self.repository = repository
        self.model = model
        self.profile = profile
        self.settings = settings or DriftSettings()
        self.sample_size = sample_size
        self.batch_rows = batch_rows
        self.block_rows = block_rows  # rows of feature blocks per fold transaction
        self._references: dict[str, ReferenceColumn] = {}
        self._multivariate: tuple[Encoder, Reconstruction] | None = None
        self._column_tests: tuple[dict[str, str], dict[str, Threshold]] | None = None

    def fold(self, progress: Callable[[int], None] | None = None) -> FoldReport:
        """Fold every stored prediction not folded yet: from the feature blocks that
        ingestion wrote (:mod:`monitor.blocks`) where they cover the rows after the
        cursor, else from the rows' JSON."""
        report = FoldReport()
        decoder = FeatureDecoder(list(self.profile.columns))
        position = self.repository.cursor(self.model)
        while True:
            groups = self.repository.block_groups_after(self.model, position, self.block_rows)
            usable = self._contiguous(groups, position)
            if usable:
                folded = [b for g in usable for b in g.blocks]
                position = usable[-1].upto
                starts = list(dict.fromkeys(b.start for b in folded))
                parts = self._block_parts(folded)
                self._fold_batch(position, starts, parts, report, progress)
                continue
            upto = None
            if groups:  # rows before the first block, or rows of a chunk partly folded
                first = groups[0]
                upto = first.upto if first.after < position else first.after
            batch = self.repository.rows_batch_after(
                self.model, position, self.batch_rows, upto=upto
            )
            if not len(batch):
                if upto is None:
                    return report
                position = upto  # no rows of this model before the blocks
                self.repository.commit_fold(self.model, position, {})
                continue
            by_window = _positions_by_window(batch.window_starts)
            parts = self._row_parts(batch, by_window, decoder)
            self._fold_batch(
                batch.pks[-1], list(by_window), parts, report, progress, rows_after=position
            )
            position = batch.pks[-1]

    def _contiguous(self, groups: list[BlockGroup], position: int) -> list[BlockGroup]:
        """The leading block groups that cover every row after ``position`` up to theirs."""
        usable: list[BlockGroup] = []
        for group in groups:
            edge = usable[-1].upto if usable else position
            if group.after < edge:  # some of its rows were folded from their JSON
                break
            if group.after > edge and self.repository.has_rows(self.model, edge, group.after):
                break
            usable.append(group)
        return usable

    def _block_parts(self, folded: list[StoredBlock]) -> Iterator[_Part]:
        for stored in folded:
            block = blocks.decode(stored.payload, stored.runs)
            yield stored.start, block.rows, block.columns, block.keys, frozenset(stored.runs)

    def _row_parts(
        self,
        batch: StoredRows,
        by_window: dict[datetime, Sequence[int]],
        decoder: FeatureDecoder,
    ) -> Iterator[_Part]:
        for start, positions in by_window.items():
            for first in range(0, len(positions), CHUNK):  # parsed rows: bounded
                chunk = positions[first : first + CHUNK]
                keys = row_keys([batch.ids[i] for i in chunk])
                yield start, len(chunk), decoder.columns(batch, chunk), keys, frozenset()

    def _fold_batch(
        self,
        position: int,
        starts: list[datetime],
        parts: Iterable[_Part],
        report: FoldReport,
        progress: Callable[[int], None] | None,
        *,
        rows_after: int | None = None,
    ) -> None:
        """Fold parts (window start, rows, columns, sample keys, columns whose values are
        stored already) into their windows' states and commit them with the cursor at
        ``position``, with the sorted runs of the values not stored yet; ``rows_after``:
        the parts are the rows after it, from their JSON (storage's commit_fold)."""
        states: dict[datetime, WindowState] = {}
        chunks: dict[datetime, list[dict[str, np.ndarray]]] = defaultdict(list)
        stored = self.repository.states(self.model, starts)
        rows = 0
        for start, n, columns, keys, in_runs in parts:
            state = states.get(start)
            ordered: dict[str, np.ndarray] = {}
            part = partial(
                columns,
                keys,
                self.profile,
                sample_size=self.sample_size,
                ordered=ordered,
                below=_full_sample_bound(state),
            )
            states[start] = part if state is None else merge(state, part)
            for name in in_runs:  # ingestion stored their runs with the block
                ordered.pop(name, None)
            chunks[start].append(ordered)
            rows += n
        updated = {}
        for start, state in states.items():
            previous = stored.get(start)
            if previous:
                state = merge(WindowState.from_dict(orjson.loads(previous)), state)
            updated[start] = orjson.dumps(state.to_dict()).decode()
        self.repository.commit_fold(
            self.model, position, updated, _value_runs(chunks), rows_after=rows_after
        )
        report.rows += rows
        report.windows.update(states)
        if progress:
            progress(rows)

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
        folded = self.repository.cursor(self.model)  # the states hold the rows up to it
        for start, end, predictions, duplicates, payload in pending:
            state = WindowState.from_dict(orjson.loads(payload))
            values = WindowValues(
                self.repository,
                self.model,
                start,
                {n: c.n for n, c in state.columns.items() if self.profile.columns[n].numeric},
                folded=folded,
                chunk=CHUNK,
            )
            result = self.window_results(
                state,
                start,
                end,
                predictions,
                None if start in (latest, first) else expected,
                duplicates=duplicates,
                exact_values=values,
            )
            values.finish()
            del values
            if report is not None and result.drift.drifted:
                try:
                    path = report(start, state, result.drift)
                    if path:
                        result = replace(result, report=path)
                except Exception:  # a failed report must not lose the statistics
                    logger.exception("could not write the drift report of window %s", start)
            results[start] = result
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


def _value_runs(chunks: dict[datetime, list[dict[str, np.ndarray]]]) -> Iterator[ValueRun]:
    """Each window's sorted values of one fold step, a run per column (stored with the
    states: finalize scores a grown window from them, monitor.window_values); made one
    at a time as they are stored, each chunk let go once merged."""
    for start, parts in chunks.items():
        for name in list(dict.fromkeys(name for part in parts for name in part)):
            merged = merge_sorted([part.pop(name) for part in parts if name in part])
            n, payload = encode_run({name: merged})
            yield start, name, n, payload


def _positions_by_window(starts: list[datetime]) -> dict[datetime, Sequence[int]]:
    """Row positions per window start, in order (one range when all share a window)."""
    if starts and starts[0] == starts[-1] and len(set(starts)) == 1:
        return {starts[0]: range(len(starts))}
    out: dict[datetime, list[int]] = defaultdict(list)
    for i, start in enumerate(starts):
        out[start].append(i)
    return dict(out)


def _full_sample_bound(state: WindowState | None) -> int | None:
    """The largest key of a full row sample: rows with a larger key cannot enter it."""
    if state is None or state.sample_keys.size < state.sample_size:
        return None
    return int(state.sample_keys[-1])
