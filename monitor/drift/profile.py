"""The reference profile: what the training data looked like, fitted once per model version.

Per column: its type, missing count, and for numeric columns frozen quantile bin edges with
the reference counts on them, range and moments, and the sorted reference values (all of
them by default, or a uniform sample of ``max_values`` when the user asks) for exact
tests; for categorical and boolean columns the vocabulary with its counts; and each
column's null distribution (:mod:`monitor.drift.nulls`), which calibrated thresholds
read at no cost. Window states
(:mod:`monitor.drift.state`) are counted on these frozen bins and vocabularies, so a
window's statistics never need the reference again.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import msgspec
import numpy as np

from monitor.drift.codec import (
    binary_arrays,
    decode_array,
    decode_values,
    encode_array,
    encode_values,
)
from monitor.drift.nulls import VERSION, ColumnNull, fit_nulls
from monitor.records import FeatureType

__all__ = ["decode_array", "decode_values", "encode_array", "encode_values"]


@dataclass(frozen=True)
class ColumnProfile:
    name: str
    kind: FeatureType
    n: int  # values present
    missing: int
    n_unique: int
    # numeric
    edges: np.ndarray = field(default_factory=lambda: np.empty(0))
    counts: np.ndarray = field(default_factory=lambda: np.empty(0, dtype=np.int64))
    values: np.ndarray = field(default_factory=lambda: np.empty(0))  # sorted
    minimum: float = float("nan")
    maximum: float = float("nan")
    mean: float = float("nan")
    std: float = float("nan")
    # categorical and boolean
    categories: tuple[str, ...] = ()
    category_counts: np.ndarray = field(default_factory=lambda: np.empty(0, dtype=np.int64))

    @property
    def numeric(self) -> bool:
        return self.kind is FeatureType.NUMERIC

    def slot_of(self, values: np.ndarray) -> np.ndarray:
        """Histogram slot per value: 0 below the reference minimum, ``len(edges)`` above
        its maximum, ``i`` for the bin ``[edges[i-1], edges[i])`` (the last bin is closed)."""
        slots = np.searchsorted(self.edges, values, side="right")
        slots[values == self.edges[-1]] = len(self.edges) - 1
        return slots

    def slot_counts(self, ordered: np.ndarray) -> np.ndarray:
        """``np.bincount(slot_of(values))`` of sorted values (:func:`slot_counts`)."""
        return slot_counts(ordered, self.edges)


def slot_counts(ordered: np.ndarray, edges: np.ndarray) -> np.ndarray:
    """``np.bincount(slot_of(values), minlength=edges.size + 1)`` for sorted values: a
    search per edge instead of one per value (sorting and then this costs a third of
    searching every value among a thousand edges)."""
    below = np.searchsorted(ordered, edges[:-1], side="left")  # values < e_i, i < B
    closed = np.searchsorted(ordered, edges[-1:], side="right")  # values <= e_B
    cum = np.concatenate(([0], below, closed, [ordered.size]))
    return np.diff(cum).astype(np.int64)


def category_text(value: Any) -> str:
    """The canonical text of a categorical or boolean value (``True`` -> ``"true"``)."""
    if isinstance(value, bool | np.bool_):
        return "true" if value else "false"
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value)


@dataclass(frozen=True)
class ReferenceProfile:
    model_version: str
    rows: int
    columns: dict[str, ColumnProfile]
    # a uniform sample of whole reference rows (numeric as float64 with NaN, the rest as
    # category text or None), for multivariate drift and detail reports
    sample: dict[str, np.ndarray] = field(default_factory=dict)
    # each column's null distribution (monitor.drift.nulls), fitted with the profile and
    # stored with it: calibrated thresholds cost nothing at run time
    nulls: dict[str, ColumnNull] = field(default_factory=dict)

    @property
    def calibrated(self) -> bool:
        """Whether every column with values has its null (older profiles have none)."""
        return all(name in self.nulls for name, c in self.columns.items() if c.n)

    def to_dict(self) -> dict[str, Any]:
        return {
            "model_version": self.model_version,
            "rows": self.rows,
            "columns": {name: _column_dict(c) for name, c in self.columns.items()},
            "sample": {name: encode_values(v) for name, v in self.sample.items()},
            "nulls_version": VERSION,
            "nulls": {name: null.to_dict() for name, null in self.nulls.items()},
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> ReferenceProfile:
        current = data.get("nulls_version") == VERSION
        return cls(
            model_version=data["model_version"],
            rows=data["rows"],
            columns={name: _column_from(c) for name, c in data["columns"].items()},
            sample={name: decode_values(v) for name, v in data.get("sample", {}).items()},
            nulls={
                name: ColumnNull.from_dict(n)
                for name, n in (data.get("nulls", {}) if current else {}).items()
            },
        )


class _Array(msgspec.Struct):
    dtype: str
    # JSON: msgspec decodes the base64 text straight into bytes; msgpack: a view of the
    # stored payload, no copy (the profile's arrays are most of it)
    b64: memoryview


class _Column(msgspec.Struct):
    name: str
    kind: str
    n: int
    missing: int
    n_unique: int
    edges: _Array | None = None
    counts: _Array | None = None
    values: _Array | None = None
    category_counts: _Array | None = None
    minimum: float | None = None
    maximum: float | None = None
    mean: float | None = None
    std: float | None = None
    categories: list[str] = []


class _Profile(msgspec.Struct):
    model_version: str
    rows: int
    columns: dict[str, _Column]
    sample: dict[str, Any] = {}
    nulls_version: int | None = None
    nulls: dict[str, Any] = {}
    source: str | None = None


def profile_to_binary(profile: ReferenceProfile, source: str | None) -> bytes:
    """A profile as it is stored: :meth:`ReferenceProfile.to_dict` and its ``source`` in
    msgpack, arrays as raw bytes (:func:`profile_from_stored` reads it)."""
    return msgspec.msgpack.encode(binary_arrays({**profile.to_dict(), "source": source}))


def profile_from_stored(stored: str | bytes | memoryview) -> tuple[ReferenceProfile, str | None]:
    """A stored profile and its ``source``: msgpack (bytes or a buffer,
    :func:`profile_to_binary`; its arrays are views of it) or JSON (text: profiles stored
    before binary ones)."""
    if isinstance(stored, str):
        return profile_from_json(stored)
    return _profile_from(msgspec.msgpack.decode(stored, type=_Profile))


def profile_from_json(text: str | bytes) -> tuple[ReferenceProfile, str | None]:
    """A stored profile (:meth:`ReferenceProfile.to_dict` as JSON) and its ``source``.

    The same as ``ReferenceProfile.from_dict(orjson.loads(text))``, at a fraction of the
    time and memory: the reference's values (most of the text) are decoded from base64
    straight into bytes that the arrays view, with no text copy of them in between."""
    return _profile_from(msgspec.json.decode(text, type=_Profile))


def _profile_from(data: _Profile) -> tuple[ReferenceProfile, str | None]:
    columns = {}
    for name, c in data.columns.items():
        kwargs: dict[str, Any] = {
            "name": c.name,
            "kind": FeatureType(c.kind),
            "n": c.n,
            "missing": c.missing,
            "n_unique": c.n_unique,
            "categories": tuple(c.categories),
        }
        for key in _ARRAYS:
            array: _Array | None = getattr(c, key)
            if array is not None:
                kwargs[key] = np.frombuffer(array.b64, dtype=np.dtype(array.dtype))
        for key in _FLOATS:
            value = getattr(c, key)
            kwargs[key] = float("nan") if value is None else float(value)
        columns[name] = ColumnProfile(**kwargs)
    current = data.nulls_version == VERSION
    profile = ReferenceProfile(
        model_version=data.model_version,
        rows=data.rows,
        columns=columns,
        sample={name: decode_values(v) for name, v in data.sample.items()},
        nulls={
            name: ColumnNull.from_dict(n) for name, n in (data.nulls if current else {}).items()
        },
    )
    return profile, data.source


def fit_profile(
    columns: Mapping[str, np.ndarray],
    schema: Mapping[str, FeatureType],
    *,
    model_version: str,
    bins: int = 1000,
    max_values: int | None = None,
    sample_rows: int = 5000,
    seed: int = 0,
) -> ReferenceProfile:
    """Fit the profile of reference ``columns`` (name -> values, NaN/None for missing),
    with each column's null distribution. Numeric columns keep all their values, unless
    ``max_values`` asks for a uniform sample of at most that many (scores are then
    against the sample, not the whole reference)."""
    lengths = {len(v) for v in columns.values()}
    if len(lengths) > 1:
        raise ValueError(f"reference columns differ in length: {sorted(lengths)}")
    rows = lengths.pop() if lengths else 0
    picked = np.sort(
        np.random.default_rng(seed).choice(rows, size=min(rows, sample_rows), replace=False)
    )
    sample: dict[str, np.ndarray] = {}
    profiles = {}
    for name, kind in schema.items():
        if name not in columns:
            raise ValueError(f"reference has no column {name!r}")
        values = columns[name]
        if kind is FeatureType.NUMERIC:
            profiles[name] = _fit_numeric(name, values, bins, max_values, seed)
            chosen = np.asarray(values, dtype=np.float64)[picked]
            sample[name] = np.where(np.isfinite(chosen), chosen, np.nan)
        else:
            profiles[name] = _fit_categorical(name, kind, values)
            sample[name] = np.array(
                [
                    None if _missing(v) else category_text(v)
                    for v in np.asarray(values, dtype=object)[picked]
                ],
                dtype=object,
            )
    profile = ReferenceProfile(model_version, rows, profiles, sample)
    return dataclasses.replace(profile, nulls=fit_nulls(profile, seed=seed))


def _fit_numeric(
    name: str, raw: np.ndarray, bins: int, max_values: int | None, seed: int
) -> ColumnProfile:
    values = np.asarray(raw, dtype=np.float64)
    present = values[np.isfinite(values)]  # +-inf counts as missing, as in drift tests
    missing = int(values.size - present.size)
    if present.size == 0:
        return ColumnProfile(name, FeatureType.NUMERIC, 0, missing, 0)
    ordered = np.sort(present)
    edges = np.unique(np.quantile(ordered, np.linspace(0.0, 1.0, bins + 1)))
    if edges.size == 1:  # a constant column: one closed bin
        edges = np.array([edges[0], edges[0]])
    profile = ColumnProfile(
        name,
        FeatureType.NUMERIC,
        n=int(present.size),
        missing=missing,
        n_unique=int(np.count_nonzero(np.diff(ordered)) + 1),
        edges=edges,
        values=_bounded(ordered, max_values, seed),
        minimum=float(ordered[0]),
        maximum=float(ordered[-1]),
        mean=float(np.mean(ordered)),
        std=float(np.std(ordered)),
    )
    counts = slot_counts(ordered, edges)
    return ColumnProfile(**{**profile.__dict__, "counts": counts})


def _bounded(ordered: np.ndarray, max_values: int | None, seed: int) -> np.ndarray:
    if max_values is None or ordered.size <= max_values:
        return ordered
    rng = np.random.default_rng(seed)
    return np.sort(rng.choice(ordered, size=max_values, replace=False))


def _fit_categorical(name: str, kind: FeatureType, raw: np.ndarray) -> ColumnProfile:
    texts = [None if _missing(v) else category_text(v) for v in np.asarray(raw, dtype=object)]
    present = [t for t in texts if t is not None]
    categories, counts = np.unique(np.array(present, dtype=object), return_counts=True)
    return ColumnProfile(
        name,
        kind,
        n=len(present),
        missing=len(texts) - len(present),
        n_unique=len(categories),
        categories=tuple(str(c) for c in categories),
        category_counts=counts.astype(np.int64),
    )


def _missing(value: Any) -> bool:
    return value is None or (isinstance(value, float) and value != value)


_ARRAYS = ("edges", "counts", "values", "category_counts")
_FLOATS = ("minimum", "maximum", "mean", "std")


def _column_dict(c: ColumnProfile) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, value in c.__dict__.items():
        if key in _ARRAYS:
            out[key] = encode_array(value)
        elif key == "kind":
            out[key] = str(value)
        elif key == "categories":
            out[key] = list(value)
        else:
            out[key] = value
    return out


def _column_from(data: Mapping[str, Any]) -> ColumnProfile:
    kwargs: dict[str, Any] = {}
    for key, value in data.items():
        if key in _ARRAYS:
            kwargs[key] = decode_array(value)
        elif key == "kind":
            kwargs[key] = FeatureType(value)
        elif key == "categories":
            kwargs[key] = tuple(value)
        elif key in _FLOATS:
            kwargs[key] = float("nan") if value is None else float(value)  # JSON has no NaN
        else:
            kwargs[key] = value
    return ColumnProfile(**kwargs)
