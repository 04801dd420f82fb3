"""Drift of a window against the reference: per column, then for the dataset (pure).

:func:`compare` is the batch path: reference and current columns in memory, every method
run on all the values (the scores equal Evidently's to 1e-9). :func:`window_drift` is the
streaming path: it finalizes a :class:`~monitor.drift.state.WindowState` against the
reference profile. Categorical and boolean columns are exact there too (their counts are
the whole multiset of values); numeric columns are exact while the window fits in its row
sample. Beyond that, a method with a binned form (:mod:`monitor.drift.approximate`) is
computed from the histogram of *all* the window's values on the profile's bins, which
gives an interval certain to hold the exact score. The binned score is used only when the
whole interval falls on one side of the threshold *and* its half-width is at most
:data:`BOUND_SHARE` (1%) of the threshold (``basis: "binned"``, ``error_bound`` shown).
Otherwise the column is scored exactly on the window's every value (``exact_values``: the
values the statistics job folded in this process, or the window's stored rows re-read;
``basis: "exact"``). Only without ``exact_values`` (a caller with no store) does the
method fall back to the window's row sample (``basis: "sample"``, ``note`` says why).

Thresholds (:mod:`monitor.drift.thresholds`): fixed (Evidently's or a number) or
:class:`~monitor.drift.thresholds.Calibrated`; windows and columns with too few values are
``insufficient`` (shown, never drifted).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Collection, Mapping
from dataclasses import dataclass, field, fields, replace
from typing import Any

import numpy as np

from monitor.drift.approximate import Histograms, binned_interval
from monitor.drift.methods import METHODS, Method, auto_method
from monitor.drift.profile import ColumnProfile, ReferenceProfile
from monitor.drift.samples import ReferenceColumn
from monitor.drift.state import ColumnState, WindowState
from monitor.drift.thresholds import Calibrated, benjamini_hochberg, min_rows


def finite_dict(result: Any) -> dict[str, Any]:
    """A result dataclass as a dict for JSON, NaN and infinities as None."""
    # a shallow copy: the result dataclasses hold scalars only (asdict's deep copy cost
    # more than the statistics of a small window)
    return {
        f.name: None if isinstance(v, float) and not math.isfinite(v) else v
        for f in fields(result)
        for v in (getattr(result, f.name),)
    }


OTHER_UNSEEN = "(other unseen values)"
Threshold = float | None | Callable[[str, int], float | None] | Calibrated
# a column's every value in the window (or them prepared: sorted and counted)
ExactValues = Callable[[str], np.ndarray | ReferenceColumn | None]
BOUND_SHARE = 0.01  # an estimate is reported only within 1% of the threshold


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
    # too few values to judge (see monitor.drift.nulls.MIN_ROWS): shown, never drifted
    insufficient: bool = False
    # calibrated mode: P(a stationary window scores at least this), the minimum effect
    # and, for a p-value test, its effect (the companion distance)
    null_p: float | None = None
    floor: float | None = None
    effect: float | None = None
    discovered: bool = False  # kept by the dataset's false-discovery control

    def to_dict(self) -> dict[str, Any]:
        return finite_dict(self)


@dataclass(frozen=True)
class DatasetDrift:
    columns: list[ColumnDrift] = field(default_factory=list)
    drift_share: float = 0.5
    # importance per column (e.g. the model's feature importances); columns not named
    # weigh 1. Without weights the share is Evidently's plain share of columns.
    weights: Mapping[str, float] = field(default_factory=dict)
    # "share": Evidently's rule on the columns' own decisions; "fdr": only the columns
    # Benjamini-Hochberg keeps at `rate` count (calibrated mode)
    control: str = "share"
    rate: float | None = None
    insufficient: bool = False  # the window has too few rows to be judged yet
    min_rows: int = 0

    @property
    def drifted_columns(self) -> int:
        return sum(c.drifted for c in self.columns)

    def _counts(self, c: ColumnDrift) -> bool:
        return c.discovered if self.control == "fdr" else c.drifted

    @property
    def share(self) -> float:
        """The (importance-weighted) share of drifted columns (discoveries, under "fdr")."""
        total = sum(self.weights.get(c.column, 1.0) for c in self.columns)
        drifted = sum(self.weights.get(c.column, 1.0) for c in self.columns if self._counts(c))
        return drifted / total if total > 0 else 0.0

    @property
    def drifted(self) -> bool:
        """Evidently's rule: the share of drifted columns reaches ``drift_share``."""
        return not self.insufficient and bool(self.columns) and self.share >= self.drift_share

    def to_dict(self) -> dict[str, Any]:
        return {
            "drifted": self.drifted,
            "drifted_columns": self.drifted_columns,
            "columns_total": len(self.columns),
            "share": self.share,
            "drift_share": self.drift_share,
            "weighted": bool(self.weights),
            "control": self.control,
            "rate": self.rate,
            "insufficient": self.insufficient,
            "min_rows": self.min_rows,
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
    least: int | None = 0,
    insufficient: bool = False,
) -> ColumnDrift:
    """One column's drift. ``reference`` and ``current`` are arrays or prepared columns.

    ``threshold`` is a number, None for the method's default, a function of the chosen
    method and the number of current values, or a :class:`Calibrated` threshold. A column
    with fewer than ``least`` values (None: the method's minimum) is insufficient, as is
    every column when ``insufficient``: its score is shown, never flagged.
    """
    ref = ReferenceColumn.from_values(reference)
    cur = ReferenceColumn.from_values(current)
    if method == "auto":
        method = auto_method(ref, cur, column_type) if cur.n else _empty_choice(column_type)
    chosen = METHODS[method]
    if not chosen.accepts(column_type) and method not in ("chisquare", "z"):
        raise ValueError(f"method {method!r} does not apply to {column_type} column {name!r}")
    limit = _limit(chosen, threshold, method, cur.n, str(column_type))
    score = chosen.fn(ref, cur, column_type=str(column_type)) if cur.n else float("nan")
    drift = ColumnDrift(
        name,
        str(column_type),
        method,
        float(score),
        limit,
        chosen.drifted(score, limit),
        basis,
        ref.n,
        cur.n,
        insufficient=insufficient or cur.n < min_rows(method, least),
    )
    if isinstance(threshold, Calibrated):
        drift = _with_floor(drift, threshold, ref, cur)
    return replace(drift, drifted=False) if drift.insufficient else drift


