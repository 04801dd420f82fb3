"""A window's every numeric value, for exact scores at finalize (see :mod:`monitor.drift.runs`).

Found on first need, cheapest source first: the sorted chunks this run's fold kept (a
window folded from its first row in this process), else the window's stored runs when
they hold all its values, else its stored rows decoded again. Values from the first or
the last source, or from more than :data:`MAX_RUNS` runs per column, are written back,
each column as its own run, so the next finalize of the window merges two runs instead.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any

import numpy as np
import orjson

from monitor.abc import StatisticsRepository
from monitor.drift.runs import decode_run, encode_run, merge_sorted
from monitor.drift.samples import ReferenceColumn

MAX_RUNS = 8  # runs merged at read before a window's runs are rewritten as one
NUMBERS = frozenset({float, int, type(None)})


class WindowValues:
    """Callable: column name -> its every value in the window, prepared (or None).

    A column at a time, each asked for once: its values are merged when asked for,
    stored back as their own run right away when the window's runs are to be rewritten,
    and let go by the caller once scored, so that a window of a million rows never holds
    all its columns merged at once. :meth:`finish` stores the columns not asked for."""

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
        self.kept = dict(kept) if kept is not None else None
        self.chunk = chunk
        self._runs: list[dict[str, np.ndarray]] | None = None  # the stored runs, read
        self._reread: dict[str, np.ndarray] | None = None
        # stored runs to replace by the columns (None: nothing to write); the first
        # column written replaces them
        self._write: list[int] | None = [] if kept is not None else None
        self._written: set[str] = set()

    def __call__(self, name: str) -> ReferenceColumn | None:
        if name not in self.counts:
            return None
        values = self._column(name)
        if values is None:
            return None
        self._store(name, values)
        return ReferenceColumn.from_sorted(values)

    def finish(self) -> None:
        """Store the columns no one asked for, when the window's runs are rewritten."""
        if self._write is None:
            return
        for name in self.counts:
            if name not in self._written:
                values = self._column(name)
                if values is not None:
                    self._store(name, values)

    def _column(self, name: str) -> np.ndarray | None:
        if self.kept is not None:
            return merge_sorted(self.kept.pop(name, []))  # its chunks let go as merged
        if self._runs is None:
            self._load()
        if self._reread is not None:
            return self._reread.pop(name, None)
        assert self._runs is not None
        return merge_sorted([run[name] for run in self._runs if name in run])

    def _store(self, name: str, values: np.ndarray) -> None:
        if self._write is None or name in self._written:
            return
        replaced, self._write = self._write, []
        run = encode_run({name: values})
        self.repository.replace_window_values(self.model, self.start, replaced, [run])
        self._written.add(name)

    def _load(self) -> None:
        stored = self.repository.window_values(self.model, self.start)
        pks = [pk for pk, _ in stored]
        runs = [decode_run(payload) for _, payload in stored]  # views of the payloads
        del stored
        sizes: Counter[str] = Counter()
        depth: Counter[str] = Counter()  # a run is stored a column at a time
        for run in runs:
            for name, values in run.items():
                sizes[name] += values.size
                depth[name] += 1
        self._runs = runs
        if any(sizes[name] != count for name, count in self.counts.items()):
            self._write = pks
            self._runs = []
            self._reread = self._reread_columns()
        elif max(depth.values(), default=0) > MAX_RUNS:
            self._write = pks

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
