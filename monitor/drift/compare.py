"""Drift of a window against the reference: per column, then for the dataset (pure).

:func:`compare` is the batch path: reference and current columns in memory, every method
run on all the values (the scores equal Evidently's to 1e-9). :func:`window_drift` is the
streaming path: it finalizes a :class:`~monitor.drift.state.WindowState` against the
reference profile. Categorical and boolean columns are exact there too (their counts are
the whole multiset of values); numeric columns are exact while the window fits in its row
sample. Beyond that, a method with a binned form (:mod:`monitor.drift.approximate`) is
computed from the histogram of *all* the window's values on the profile's bins, which
gives an interval certain to hold the exact score: when the whole interval falls on one
side of the threshold, the decision is the exact one and the column is ``basis:
"binned"``, its score the interval's midpoint and ``error_bound`` half its width.
Otherwise (no binned form, or the interval holds the threshold) the method runs on the
window's uniform row sample of ``sample_size`` rows (``basis: "sample"``), and ``note``
says why.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Collection, Mapping
from dataclasses import asdict, dataclass, field, replace
from typing import Any

import numpy as np

from monitor.drift.approximate import Histograms, binned_interval
from monitor.drift.methods import METHODS, Method, auto_method
from monitor.drift.profile import ColumnProfile, ReferenceProfile
from monitor.drift.samples import ReferenceColumn
from monitor.drift.state import ColumnState, WindowState


def finite_dict(result: Any) -> dict[str, Any]:
    """A result dataclass as a dict for JSON, NaN and infinities as None."""
    return {
        k: None if isinstance(v, float) and not math.isfinite(v) else v
        for k, v in asdict(result).items()
    }


OTHER_UNSEEN = "(other unseen values)"
Threshold = float | None | Callable[[str, int], float | None]


@dataclass(frozen=True)
class ColumnDrift:
    column: str
    column_type: str
    method: str
    score: float
    threshold: float
    drifted: bool
    # "exact": all values; "binned": all values, from their histogram on the profile's
    # bins, within `error_bound` of the exact score; "sample": a uniform sample of the
    # window's rows; "grouped": all values, with unseen categories past the remembered
    # ones counted as one category
    basis: str
    n_reference: int
    n_current: int
    error_bound: float | None = None  # binned: |score - exact score| <= error_bound
    note: str = ""  # why a large window's numeric column fell back to its sample

    def to_dict(self) -> dict[str, Any]:
        return finite_dict(self)


@dataclass(frozen=True)
class DatasetDrift:
    columns: list[ColumnDrift] = field(default_factory=list)
    drift_share: float = 0.5
    # importance per column (e.g. the model's feature importances); columns not named
    # weigh 1. Without weights the share is Evidently's plain share of columns.
    weights: Mapping[str, float] = field(default_factory=dict)

    @property
    def drifted_columns(self) -> int:
        return sum(c.drifted for c in self.columns)

    @property
    def share(self) -> float:
        """The (importance-weighted) share of drifted columns."""
        total = sum(self.weights.get(c.column, 1.0) for c in self.columns)
        drifted = sum(self.weights.get(c.column, 1.0) for c in self.columns if c.drifted)
        return drifted / total if total > 0 else 0.0

    @property
    def drifted(self) -> bool:
        """Evidently's rule: the share of drifted columns reaches ``drift_share``."""
        return bool(self.columns) and self.share >= self.drift_share

    def to_dict(self) -> dict[str, Any]:
        return {
            "drifted": self.drifted,
            "drifted_columns": self.drifted_columns,
            "columns_total": len(self.columns),
            "share": self.share,
            "drift_share": self.drift_share,
            "weighted": bool(self.weights),
            "columns": [c.to_dict() for c in self.columns],
        }


def column_drift(
    name: str,
    reference: Any,
    current: Any,
    column_type: str,
    *,
    method: str = "auto",
    threshold: Threshold = None,
    basis: str = "exact",
) -> ColumnDrift:
    """One column's drift. ``reference`` and ``current`` are arrays or prepared columns.

    ``threshold`` is a number, None for the method's default, or a function of the chosen
    method and the number of current values (a calibrated threshold).
    """
    ref = ReferenceColumn.from_values(reference)
    cur = ReferenceColumn.from_values(current)
    if method == "auto":
        method = auto_method(ref, cur, column_type) if cur.n else _empty_choice(column_type)
    chosen = METHODS[method]
    if not chosen.accepts(column_type) and method not in ("chisquare", "z"):
        raise ValueError(f"method {method!r} does not apply to {column_type} column {name!r}")
    limit = _limit(chosen, threshold, method, cur.n)
    score = chosen.fn(ref, cur, column_type=str(column_type)) if cur.n else float("nan")
    return ColumnDrift(
        name,
        str(column_type),
        method,
        float(score),
        limit,
        chosen.drifted(score, limit),
        basis,
        ref.n,
        cur.n,
    )