def _with_floor(
    drift: ColumnDrift, calibrated: Calibrated, ref: ReferenceColumn, cur: ReferenceColumn
) -> ColumnDrift:
    """A calibrated decision: the null tail probability, and the minimum effect."""
    kind = drift.column_type
    tail = calibrated.tail(drift.method, drift.score, drift.n_current, kind)
    floor = calibrated.floor(drift.method, kind)
    if floor is None:
        return replace(drift, null_p=tail, floor=_distance_floor(drift.method))
    companion, least = floor
    effect = float(METHODS[companion].fn(ref, cur, column_type=kind)) if cur.n else math.nan
    return replace(
        drift,
        null_p=tail,
        floor=least,
        effect=effect,
        drifted=drift.drifted and effect >= least,
    )


def _distance_floor(method: str) -> float | None:
    from monitor.drift.nulls import FLOORS

    return FLOORS.get(method)


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
    if profile.numeric:  # the profile keeps its present values sorted
        known = math.isfinite(profile.mean) and math.isfinite(profile.std)
        if profile.values.size != profile.n or not known:  # a sample (``max_values``)
            return ReferenceColumn.from_sorted(profile.values)
        # every present value: the profile's mean, std and distinct count are theirs
        return ReferenceColumn.from_sorted(
            profile.values,
            moments=(profile.mean, profile.std),
            distinct=profile.n_unique == profile.n,
        )
    labels: list[Any] = list(profile.categories)
    if profile.kind == "boolean":
        labels = [c == "true" for c in profile.categories]
    return ReferenceColumn.from_counts(labels, profile.category_counts.tolist())


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
        values = ReferenceColumn.from_counts(labels, counts)
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
    exact_values: ExactValues | None = None,
    least: int | None = None,
    rate: float | None = None,
) -> DatasetDrift:
    """Finalize a window's state: the drift of every profiled column (or of ``only``).

    A numeric column of a window larger than its row sample is scored from its histogram
    when that decides within :data:`BOUND_SHARE` of the threshold, else exactly from
    ``exact_values`` (its every value, re-read), else from the row sample (with a note).
    A window with fewer than ``least`` rows (None: the largest minimum of its columns'
    methods) is insufficient: shown, never drifted. ``rate`` (calibrated mode) switches
    the dataset rule to Benjamini-Hochberg discoveries at that false-discovery rate.
    """
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
            every = exact_values(name) if exact_values is not None else None
            if every is not None:
                values, basis, note = every, "exact", ""
        drift = column_drift(
            name,
            ref,
            values,
            str(column.kind),
            method=method,
            threshold=threshold,
            basis=basis,
            least=least,
        )
        columns.append(replace(drift, note=note) if note else drift)
    needed = least if least is not None else max((min_rows(c.method) for c in columns), default=0)
    insufficient = state.rows < needed
    if insufficient:
        columns = [replace(c, drifted=False, insufficient=True) for c in columns]
    if rate is not None:
        kept = benjamini_hochberg([_tail(c) for c in columns], rate)
        columns = [
            replace(c, discovered=k and c.drifted) for c, k in zip(columns, kept, strict=True)
        ]
    return DatasetDrift(
        columns,
        drift_share,
        weights or {},
        control="fdr" if rate is not None else "share",
        rate=rate,
        insufficient=insufficient,
        min_rows=needed,
    )


