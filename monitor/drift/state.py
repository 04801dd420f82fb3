"""Mergeable partial aggregates of a window: ``partial(batch) -> state``, ``merge(a, b)``.

A :class:`WindowState` holds, per column, counts on the reference profile's frozen bins
(numeric) or vocabulary (categorical, boolean; with the unseen values counted apart),
missing and type-error counts, exact sums for the moments, the range, and one bounded
sample of whole rows shared by all columns (for exact tests and multivariate drift).

Merging is associative and commutative *bit for bit*: counts are integers, sums are exact
integers (:mod:`monitor.drift.exact`), and the sample keeps the ``sample_size`` rows with
the smallest keys, a key being a hash of the row's id, so which rows are kept does not
depend on how the window was split into batches or Spark partitions.
"""

from __future__ import annotations

import hashlib
from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Any

import numpy as np

from monitor.drift.encoded import EncodedColumn
from monitor.drift.exact import exact_sum
from monitor.drift.profile import (
    ColumnProfile,
    ReferenceProfile,
    category_text,
    decode_array,
    decode_values,
    encode_array,
    encode_values,
)

MAX_UNSEEN = 100  # unseen categories remembered per column (the lexicographically smallest
# ones, so that which are remembered does not depend on merge order); the rest are counted


def row_keys(ids: Sequence[str]) -> np.ndarray:
    """A uniform 64-bit key per row id (blake2b), the same on every machine."""
    return np.array(
        [
            int.from_bytes(hashlib.blake2b(i.encode(), digest_size=8).digest(), "little")
            for i in ids
        ],
        dtype=np.uint64,
    )


@dataclass
class ColumnState:
    n: int = 0  # values present and well-typed
    missing: int = 0
    type_errors: int = 0
    # numeric
    slots: np.ndarray = field(default_factory=lambda: np.zeros(0, dtype=np.int64))
    total: int = 0  # exact sum, scaled (see monitor.drift.exact)
    total_sq: int = 0
    minimum: float | None = None
    maximum: float | None = None
    # categorical and boolean
    categories: np.ndarray = field(default_factory=lambda: np.zeros(0, dtype=np.int64))
    unseen: dict[str, int] = field(default_factory=dict)
    unseen_other: int = 0  # unseen values beyond MAX_UNSEEN distinct ones

    @property
    def unseen_total(self) -> int:
        return sum(self.unseen.values()) + self.unseen_other


