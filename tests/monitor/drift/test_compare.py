"""Drift of a window: the streaming path (profile + state) equals the batch path on the same
values, and the dataset decision, methods and thresholds follow Evidently's rules."""

from __future__ import annotations

import math
import warnings
from types import SimpleNamespace
from typing import Any

import numpy as np
import pytest
import scipy.stats

from monitor.drift.compare import (
    ColumnDrift,
    DatasetDrift,
    compare,
    reference_column,
    window_drift,
)
from monitor.drift.profile import fit_profile, slot_counts
from monitor.drift.samples import ReferenceColumn
from monitor.drift.state import MAX_UNSEEN, WindowState, merge, partial, row_keys
from monitor.records import FeatureType

with warnings.catch_warnings():
    warnings.simplefilter("ignore")
    from evidently.legacy.calculations.data_drift import get_dataset_drift

SCHEMA = {
    "amount": FeatureType.NUMERIC,
    "country": FeatureType.CATEGORICAL,
    "is_new": FeatureType.BOOLEAN,
}
COUNTRIES = ["DE", "FR", "US", "JP"]
# Evidently's default choice: a reference of at most 1000 values gets ks / chisquare / z,
# a larger one wasserstein / jensenshannon
AUTO = {
    800: {"amount": "ks", "country": "chisquare", "is_new": "z"},
    4000: {"amount": "wasserstein", "country": "jensenshannon", "is_new": "jensenshannon"},
}


def reference_values(rows: int, seed: int = 0) -> dict[str, np.ndarray]:
    g = np.random.default_rng(seed)
    amount = g.lognormal(3.0, 1.0, rows)
    amount[g.random(rows) < 0.05] = np.nan
    country = g.choice(np.array(COUNTRIES, dtype=object), rows, p=[0.4, 0.3, 0.2, 0.1])
    country[g.random(rows) < 0.05] = None
    is_new = (g.random(rows) < 0.3).astype(object)
    is_new[g.random(rows) < 0.05] = None
    return {"amount": amount, "country": country, "is_new": is_new}


REFERENCES = {rows: reference_values(rows) for rows in AUTO}
PROFILES = {
    rows: fit_profile(values, SCHEMA, model_version="1") for rows, values in REFERENCES.items()
}


def current_values(
    seed: int, rows: int, shift: float, *, missing: bool = True, unseen: bool = True
) -> tuple[dict[str, list[Any]], list[str]]:
    """Python values (None for missing), drifted by ``shift``, with an unseen country
    (unless ``unseen`` is false: chi-square gives p = 0 on a category never seen)."""
    g = np.random.default_rng(seed)
    amount: list[Any] = g.lognormal(3.0 + shift, 1.0, rows).tolist()
    p = np.array([0.4 - shift / 2, 0.3, 0.2, 0.1 + shift / 2, 0.0])
    p[4] = shift / 4 if unseen else 0.0
    country: list[Any] = g.choice(COUNTRIES + ["BR"], rows, p=p / p.sum()).tolist()
    is_new: list[Any] = (g.random(rows) < 0.3 + shift).tolist()
    if missing:
        for column in (amount, country, is_new):
            for i in np.flatnonzero(g.random(rows) < 0.05).tolist():
                column[i] = None
    return {"amount": amount, "country": country, "is_new": is_new}, [
        f"{seed}-{i}" for i in range(rows)
    ]


def objects(values: list[Any]) -> np.ndarray:
    out = np.empty(len(values), dtype=object)
    out[:] = values
    return out


def as_arrays(batch: dict[str, list[Any]]) -> dict[str, np.ndarray]:
    return {name: objects(values) for name, values in batch.items()}


def by_column(drift: DatasetDrift) -> dict[str, ColumnDrift]:
    return {c.column: c for c in drift.columns}


def assert_same_drift(got: ColumnDrift, expected: ColumnDrift, basis: str = "exact") -> None:
    assert got.column == expected.column
    assert got.column_type == expected.column_type
    assert got.method == expected.method
    assert got.score == pytest.approx(expected.score, rel=1e-12, abs=1e-12, nan_ok=True)
    assert got.threshold == expected.threshold
    assert got.drifted == expected.drifted
    assert got.basis == basis
    assert (got.n_reference, got.n_current) == (expected.n_reference, expected.n_current)