def _tail(c: ColumnDrift) -> float:
    """The null tail probability BH ranks: a column without a known null counts as
    certain when it is flagged, and never otherwise."""
    if c.null_p is not None and not math.isnan(c.null_p):
        return c.null_p
    return 0.0 if c.drifted else math.nan


def binned_drift(
    name: str,
    reference: ReferenceColumn,
    column: ColumnProfile,
    state: ColumnState,
    method: str,
    threshold: Threshold,
) -> tuple[ColumnDrift | None, str]:
    """A numeric column's drift from the histogram of all the window's values, when its
    interval decides and is within :data:`BOUND_SHARE` of the threshold; otherwise None
    and why not."""
    chosen = METHODS[method]
    if isinstance(threshold, Calibrated) and chosen.kind == "p_value":
        return None, f"calibrated {method} needs its effect on the exact values"
    window = Histograms.of(reference, column, state)
    if window is None:
        return None, "no histogram of the window's values" if state.n else ""
    interval, why = binned_interval(method, window)
    if interval is None:
        return None, why
    limit = _limit(chosen, threshold, method, window.n_cur, "numeric")
    drifted = chosen.drifted(interval.low, limit)
    if drifted != chosen.drifted(interval.high, limit):
        return None, (
            f"binned {method} in [{interval.low:.4g}, {interval.high:.4g}] holds the"
            f" threshold {limit:.4g}"
        )
    if interval.bound > BOUND_SHARE * limit:
        return None, (
            f"binned {method} within {interval.bound:.2g}, more than {BOUND_SHARE:.0%} of"
            f" the threshold {limit:.4g}"
        )
    drift = ColumnDrift(
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
    )
    if isinstance(threshold, Calibrated):
        tail = threshold.tail(method, interval.score, window.n_cur, "numeric")
        drift = replace(drift, null_p=tail, floor=_distance_floor(method))
    return drift, ""


def _limit(chosen: Method, threshold: Threshold, method: str, n: int, column_type: str) -> float:
    if isinstance(threshold, Calibrated):
        return threshold.threshold(method, n, column_type)
    if callable(threshold):
        threshold = threshold(method, n)
    return chosen.default_threshold if threshold is None else threshold
