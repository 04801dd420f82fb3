"""A window's every numeric value, for exact scores at finalize (see :mod:`monitor.drift.runs`).

A window's values are stored as runs, each of one numeric column: ingestion writes a run
of each numeric feature with each feature block (its rows' values in row order, NaN
where missing), which the fold reads with the block and leaves in place; the fold itself
stores the present values, sorted, of rows it folds from their JSON. Finalize asks for a
column's values when its score must be exact: the runs of rows folded so far are read,
the present values kept and sorted, one column at a time, so a window of a million rows
never holds all its columns at once. A column spread over more than :data:`MAX_RUNS`
runs is stored back as one. A window whose runs do not hold all its values (stored
before runs existed, or before 0009 stored a run per column) is read from its rows once
and stored back, a run per column.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any

import numpy as np
import orjson

from monitor.abc import StatisticsRepository
from monitor.drift.runs import decode_run, encode_run, merge_sorted
from monitor.drift.samples import ReferenceColumn
from monitor.drift.state import LARGEST

# runs of a column read before they are stored back as one: a million-row window
# ingested in 20,000-row chunks has 50, read in ~0.1 ms each; rewriting them at its first
# finalize would cost more than reading them at each
MAX_RUNS = 128
NUMBERS = frozenset({float, int, type(None)})


class WindowValues:
    """Callable: column name -> its every value in the window, prepared (or None); each
    column asked for once. :meth:`finish` stores back what must be."""

    def __init__(
        self,
        repository: StatisticsRepository,
        model: str,
        start: datetime,
        counts: Mapping[str, int],
        *,
        folded: int,
        chunk: int = 10_000,
    ) -> None:
        self.repository = repository
        self.model = model
        self.start = start
        self.counts = counts  # numeric column -> present values in the window (its state)
        self.folded = folded  # the cursor: the state holds the rows up to it
        self.chunk = chunk
        self._runs: list[tuple[int, str | None]] | None = None  # (pk, column) stored
        self._reread: dict[str, np.ndarray] | None = None  # every column, from the rows
        self._replace: list[int] | None = None  # after a reread: every stored run
        self._done: set[str] = set()

    def __call__(self, name: str) -> ReferenceColumn | None:
        if name not in self.counts:
            return None
        values = self._column(name)
        self._done.add(name)
        return None if values is None else ReferenceColumn.from_sorted(values)

    def finish(self) -> None:
        """After a reread, store every column not stored yet (the window's old runs are
        gone); else merge back the runs of the columns spread over too many."""
        if self._runs is None:
            return
        if self._reread is not None:
            for name in list(self._reread):
                self._column(name)
            return
        for name in self.counts:
            if name not in self._done and self._count(name) > MAX_RUNS:
                self._column(name)

    def _count(self, name: str) -> int:
        assert self._runs is not None
        return sum(1 for _, column in self._runs if column == name)

    def _column(self, name: str) -> np.ndarray | None:
        if self._runs is None:
            self._runs = self.repository.window_value_runs(self.model, self.start, self.folded)
            if any(column is None for _, column in self._runs):  # stored before 0009
                self._start_reread()
        if self._reread is None:
            pks = [pk for pk, column in self._runs if column == name]
            payloads = self.repository.window_value_payloads(pks)
            values = present_sorted([decode_run(p)[name] for p in payloads])
            del payloads
            if values.size == self.counts[name]:
                if len(pks) > MAX_RUNS:
                    self._store(name, values, pks)
                return values
            self._start_reread()
        assert self._reread is not None
        if name not in self._reread:
            return None
        reread = self._reread.pop(name)
        replaced, self._replace = self._replace or [], []
        self._store(name, reread, replaced)
        return reread

    def _start_reread(self) -> None:
        assert self._runs is not None
        self._replace = [pk for pk, _ in self._runs]
        self._reread = self._reread_columns()

    def _store(self, name: str, values: np.ndarray, replaced: Sequence[int]) -> None:
        n, payload = encode_run({name: values})
        run = (self.start, name, n, payload)
        self.repository.replace_window_values(self.model, self.start, replaced, [run])

    def _reread_columns(self) -> dict[str, np.ndarray]:
        """Every value of the window's numeric columns, decoded from its stored rows."""
        names = list(self.counts)
        parts: dict[str, list[np.ndarray]] = {n: [] for n in names}
        for stored in self.repository.window_features(self.model, self.start, self.chunk):
            features = [orjson.loads(f) for f in stored]  # parsed rows: bounded
            for name in names:
                values = numeric_array([f.get(name) for f in features])
                parts[name].append(np.sort(values[np.isfinite(values)] + 0.0))
        return {name: merge_sorted(parts.pop(name)) for name in names}


def present_sorted(runs: Sequence[np.ndarray]) -> np.ndarray:
    """The present values of a column's runs, sorted: what the window state counts as
    present (finite, within :data:`~monitor.drift.state.LARGEST`). Runs the fold stored
    hold only those, sorted, -0.0 as 0.0; runs ingestion stored are filtered and sorted
    here, -0.0 made 0.0 (numpy's SIMD sort of a million values takes 7-10 ms). A single
    run already sorted and present is returned as it is (equal values either way)."""
    if len(runs) == 1 and _sorted(runs[0]) and _present(runs[0]).all():
        return runs[0]  # stored sorted (by the fold, or merged back)
    values = np.concatenate(runs) if len(runs) > 1 else runs[0].copy()
    if values.size and not -LARGEST <= values.min() <= values.max() <= LARGEST:  # NaN too
        values = values[_present(values)]
    values += 0.0
    values.sort()
    return values


def _sorted(values: np.ndarray) -> bool:
    return bool((values[1:] >= values[:-1]).all())  # False when a NaN is in between


def _present(values: np.ndarray) -> np.ndarray:
    with np.errstate(invalid="ignore"):
        return np.abs(values) <= LARGEST  # False for NaN and +-inf


def numeric_array(raw: Sequence[Any]) -> np.ndarray:
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