@pytest.mark.parametrize("shift", [0.0, 0.1, 0.3])
@pytest.mark.parametrize("reference_rows", sorted(AUTO))
def test_window_drift_equals_compare_when_the_window_fits_its_sample(
    reference_rows: int, shift: float
) -> None:
    profile = PROFILES[reference_rows]
    batch, ids = current_values(int(shift * 10) + reference_rows, 600, shift)
    state = partial(batch, row_keys(ids), profile, sample_size=1000)
    streaming = window_drift(state, profile)
    batch_drift = compare(REFERENCES[reference_rows], as_arrays(batch), SCHEMA)
    assert [c.column for c in streaming.columns] == list(SCHEMA)
    expected = by_column(batch_drift)
    for name, drift in by_column(streaming).items():
        assert drift.method == AUTO[reference_rows][name]
        assert_same_drift(drift, expected[name])
    assert streaming.to_dict()["drifted"] == batch_drift.to_dict()["drifted"]
    assert streaming.share == batch_drift.share


def test_the_shift_is_detected() -> None:
    """A sanity anchor for the equality above: it compares real decisions, not NaNs."""
    profile = PROFILES[4000]
    for shift, drifted in ((0.0, 0), (0.3, 3)):
        batch, ids = current_values(1, 3000, shift)
        drift = window_drift(partial(batch, row_keys(ids), profile, sample_size=5000), profile)
        assert drift.drifted_columns == drifted
        assert all(math.isfinite(c.score) for c in drift.columns)


@pytest.mark.parametrize("seed", range(2))
def test_a_large_window_uses_its_sample_for_numeric_columns_only(seed: int) -> None:
    """When its binned score does not decide (here its interval holds the threshold), a
    large window's numeric column is tested on the row sample (see test_approximate)."""
    profile = PROFILES[4000]
    batch, ids = current_values(seed, 20_000, 0.1, missing=False)
    batch["country"][::50] = [None] * len(batch["country"][::50])
    keys = row_keys(ids)
    sample_size = 1000
    merged: WindowState | None = None
    for part in np.array_split(np.arange(len(ids)), 4):
        chunk = {name: [values[i] for i in part] for name, values in batch.items()}
        state = partial(chunk, keys[part], profile, sample_size=sample_size)
        merged = state if merged is None else merge(merged, state)
    assert merged is not None and merged.rows == 20_000
    got = by_column(window_drift(merged, profile))

    amount = got["amount"]
    assert amount.basis == "sample"
    assert "binned wasserstein in [" in amount.note and "holds the threshold 0.1" in amount.note
    assert amount.n_current == sample_size
    sampled = np.array(batch["amount"])[np.argsort(keys)[:sample_size]]  # smallest keys
    expected = by_column(
        compare(REFERENCES[4000], {"amount": sampled}, {"amount": FeatureType.NUMERIC})
    )
    assert_same_drift(amount, expected["amount"], basis="sample")

    # categorical and boolean counts are the whole window
    everything = by_column(compare(REFERENCES[4000], as_arrays(batch), SCHEMA))
    for name in ("country", "is_new"):
        assert got[name].n_current == sum(v is not None for v in batch[name]) > sample_size
        assert_same_drift(got[name], everything[name])


CASES = [
    (n, k, share)
    for n in (1, 2, 3, 4, 5, 7)
    for k in range(n + 1)
    for share in (0.0, 0.3, 1 / 3, 0.5, 2 / 3, 1.0)
]


@pytest.mark.parametrize(("n", "k", "share"), CASES)
def test_dataset_drift_follows_evidentlys_rule(n: int, k: int, share: float) -> None:
    columns = [
        ColumnDrift(f"c{i}", "numeric", "ks", 0.01, 0.05, i < k, "exact", 100, 100)
        for i in range(n)
    ]
    drift = DatasetDrift(columns, share)
    evidently = get_dataset_drift(
        {c.column: SimpleNamespace(drift_detected=c.drifted) for c in columns}, share
    )
    assert drift.drifted == evidently.dataset_drift == (k / n >= share)
    assert drift.drifted_columns == evidently.number_of_drifted_columns == k
    assert drift.share == evidently.dataset_drift_score
    out = drift.to_dict()
    assert (out["drifted"], out["drifted_columns"], out["columns_total"]) == (
        drift.drifted,
        k,
        n,
    )


