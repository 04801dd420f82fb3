"""Prepared columns: a column's present values, sorted and counted once.

Evidently drops missing values before it runs any drift test: ``get_one_column_drift``
(``evidently/legacy/calculations/data_drift.py``) replaces +-inf by NaN and calls
``dropna()`` on the reference and on the current column. :meth:`ReferenceColumn.from_values`
does the same (``None``, NaN and +-inf are dropped), then sorts and counts what is left.
Every drift method accepts a :class:`ReferenceColumn` in place of a raw array, so a
reference prepared once serves every window, and a current window prepared once serves
:func:`~monitor.drift.methods.auto_method` and the method it picks.

Numbers (integer and float dtypes, and object arrays holding only real numbers) are kept
as float64; booleans, strings and other objects are labels.
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from functools import cached_property
from typing import Any

import numpy as np

COLUMN_TYPES: frozenset[str] = frozenset({"numeric", "categorical", "boolean"})


@dataclass(frozen=True, eq=False)
class ReferenceColumn:
    """The present values of one column, sorted, with their distinct values and counts.

    ``values`` are sorted ascending (float64 for numbers). ``unique`` holds the distinct
    values, sorted (labels of mixed, unorderable types by type name, then ``repr``), and
    ``counts`` how often each occurs. ``integer`` records that the numbers came from an
    integer dtype, which changes numpy's automatic bin width (see :mod:`.binned`). ``mean``
    and ``std`` (population, ``ddof=0``) are NaN for labels. The arrays are made read-only,
    as one prepared reference is shared by every window.

    Of numbers, ``unique``, ``counts``, ``mean`` and ``std`` are computed when first
    asked for (W1, what a large window is scored with, needs only the values and the
    reference's std: for a window of a million values they were a tenth of finalizing);
    of labels counted already, the ``values`` (each label repeated its count: a million
    objects for a million rows, which the methods for labels do not read).
    """

    ordered: np.ndarray | None  # the values; None: labels, from ``known``'s counts
    numeric: bool
    integer: bool
    known: _Known | None = None  # what is known already; of numbers, the rest is computed

    def __post_init__(self) -> None:
        if self.ordered is not None:
            self.ordered.flags.writeable = False
        elif self.known is None or self.known.unique is None or self.known.counts is None:
            raise ValueError("a column without its values needs its distinct values and counts")

    @cached_property
    def values(self) -> np.ndarray:
        if self.ordered is not None:
            return self.ordered
        values = np.repeat(self.unique, self.counts)
        values.flags.writeable = False
        return values

    @cached_property
    def _distinct(self) -> tuple[np.ndarray, np.ndarray]:
        known = self.known
        if known is not None and known.unique is not None and known.counts is not None:
            unique, counts = known.unique, known.counts
        else:
            unique, counts = _runs(self.values)
        for array in (unique, counts):
            if array.flags.writeable:  # a broadcast view of ones is read-only already
                array.flags.writeable = False
        return unique, counts

    @property
    def unique(self) -> np.ndarray:
        return self._distinct[0]

    @property
    def counts(self) -> np.ndarray:
        return self._distinct[1]

    @cached_property
    def _moments(self) -> tuple[float, float]:
        if self.known is not None and self.known.moments is not None:
            return self.known.moments
        if not self.numeric or self.values.size == 0:
            return math.nan, math.nan
        return float(np.mean(self.values)), float(np.std(self.values))

    @property
    def mean(self) -> float:
        return self._moments[0]

    @property
    def std(self) -> float:
        return self._moments[1]

    @property
    def n(self) -> int:
        """The number of present values."""
        if self.ordered is None:
            return int(self.counts.sum())
        return int(self.ordered.size)

    @classmethod
    def from_values(cls, values: Any) -> ReferenceColumn:
        """Prepare a 1-D array-like: drop missing values (None, NaN, +-inf), sort, count."""
        if isinstance(values, ReferenceColumn):
            return values
        arr = np.asarray(values)
        if arr.ndim != 1:
            raise ValueError(f"a column must be one-dimensional, got shape {arr.shape}")
        kind = arr.dtype.kind
        if kind in "iu":
            return _from_numbers(arr.astype(np.float64), integer=True)
        if kind == "f":
            return _from_numbers(arr[np.isfinite(arr)].astype(np.float64), integer=False)
        if kind == "b":
            true = int(np.count_nonzero(arr))
            ordered = np.zeros(arr.size, dtype=bool)
            ordered[arr.size - true :] = True
            present = [(False, arr.size - true), (True, true)]
            unique = np.array([v for v, c in present if c], dtype=bool)
            counts = np.array([c for _, c in present if c], dtype=np.int64)
            return cls(ordered, False, False, _Known(unique, counts, (math.nan, math.nan)))
        if kind in "US":
            return _from_labels(Counter(arr.tolist()))
        if kind == "O":
            counter = Counter(arr.tolist())
            present = [k for k in counter if not is_missing(k)]
            if present and all(_real(k) for k in present):
                numbers = np.array([k for k in arr.tolist() if not is_missing(k)], dtype=np.float64)
                return _from_numbers(
                    numbers, integer=all(isinstance(k, int | np.integer) for k in present)
                )
            return _from_labels(counter)
        raise ValueError(f"cannot compare drift on values of dtype {arr.dtype}")

    @classmethod
    def from_counts(cls, labels: Sequence[Any], counts: Sequence[int]) -> ReferenceColumn:
        """Labels and how often each occurs: what :meth:`from_values` gives for
        ``np.repeat(labels, counts)``, without counting a million values again."""
        counter: Counter[Any] = Counter()
        for label, n in zip(labels, counts, strict=True):
            if n:
                counter[label] += int(n)
        return _from_labels(counter)

    @classmethod
    def from_sorted(
        cls,
        ordered: np.ndarray,
        *,
        integer: bool = False,
        moments: tuple[float, float] | None = None,
        distinct: bool = False,
    ) -> ReferenceColumn:
        """Numbers already sorted ascending and all finite (a profile's values, a window's
        kept values): what :meth:`from_values` gives for them, without sorting again.

        ``moments``: their ``(np.mean, np.std)``, and ``distinct``: that no two are equal,
        when known already (a profile's, of the same values), not computed again."""
        return _from_numbers(
            np.asarray(ordered, dtype=np.float64),
            integer=integer,
            presorted=True,
            moments=moments,
            distinct=distinct,
        )

    @cached_property
    def prefix_sums(self) -> np.ndarray:
        """``prefix_sums[k]`` = the sum of the ``k`` smallest values (numbers only)."""
        out = np.zeros(self.values.size + 1)
        np.cumsum(self.values, out=out[1:])
        out.flags.writeable = False
        return out

    def as_numbers(self) -> ReferenceColumn:
        """This column as numbers: booleans become 0.0/1.0; other labels are an error."""
        if self.numeric:
            return self
        if self.values.dtype.kind == "b":
            return _from_numbers(self.values.astype(np.float64), integer=False)
        raise ValueError("a numeric drift method needs numbers, got labels")


def prepare(values: Any) -> ReferenceColumn:
    """:meth:`ReferenceColumn.from_values`, which passes a prepared column through."""
    return ReferenceColumn.from_values(values)


def present_numbers(values: Any) -> np.ndarray:
    """The present values of a numeric column as float64, in their order (unsorted): all a
    test needs that looks at the values but not at their order, without sorting."""
    if isinstance(values, ReferenceColumn):
        return values.as_numbers().values
    arr = np.asarray(values)
    if arr.ndim == 1 and arr.dtype.kind in "iu":
        return arr.astype(np.float64)
    if arr.ndim == 1 and arr.dtype.kind == "f":
        return arr[np.isfinite(arr)].astype(np.float64, copy=False)
    return prepare(arr).as_numbers().values


def align(a: ReferenceColumn, b: ReferenceColumn) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The distinct values of ``a`` and ``b`` together (sorted when they can be ordered),
    with the counts of each column on them (zero where a value is absent)."""
    if a.unique.dtype.kind in "biuf" and b.unique.dtype.kind in "biuf":
        return _merge_sorted(a.unique, a.counts, b.unique, b.counts)
    keys = a.unique.tolist()
    index = {k: i for i, k in enumerate(keys)}
    ca = a.counts.tolist()
    cb = [0] * len(keys)
    for key, count in zip(b.unique.tolist(), b.counts.tolist(), strict=True):
        i = index.get(key)
        if i is None:
            index[key] = len(keys)
            keys.append(key)
            ca.append(0)
            cb.append(count)
        else:
            cb[i] = count
    order = _label_order(keys)
    return (
        _objects([keys[i] for i in order]),
        np.array(ca, dtype=np.int64)[order],
        np.array(cb, dtype=np.int64)[order],
    )


def _merge_sorted(
    ua: np.ndarray, ca: np.ndarray, ub: np.ndarray, cb: np.ndarray
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    # A stable argsort of two concatenated sorted runs is a linear merge (timsort finds
    # the runs); a value present in both appears twice, the copy from `a` first.
    v = np.concatenate((ua, ub))
    order = np.argsort(v, kind="stable")
    v = v[order]
    from_a = order < ua.size
    counts_a = _scatter(from_a, ca)
    counts_b = _scatter(~from_a, cb)
    twins = np.flatnonzero(v[1:] == v[:-1])
    if twins.size:
        counts_b[twins] = counts_b[twins + 1]
        keep = np.ones(v.size, dtype=bool)
        keep[twins + 1] = False
        v, counts_a, counts_b = v[keep], counts_a[keep], counts_b[keep]
    return v, counts_a, counts_b


def _scatter(mask: np.ndarray, counts: np.ndarray) -> np.ndarray:
    # A side's values keep their order in the merge, so its counts go where `mask` is set.
    if counts.size == int(counts.sum()):  # all distinct: the counts are the mask
        return mask.astype(np.int64)
    out = np.zeros(mask.size, dtype=np.int64)
    out[mask] = counts
    return out


@dataclass(frozen=True)
class _Known:
    """What a :class:`ReferenceColumn` need not compute: distinct values and counts, and
    (mean, std)."""

    unique: np.ndarray | None = None
    counts: np.ndarray | None = None
    moments: tuple[float, float] | None = None


def _from_numbers(
    x: np.ndarray,
    *,
    integer: bool,
    presorted: bool = False,
    moments: tuple[float, float] | None = None,
    distinct: bool = False,
) -> ReferenceColumn:
    ordered = x if presorted else np.sort(x)
    unique, counts = _ones(ordered) if distinct else (None, None)
    return ReferenceColumn(ordered, True, integer, _Known(unique, counts, moments))


def _runs(ordered: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Distinct values and counts of a sorted array (the array itself when all distinct)."""
    if ordered.size == 0:
        return ordered, np.zeros(0, dtype=np.int64)
    new = ordered[1:] != ordered[:-1]
    if new.all():
        return _ones(ordered)
    starts = np.concatenate(([0], np.flatnonzero(new) + 1))
    counts = np.diff(starts, append=ordered.size).astype(np.int64)
    return ordered[starts], counts


def _ones(ordered: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """All distinct: the values, and ones as a view of one 1 (no memory)."""
    return ordered, np.broadcast_to(np.ones(1, dtype=np.int64), ordered.shape)


def _from_labels(counter: Counter[Any]) -> ReferenceColumn:
    keys = [k for k in counter if not is_missing(k)]
    keys = [keys[i] for i in _label_order(keys)]
    unique = _objects(keys)
    counts = np.array([counter[k] for k in keys], dtype=np.int64)
    return ReferenceColumn(None, False, False, _Known(unique, counts, (math.nan, math.nan)))


def _label_order(keys: list[Any]) -> list[int]:
    positions = range(len(keys))
    try:
        return sorted(positions, key=keys.__getitem__)
    except TypeError:  # mixed types: group by type, then by repr
        return sorted(positions, key=lambda i: (type(keys[i]).__name__, repr(keys[i])))


def _objects(items: list[Any]) -> np.ndarray:
    out = np.empty(len(items), dtype=object)
    out[:] = items
    return out


def is_missing(value: Any) -> bool:
    """None, NaN or +-inf: what Evidently's ``replace([-inf, inf], nan).dropna()`` drops."""
    return value is None or (isinstance(value, float) and not math.isfinite(value))


def _real(value: Any) -> bool:
    return isinstance(value, int | float | np.integer | np.floating) and not isinstance(
        value, bool | np.bool_
    )