def _empty_choice(column_type: str) -> str:
    return "wasserstein" if str(column_type) == "numeric" else "jensenshannon"


def compare(
    reference: Mapping[str, Any],
    current: Mapping[str, Any],
    schema: Mapping[str, Any],
    *,
    methods: Mapping[str, str] | None = None,
    thresholds: Mapping[str, float] | None = None,
    drift_share: float = 0.5,
) -> DatasetDrift:
    """Batch drift of every schema column, on all values."""
    methods = methods or {}
    thresholds = thresholds or {}
    return DatasetDrift(
        [
            column_drift(
                name,
                reference[name],
                current[name],
                str(kind),
                method=methods.get(name, "auto"),
                threshold=thresholds.get(name),
            )
            for name, kind in schema.items()
        ],
        drift_share,
    )


def reference_column(profile: ColumnProfile) -> ReferenceColumn:
    """The prepared reference of a profiled column."""
    if profile.numeric:
        return ReferenceColumn.from_values(profile.values)
    labels = np.array(profile.categories, dtype=object)
    if profile.kind == "boolean":
        labels = np.array([c == "true" for c in profile.categories], dtype=object)
    return ReferenceColumn.from_values(np.repeat(labels, profile.category_counts))


def current_values(
    profile: ColumnProfile, state: ColumnState, sample: np.ndarray | None, complete: bool
) -> tuple[Any, str]:
    """The window's values of one column and whether they are all of them."""
    if not profile.numeric:
        labels: list[Any] = list(profile.categories) + list(state.unseen)
        counts = [*state.categories.tolist(), *state.unseen.values()]
        if state.unseen_other:  # unseen values past the remembered ones, as one label
            labels.append(OTHER_UNSEEN)
            counts.append(state.unseen_other)
        if profile.kind == "boolean":
            booleans = {"true": True, "false": False}
            labels = [booleans.get(label, label) for label in labels]
        values = np.repeat(np.array(labels, dtype=object), counts)
        return values, "exact" if state.unseen_other == 0 else "grouped"
    assert sample is not None
    return sample, "exact" if complete else "sample"


def window_drift(
    state: WindowState,
    profile: ReferenceProfile,
    *,
    references: Mapping[str, ReferenceColumn] | None = None,
    methods: Mapping[str, str] | None = None,
    thresholds: Mapping[str, Threshold] | None = None,
    drift_share: float = 0.5,
    only: Collection[str] | None = None,
    weights: Mapping[str, float] | None = None,
) -> DatasetDrift:
    """Finalize a window's state: the drift of every profiled column (or of ``only``)."""
    methods = methods or {}
    thresholds = thresholds or {}
    references = references or {}
    complete = state.rows <= state.sample_size
    columns = []
    for name, column in profile.columns.items():
        if name not in state.columns or column.n == 0:
            continue
        if only is not None and name not in only:
            continue
        ref = references.get(name) or reference_column(column)
        values, basis = current_values(
            column, state.columns[name], state.sample.get(name), complete
        )
        method = methods.get(name, "auto")
        threshold = thresholds.get(name)
        note = ""
        if basis == "sample":
            values = ReferenceColumn.from_values(values)
            if method == "auto":
                method = auto_method(ref, values, "numeric") if values.n else "wasserstein"
            binned, note = binned_drift(name, ref, column, state.columns[name], method, threshold)
            if binned is not None:
                columns.append(binned)
                continue
        drift = column_drift(
            name, ref, values, str(column.kind), method=method, threshold=threshold, basis=basis
        )
        columns.append(replace(drift, note=note) if note else drift)
    return DatasetDrift(columns, drift_share, weights or {})


def binned_drift(
    name: str,
    reference: ReferenceColumn,
    column: ColumnProfile,
    state: ColumnState,
    method: str,
    threshold: Threshold,
) -> tuple[ColumnDrift | None, str]:
    """A numeric column's drift from the histogram of all the window's values, when its
    interval decides; otherwise None and why not."""
    chosen = METHODS[method]
    window = Histograms.of(reference, column, state)
    if window is None:
        return None, "no histogram of the window's values" if state.n else ""
    interval, why = binned_interval(method, window)
    if interval is None:
        return None, why
    limit = _limit(chosen, threshold, method, window.n_cur)
    drifted = chosen.drifted(interval.low, limit)
    if drifted != chosen.drifted(interval.high, limit):
        return None, (
            f"binned {method} in [{interval.low:.4g}, {interval.high:.4g}] holds the"
            f" threshold {limit:.4g}"
        )
    return (
        ColumnDrift(
            name,
            "numeric",
            method,
            interval.score,
            limit,
            drifted,
            "binned",
            reference.n,
            window.n_cur,
            interval.bound,
        ),
        "",
    )


def _limit(chosen: Method, threshold: Threshold, method: str, n: int) -> float:
    if callable(threshold):
        threshold = threshold(method, n)
    return chosen.default_threshold if threshold is None else threshold