def test_dataset_drift_of_no_columns_is_no_drift() -> None:
    assert not DatasetDrift([], 0.0).drifted
    assert DatasetDrift([], 0.5).share == 0.0


def test_drift_share_is_passed_through() -> None:
    profile = PROFILES[4000]
    batch, ids = current_values(5, 2000, 0.3)
    batch["amount"] = current_values(6, 2000, 0.0)[0]["amount"]  # only 2 of 3 columns drift
    state = partial(batch, row_keys(ids), profile)
    assert window_drift(state, profile).drifted_columns == 2
    assert window_drift(state, profile, drift_share=2 / 3).drifted
    assert not window_drift(state, profile, drift_share=0.7).drifted
    assert not compare(REFERENCES[4000], as_arrays(batch), SCHEMA, drift_share=0.7).drifted


def test_a_method_override_is_used_and_matches_scipy() -> None:
    profile = PROFILES[4000]
    batch, ids = current_values(8, 700, 0.05)
    state = partial(batch, row_keys(ids), profile)
    methods = {"amount": "ks", "country": "chisquare"}
    got = by_column(window_drift(state, profile, methods=methods))
    assert got["amount"].method == "ks" and got["amount"].threshold == 0.05
    assert got["country"].method == "chisquare"
    assert got["is_new"].method == "jensenshannon"  # not overridden
    ref = REFERENCES[4000]["amount"]
    cur = np.array([v for v in batch["amount"] if v is not None])
    pvalue = scipy.stats.ks_2samp(ref[~np.isnan(ref)], cur).pvalue
    assert got["amount"].score == pytest.approx(pvalue, rel=1e-9)
    assert got["amount"].drifted == (pvalue <= 0.05)
    expected = by_column(compare(REFERENCES[4000], as_arrays(batch), SCHEMA, methods=methods))
    for name in SCHEMA:
        assert_same_drift(got[name], expected[name])


def test_a_method_for_the_wrong_column_type_is_refused() -> None:
    profile = PROFILES[800]
    batch, ids = current_values(9, 100, 0.0)
    state = partial(batch, row_keys(ids), profile)
    with pytest.raises(ValueError, match="'ks' does not apply to categorical column 'country'"):
        window_drift(state, profile, methods={"country": "ks"})


@pytest.mark.parametrize("reference_rows", sorted(AUTO))
def test_a_numeric_threshold_is_honoured(reference_rows: int) -> None:
    profile = PROFILES[reference_rows]
    batch, ids = current_values(10, 500, 0.1, unseen=False)
    state = partial(batch, row_keys(ids), profile)
    default = by_column(window_drift(state, profile))
    for name, drift in default.items():
        p_value = drift.method in ("ks", "chisquare", "z")
        assert drift.threshold == (0.05 if p_value else 0.1)
        assert 0.0 < drift.score < 1.0
        for factor in (0.5, 2.0):
            limit = drift.score * factor
            got = by_column(window_drift(state, profile, thresholds={name: limit}))[name]
            assert got.threshold == limit and got.score == drift.score
            # a p-value drifts below its threshold, a distance above it
            assert got.drifted == (factor > 1.0 if p_value else factor < 1.0)
        batch_drift = compare(
            REFERENCES[reference_rows], as_arrays(batch), SCHEMA, thresholds={name: limit}
        )
        assert by_column(batch_drift)[name].drifted == got.drifted


def test_a_callable_threshold_gets_the_method_and_the_number_of_current_values() -> None:
    profile = PROFILES[800]
    batch, ids = current_values(11, 400, 0.0)
    state = partial(batch, row_keys(ids), profile)
    calls: list[tuple[str, str, int]] = []

    def threshold_of(name: str) -> Any:
        def threshold(method: str, n: int) -> float | None:
            calls.append((name, method, n))
            return None if name == "is_new" else 0.999

        return threshold

    got = by_column(window_drift(state, profile, thresholds={n: threshold_of(n) for n in SCHEMA}))
    present = {name: sum(v is not None for v in batch[name]) for name in SCHEMA}
    assert calls == [(name, AUTO[800][name], present[name]) for name in SCHEMA]
    assert got["amount"].threshold == got["country"].threshold == 0.999
    assert got["amount"].drifted and got["country"].drifted  # every p-value is below 0.999
    assert got["is_new"].threshold == 0.05  # None: the method's default


