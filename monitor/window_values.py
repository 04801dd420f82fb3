"""A window's every numeric value, for exact scores at finalize (see :mod:`monitor.drift.runs`).

Found on first need, cheapest source first: the sorted chunks this run's fold kept (a
window folded from its first row in this process), else the window's stored runs when
they hold all its values, else its stored rows decoded again. Values from the first or
the last source, or from more than :data:`MAX_RUNS` runs, are written back as the window's
one run, so the next finalize of the window merges two runs instead.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from datetime import datetime
from typing import Any

import numpy as np
import orjson

from monitor.abc import StatisticsRepository
from monitor.drift.runs import decode_run, encode_run, merge_sorted, merged_columns
from monitor.drift.samples import ReferenceColumn

MAX_RUNS = 8  # runs merged at read before a window's runs are rewritten as one
NUMBERS = frozenset({float, int, type(None)})


class WindowValues:
    """Callable: column name -> its every value in the window, prepared (or None)."""

    def __init__(
        self,
        repository: StatisticsRepository,
        model: str,
        start: datetime,
        counts: Mapping[str, int],
        kept: Mapping[str, list[np.ndarray]] | None = None,
        *,
        chunk: int = 10_000,
    ) -> None:
        self.repository = repository
        self.model = model
        self.start = start
        self.counts = counts  # numeric column -> present values in the window (its state)
        self.kept = kept
        self.chunk = chunk
        self._columns: dict[str, np.ndarray] | None = None
        self._write: list[int] | None = None  # stored runs to replace by the columns

    def __call__(self, name: str) -> ReferenceColumn | None:
        if name not in self.counts:
            return None
        if self._columns is None:
            self._columns = self._load()
        values = self._columns.get(name)
        return None if values is None else ReferenceColumn.from_sorted(values)

    def pending(self) -> tuple[list[int], Iterator[tuple[int, bytes]]] | None:
        """The runs to store in place of the window's stored runs (their pks), if any:
        one per column, encoded as they are stored (a window's values can be large)."""
        if self._write is None or self._columns is None:
            return None
        columns = self._columns
        runs = (encode_run({name: columns[name]}) for name in list(columns))
        return self._write, runs

    def _load(self) -> dict[str, np.ndarray]:
        if self.kept is not None:
            kept, self.kept = dict(self.kept), None
            self._write = []
            # merged a column at a time, its chunks let go as it is
            return {name: merge_sorted(kept.pop(name)) for name in list(kept)}
        stored = self.repository.window_values(self.model, self.start)
        pks = [pk for pk, _ in stored]
        columns = merged_columns([decode_run(payload) for _, payload in stored])
        del stored
        if all(columns.get(n, np.empty(0)).size == count for n, count in self.counts.items()):
            if len(pks) > MAX_RUNS:
                self._write = pks
            return columns
        self._write = pks
        return self._reread()

    def _reread(self) -> dict[str, np.ndarray]:
        """Every value of the window's numeric columns, decoded from its stored rows."""
        names = list(self.counts)
        parts: dict[str, list[np.ndarray]] = {n: [] for n in names}
        for stored in self.repository.window_features(self.model, self.start, self.chunk):
            features = [orjson.loads(f) for f in stored]  # parsed rows: bounded
            for name in names:
                values = numeric_array([f.get(name) for f in features])
                parts[name].append(np.sort(values[np.isfinite(values)] + 0.0))
        return {name: merge_sorted(parts.pop(name)) for name in names}


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
