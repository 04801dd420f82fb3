"""A window's stored values, a column at a time: merged when asked for, merged back when
spread over too many runs, read from the rows when the runs do not hold them all."""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence
from datetime import UTC, datetime

import numpy as np
import orjson

from monitor.drift.runs import encode_run
from monitor.window_values import WindowValues
from storage.rows import ValueRun

START = datetime(2026, 11, 2, tzinfo=UTC)


class Runs:
    """The repository's window-value methods, in memory, with the window's rows."""

    def __init__(self, rows: list[dict[str, float]]) -> None:
        self.rows = rows
        self.runs: dict[int, tuple[str | None, bytes]] = {}
        self.read: list[str] = []  # "rows" when the rows were read

    def add(self, name: str | None, columns: dict[str, np.ndarray]) -> None:
        self.runs[len(self.runs) + 100] = (name, encode_run(columns)[1])

    def window_value_runs(self, model: str, start: datetime) -> list[tuple[int, str | None]]:
        return [(pk, name) for pk, (name, _) in sorted(self.runs.items())]

    def window_value_payloads(self, pks: Sequence[int]) -> list[bytes]:
        return [self.runs[pk][1] for pk in pks]

    def replace_window_values(
        self, model: str, start: datetime, replaced: Sequence[int], runs: Iterable[ValueRun]
    ) -> None:
        for pk in replaced:
            del self.runs[pk]
        for _, name, _, payload in runs:
            self.runs[max(self.runs, default=99) + 1] = (name, payload)

    def window_features(self, model: str, start: datetime, chunk: int = 10) -> Iterator[list[str]]:
        self.read.append("rows")
        for i in range(0, len(self.rows), chunk):
            yield [orjson.dumps(r).decode() for r in self.rows[i : i + chunk]]


def window(rng: np.random.Generator, n: int) -> list[dict[str, float]]:
    return [{"a": float(a), "b": float(b)} for a, b in rng.normal(size=(n, 2))]


def values_of(rows: list[dict[str, float]], name: str) -> np.ndarray:
    return np.sort([r[name] for r in rows])


def test_runs_spread_too_thin_are_merged_back_asked_for_or_not() -> None:
    rows = window(np.random.default_rng(1), 200)
    repository = Runs(rows)
    for i in range(0, 200, 20):  # ten fold steps: ten runs per column
        for name in ("a", "b"):
            repository.add(name, {name: values_of(rows[i : i + 20], name)})
    values = WindowValues(repository, "m", START, {"a": 200, "b": 200})  # type: ignore[arg-type]
    a = values("a")
    assert a is not None
    np.testing.assert_array_equal(a.values, values_of(rows, "a"))
    values.finish()  # "b" was not asked for: merged back all the same
    assert sorted(name for name, _ in repository.runs.values()) == ["a", "b"]
    assert repository.read == []
    b = WindowValues(repository, "m", START, {"a": 200, "b": 200})("b")  # type: ignore[arg-type]
    assert b is not None
    np.testing.assert_array_equal(b.values, values_of(rows, "b"))


def test_runs_that_miss_values_or_hold_every_column_are_read_from_the_rows_once() -> None:
    rows = window(np.random.default_rng(2), 50)
    repository = Runs(rows)
    both = {name: values_of(rows[:30], name) for name in ("a", "b")}
    repository.add(None, both)  # a run of every column, as stored before 0009
    values = WindowValues(repository, "m", START, {"a": 50, "b": 50})  # type: ignore[arg-type]
    b = values("b")
    assert b is not None and repository.read == ["rows"]
    np.testing.assert_array_equal(b.values, values_of(rows, "b"))
    values.finish()  # the old run is gone: "a", not asked for, is stored too
    assert sorted(name for name, _ in repository.runs.values()) == ["a", "b"]
    a = WindowValues(repository, "m", START, {"a": 50, "b": 50})("a")  # type: ignore[arg-type]
    assert a is not None and repository.read == ["rows"]
    np.testing.assert_array_equal(a.values, values_of(rows, "a"))
