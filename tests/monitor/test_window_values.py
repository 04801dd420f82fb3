"""A window's stored values, a column at a time: merged when asked for (runs of rows
folded only), merged back when spread over too many runs, read from the rows when the
runs do not hold them all."""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence
from datetime import UTC, datetime

import numpy as np
import orjson

from monitor.drift.runs import encode_run
from monitor.window_values import MAX_RUNS, WindowValues
from storage.rows import ValueRun

START = datetime(2026, 11, 2, tzinfo=UTC)


class Runs:
    """The repository's window-value methods, in memory, with the window's rows."""

    def __init__(self, rows: list[dict[str, float]]) -> None:
        self.rows = rows
        self.runs: dict[int, tuple[str | None, bytes, int | None]] = {}
        self.read: list[str] = []  # "rows" when the rows were read

    def add(
        self, name: str | None, columns: dict[str, np.ndarray], upto: int | None = None
    ) -> None:
        """A run; ``upto``: ingestion's, of the rows up to that pk."""
        self.runs[len(self.runs) + 100] = (name, encode_run(columns)[1], upto)

    def window_value_runs(
        self, model: str, start: datetime, folded: int
    ) -> list[tuple[int, str | None]]:
        return [
            (pk, name)
            for pk, (name, _, upto) in sorted(self.runs.items())
            if upto is None or upto <= folded
        ]

    def window_value_payloads(self, pks: Sequence[int]) -> list[bytes]:
        return [self.runs[pk][1] for pk in pks]

    def replace_window_values(
        self, model: str, start: datetime, replaced: Sequence[int], runs: Iterable[ValueRun]
    ) -> None:
        for pk in replaced:
            del self.runs[pk]
        for _, name, _, payload in runs:
            self.runs[max(self.runs, default=99) + 1] = (name, payload, None)

    def window_features(self, model: str, start: datetime, chunk: int = 10) -> Iterator[list[str]]:
        self.read.append("rows")
        for i in range(0, len(self.rows), chunk):
            yield [orjson.dumps(r).decode() for r in self.rows[i : i + chunk]]


def window(rng: np.random.Generator, n: int) -> list[dict[str, float]]:
    return [{"a": float(a), "b": float(b)} for a, b in rng.normal(size=(n, 2))]


def values_of(rows: list[dict[str, float]], name: str) -> np.ndarray:
    return np.sort([r[name] for r in rows])


def values_at(repository: Runs, counts: dict[str, int], folded: int = 0) -> WindowValues:
    return WindowValues(repository, "m", START, counts, folded=folded)  # type: ignore[arg-type]


def test_runs_spread_too_thin_are_merged_back_asked_for_or_not() -> None:
    n = 2 * (MAX_RUNS + 1)
    rows = window(np.random.default_rng(1), n)
    repository = Runs(rows)
    for i in range(0, n, 2):  # a fold step of two rows at a time: too many runs
        for name in ("a", "b"):
            repository.add(name, {name: values_of(rows[i : i + 2], name)})
    values = values_at(repository, {"a": n, "b": n})
    a = values("a")
    assert a is not None
    np.testing.assert_array_equal(a.values, values_of(rows, "a"))
    values.finish()  # "b" was not asked for: merged back all the same
    assert sorted(name for name, _, _ in repository.runs.values()) == ["a", "b"]
    assert repository.read == []
    b = values_at(repository, {"a": n, "b": n})("b")
    assert b is not None
    np.testing.assert_array_equal(b.values, values_of(rows, "b"))


def test_runs_ingestion_wrote_are_read_as_the_present_values_of_rows_folded() -> None:
    """Runs in row order, NaN where missing, with values the state does not count as
    present (+-inf, beyond 2**500) and -0.0, beside a sorted run the fold wrote; a run of
    rows not folded yet (ingested after the fold) is not read."""
    odd = np.array([np.nan, 3.0, -0.0, np.inf, -1e300, 1.5, 0.0, np.nan, -2.0])
    fold = np.array([-7.0, 0.5, 9.0])
    repository = Runs([])
    repository.add("a", {"a": odd}, upto=10)
    repository.add("a", {"a": fold})  # rows folded from their JSON: sorted, present
    repository.add("a", {"a": odd[::-1]}, upto=20)
    repository.add("a", {"a": np.array([42.0])}, upto=30)  # ingested after the fold
    a = values_at(repository, {"a": 13}, folded=20)("a")
    assert a is not None and repository.read == []
    present = [-7.0, -2.0, -2.0, 0.0, 0.0, 0.0, 0.0, 0.5, 1.5, 1.5, 3.0, 3.0, 9.0]
    assert a.values.tolist() == present
    assert not np.signbit(a.values[a.values == 0]).any()  # -0.0 is counted as 0.0


def test_runs_that_miss_values_or_hold_every_column_are_read_from_the_rows_once() -> None:
    rows = window(np.random.default_rng(2), 50)
    repository = Runs(rows)
    both = {name: values_of(rows[:30], name) for name in ("a", "b")}
    repository.add(None, both)  # a run of every column, as stored before 0009
    values = values_at(repository, {"a": 50, "b": 50})
    b = values("b")
    assert b is not None and repository.read == ["rows"]
    np.testing.assert_array_equal(b.values, values_of(rows, "b"))
    values.finish()  # the old run is gone: "a", not asked for, is stored too
    assert sorted(name for name, _, _ in repository.runs.values()) == ["a", "b"]
    a = values_at(repository, {"a": 50, "b": 50})("a")
    assert a is not None and repository.read == ["rows"]
    np.testing.assert_array_equal(a.values, values_of(rows, "a"))