def test_a_window_without_values_has_no_score_and_no_drift() -> None:
    profile = PROFILES[4000]
    state = partial(
        {"amount": [None] * 30, "country": [None] * 30},
        row_keys(list("abcdefghijklmnopqrstuvwxyz0123")),
        profile,
    )
    got = by_column(window_drift(state, profile))
    for drift in got.values():
        assert math.isnan(drift.score) and not drift.drifted and drift.n_current == 0
        assert drift.to_dict()["score"] is None
    assert not window_drift(state, profile).drifted


def test_a_column_without_reference_values_is_left_out() -> None:
    values = reference_values(500)
    values["empty"] = np.full(500, np.nan)
    schema = {**SCHEMA, "empty": FeatureType.NUMERIC}
    profile = fit_profile(values, schema, model_version="1")
    batch, ids = current_values(12, 200, 0.0)
    batch["empty"] = [1.0] * 200
    drift = window_drift(partial(batch, row_keys(ids), profile), profile)
    assert [c.column for c in drift.columns] == list(SCHEMA)


def test_unseen_values_of_a_boolean_column_are_not_counted_as_false() -> None:
    profile = PROFILES[4000]
    flags: list[Any] = (np.random.default_rng(13).random(500) < 0.3).tolist()
    flags += ["maybe"] * 50
    state = partial({"is_new": flags}, row_keys([str(i) for i in range(550)]), profile)
    got = by_column(window_drift(state, profile))["is_new"]
    expected = by_column(
        compare(REFERENCES[4000], {"is_new": objects(flags)}, {"is_new": FeatureType.BOOLEAN})
    )["is_new"]
    assert_same_drift(got, expected)


def test_drift_beyond_the_unseen_cap_does_not_depend_on_the_merge_order() -> None:
    profile = PROFILES[4000]
    many = [f"new-{i:03d}" for i in range(MAX_UNSEEN)] + ["DE"] * 300
    few = ["zz"] * 40 + ["FR"] * 100
    a = partial({"country": many}, row_keys([f"a{i}" for i in range(len(many))]), profile)
    b = partial({"country": few}, row_keys([f"b{i}" for i in range(len(few))]), profile)
    ab = by_column(window_drift(merge(a, b), profile))["country"]
    ba = by_column(window_drift(merge(b, a), profile))["country"]
    assert (ab.n_current, ab.score) == (ba.n_current, ba.score)


def test_importance_weights_the_share_of_drifted_columns() -> None:
    from monitor.drift.compare import ColumnDrift, DatasetDrift

    def col(name: str, drifted: bool) -> ColumnDrift:
        return ColumnDrift(name, "numeric", "wasserstein", 0.0, 0.1, drifted, "exact", 1, 1)

    columns = [col("a", True), col("b", False), col("c", False), col("d", False)]
    plain = DatasetDrift(columns, 0.5)
    assert plain.share == 0.25 and not plain.drifted
    weighted = DatasetDrift(columns, 0.5, {"a": 3.0})  # b, c, d weigh 1
    assert weighted.share == 0.5 and weighted.drifted
    assert weighted.to_dict()["weighted"] is True


@pytest.mark.parametrize("max_values", [None, 500])
def test_a_profiled_reference_is_prepared_as_its_values_are(max_values: int | None) -> None:
    """The prepared reference of a profiled column (mean, std and distinct values taken
    from the profile when it holds every value) is what preparing its values gives; so
    are the profile's slot counts, which the binned estimate reads."""
    rng = np.random.default_rng(11)
    values = {
        "continuous": rng.normal(size=4000),
        "ties": np.round(rng.normal(size=4000), 1),
        "integers": rng.integers(0, 9, 4000).astype(float),
    }
    profile = fit_profile(
        values, dict.fromkeys(values, FeatureType.NUMERIC), model_version="1", max_values=max_values
    )
    for name, column in profile.columns.items():
        prepared = reference_column(column)
        expected = ReferenceColumn.from_values(column.values)
        assert (prepared.mean, prepared.std) == (expected.mean, expected.std)
        np.testing.assert_array_equal(prepared.values, expected.values)
        np.testing.assert_array_equal(prepared.unique, expected.unique)
        np.testing.assert_array_equal(prepared.counts, expected.counts)
        assert prepared.n == (4000 if max_values is None else 500), name
        if max_values is None:  # the binned estimate takes the profile's slot counts
            np.testing.assert_array_equal(column.counts, slot_counts(prepared.values, column.edges))