@dataclass
class WindowState:
    rows: int = 0
    columns: dict[str, ColumnState] = field(default_factory=dict)
    sample_size: int = 5000
    sample_keys: np.ndarray = field(default_factory=lambda: np.zeros(0, dtype=np.uint64))
    sample: dict[str, np.ndarray] = field(default_factory=dict)  # column -> values

    def to_dict(self) -> dict[str, Any]:
        return {
            "rows": self.rows,
            "sample_size": self.sample_size,
            "sample_keys": encode_array(self.sample_keys),
            "sample": {k: encode_values(self.sample[k]) for k in sorted(self.sample)},
            "columns": {k: _column_dict(self.columns[k]) for k in sorted(self.columns)},
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> WindowState:
        return cls(
            rows=data["rows"],
            sample_size=data["sample_size"],
            sample_keys=decode_array(data["sample_keys"]),
            sample={k: decode_values(v) for k, v in data["sample"].items()},
            columns={k: _column_from(c) for k, c in data["columns"].items()},
        )


def partial(
    batch: Mapping[str, Sequence[Any] | EncodedColumn],
    keys: np.ndarray,
    profile: ReferenceProfile,
    *,
    sample_size: int = 5000,
    ordered: dict[str, np.ndarray] | None = None,
    below: int | None = None,
) -> WindowState:
    """The state of one batch: ``batch`` maps column -> values (None for missing), or
    to an :class:`EncodedColumn` (a feature block's, :mod:`monitor.blocks`).

    ``ordered``, when given, receives each numeric column's present values, sorted (the
    state counts its histogram from them): the statistics job keeps them to score the
    window exactly without reading its rows again.

    ``below``: only rows with a smaller key may enter the sample (a state this batch will
    be merged into already holds ``sample_size`` smaller keys than any other); the merged
    state is the same, and the category texts of rows that could never be kept are not
    made."""
    rows = len(keys)
    state = WindowState(rows=rows, sample_size=sample_size)
    converted: dict[str, np.ndarray] = {}
    raw_labels: dict[str, Sequence[Any] | EncodedColumn] = {}
    for name, column in profile.columns.items():
        values = batch.get(name, [None] * rows)
        if len(values) != rows:
            raise ValueError(f"column {name!r} has {len(values)} values for {rows} rows")
        if column.numeric:
            numbers = values.numbers() if isinstance(values, EncodedColumn) else values
            state.columns[name], converted[name], present = _numeric(column, numbers)
            if ordered is not None:
                ordered[name] = present
        else:
            pairs = values.counted() if isinstance(values, EncodedColumn) else _counted(values)
            state.columns[name] = _categorical(column, pairs)
            raw_labels[name] = values
    if below is None:
        keep = _smallest(keys, sample_size)
    else:
        candidates = np.flatnonzero(keys < np.uint64(below))
        keep = candidates[_smallest(keys[candidates], sample_size)]
    state.sample_keys = keys[keep]
    state.sample = {name: values[keep] for name, values in converted.items()}
    for name, labels in raw_labels.items():  # category texts of the kept rows only
        if isinstance(labels, EncodedColumn):
            state.sample[name] = labels.texts(keep)
        else:
            state.sample[name] = _texts([labels[i] for i in keep.tolist()])
    return state


def merge(a: WindowState, b: WindowState) -> WindowState:
    """The state of the union of two disjoint sets of rows."""
    if a.sample_size != b.sample_size:
        raise ValueError("cannot merge states with different sample sizes")
    out = WindowState(rows=a.rows + b.rows, sample_size=a.sample_size)
    for name in sorted(a.columns.keys() | b.columns.keys()):
        out.columns[name] = _merge_column(a.columns.get(name), b.columns.get(name))
    keys = np.concatenate([a.sample_keys, b.sample_keys])
    keep = _smallest(keys, a.sample_size)
    out.sample_keys = keys[keep]
    for name in sorted(a.sample.keys() | b.sample.keys()):
        joined = np.concatenate([_sample_of(a, name), _sample_of(b, name)])
        out.sample[name] = joined[keep]
    return out


def _sample_of(state: WindowState, name: str) -> np.ndarray:
    if name in state.sample:
        return state.sample[name]
    return np.full(state.sample_keys.size, None, dtype=object)


def _smallest(keys: np.ndarray, k: int) -> np.ndarray:
    """Indices of the k smallest keys, in key order (ties cannot reorder: keys are unique
    per id, and a duplicate id is never stored twice)."""
    if keys.size <= k:
        return np.argsort(keys, kind="stable")
    part = np.argpartition(keys, k - 1)[:k]
    return part[np.argsort(keys[part], kind="stable")]


NUMBERS = frozenset({float, int, type(None)})
# the largest usable magnitude: beyond, a value's square (the moments' exact sums) is not
# a float64; such values, and +-inf, are counted as type errors, not as numbers
LARGEST = 2.0**500
LABELS = (frozenset({str, type(None)}), frozenset({bool, type(None)}), NUMBERS)


def _numeric(
    column: ColumnProfile, values: Sequence[Any] | np.ndarray
) -> tuple[ColumnState, np.ndarray, np.ndarray]:
    """The column's state, its values as float64 (NaN where missing or not a number) and
    its present values sorted."""
    raw: np.ndarray | None = values if isinstance(values, np.ndarray) else None
    if raw is None and set(map(type, values)) <= NUMBERS:
        try:  # plain numbers and None: numpy converts them at once (None -> NaN)
            raw = np.array(values, dtype=np.float64)
        except OverflowError:  # an integer beyond float64: the loop below counts it
            raw = None
    if raw is None:
        raw = np.asarray(values, dtype=object)
    if raw.dtype.kind == "f":
        floats = raw.astype(np.float64)
        missing_mask = np.isnan(floats)
        with np.errstate(invalid="ignore"):
            unusable = np.abs(floats) > LARGEST  # +-inf too
        type_errors = int(unusable.sum())
        floats[unusable] = np.nan
    else:
        floats = np.full(len(raw), np.nan)
        missing_mask = np.zeros(len(raw), dtype=bool)
        type_errors = 0
        for i, v in enumerate(raw.tolist()):
            if v is None or (isinstance(v, float) and v != v):
                missing_mask[i] = True
            elif isinstance(v, int | float) and not isinstance(v, bool) and abs(v) <= LARGEST:
                floats[i] = v
            else:
                type_errors += 1
    present = floats[~np.isnan(floats)]
    present += 0.0  # -0.0 becomes 0.0: min/max cannot flip
    present.sort()
    state = ColumnState(
        n=int(present.size),
        missing=int(missing_mask.sum()),
        type_errors=type_errors,
        total=exact_sum(present),
        total_sq=exact_sum(present * present),
        minimum=float(present[0]) if present.size else None,
        maximum=float(present[-1]) if present.size else None,
    )
    if column.edges.size:
        state.slots = column.slot_counts(present)
    return state, floats, present


def _categorical(column: ColumnProfile, pairs: list[tuple[Any, int]]) -> ColumnState:
    """The state of a categorical column from its (value, rows) pairs (:func:`_counted`)."""
    index = {c: i for i, c in enumerate(column.categories)}
    counts = np.zeros(len(column.categories), dtype=np.int64)
    state = ColumnState(categories=counts)
    unseen: dict[str, int] = {}
    for value, n in pairs:
        if value is None or (isinstance(value, float) and value != value):
            state.missing += n
            continue
        if isinstance(value, dict | list):
            state.type_errors += n
            continue
        text = category_text(value)
        state.n += n
        slot = index.get(text)
        if slot is not None:
            counts[slot] += n
        else:
            unseen[text] = unseen.get(text, 0) + n
    state.unseen, state.unseen_other = _cap_unseen(unseen, 0)
    return state


def _counted(values: Sequence[Any]) -> list[tuple[Any, int]]:
    """(value, count) pairs: counted at once when the values are of one hashable kind
    (True, 1 and 1.0 are equal keys, so booleans are never counted with numbers)."""
    kinds = set(map(type, values))
    if any(kinds <= allowed for allowed in LABELS):
        return list(Counter(values).items())
    return [(v, 1) for v in values]


def _texts(values: list[Any]) -> np.ndarray:
    """Category texts of a sample's values (None where missing or not a label)."""
    out = np.full(len(values), None, dtype=object)
    for i, v in enumerate(values):
        if v is None or (isinstance(v, float) and v != v) or isinstance(v, dict | list):
            continue
        out[i] = category_text(v)
    return out


def _cap_unseen(unseen: dict[str, int], other: int) -> tuple[dict[str, int], int]:
    """Keep the MAX_UNSEEN smallest texts (sorted), count the rest in ``other``.

    Exactly mergeable: a text among the smallest of a union is among the smallest of
    every part that holds it, so its count was kept everywhere."""
    names = sorted(unseen)
    for name in names[MAX_UNSEEN:]:
        other += unseen[name]
    return {name: unseen[name] for name in names[:MAX_UNSEEN]}, other


def _merge_column(a: ColumnState | None, b: ColumnState | None) -> ColumnState:
    if a is None or b is None:
        only = a or b
        assert only is not None
        return replace(
            only,
            slots=only.slots.copy(),
            categories=only.categories.copy(),
            unseen=dict(only.unseen),
        )
    unseen = dict(a.unseen)
    for text, n in b.unseen.items():
        unseen[text] = unseen.get(text, 0) + n
    unseen, other = _cap_unseen(unseen, a.unseen_other + b.unseen_other)
    return ColumnState(
        n=a.n + b.n,
        missing=a.missing + b.missing,
        type_errors=a.type_errors + b.type_errors,
        slots=_add(a.slots, b.slots),
        total=a.total + b.total,
        total_sq=a.total_sq + b.total_sq,
        minimum=_pick(min, a.minimum, b.minimum),
        maximum=_pick(max, a.maximum, b.maximum),
        categories=_add(a.categories, b.categories),
        unseen=unseen,
        unseen_other=other,
    )


def _add(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    if a.size == 0:
        return b.copy()
    if b.size == 0:
        return a.copy()
    return a + b


def _pick(fn: Any, a: float | None, b: float | None) -> float | None:
    if a is None:
        return b
    if b is None:
        return a
    return float(fn(a, b))


def _column_dict(c: ColumnState) -> dict[str, Any]:
    return {
        "n": c.n,
        "missing": c.missing,
        "type_errors": c.type_errors,
        "slots": c.slots.tolist(),
        "total": str(c.total),
        "total_sq": str(c.total_sq),
        "minimum": c.minimum,
        "maximum": c.maximum,
        "categories": c.categories.tolist(),
        "unseen": c.unseen,
        "unseen_other": c.unseen_other,
    }


def _column_from(data: Mapping[str, Any]) -> ColumnState:
    return ColumnState(
        n=data["n"],
        missing=data["missing"],
        type_errors=data["type_errors"],
        slots=np.array(data["slots"], dtype=np.int64),
        total=int(data["total"]),
        total_sq=int(data["total_sq"]),
        minimum=data["minimum"],
        maximum=data["maximum"],
        categories=np.array(data["categories"], dtype=np.int64),
        unseen=dict(data["unseen"]),
        unseen_other=data["unseen_other"],
    )
