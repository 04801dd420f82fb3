"""The reference profile: frozen bins, vocabularies and moments, and their serialization."""

from __future__ import annotations

import math
from collections import Counter
from typing import Any

import numpy as np
import orjson
import pytest

from monitor.drift.profile import (
    ColumnProfile,
    ReferenceProfile,
    category_text,
    fit_profile,
    profile_from_json,
)
from monitor.records import FeatureType

ROWS = 3000
SCHEMA = {
    "amount": FeatureType.NUMERIC,
    "age": FeatureType.NUMERIC,  # integers: many ties
    "country": FeatureType.CATEGORICAL,
    "is_new": FeatureType.BOOLEAN,
}


def reference(seed: int, rows: int = ROWS) -> dict[str, np.ndarray]:
    g = np.random.default_rng(seed)
    amount = g.lognormal(3.0, 1.0, rows)
    amount[g.random(rows) < 0.1] = np.nan
    age = g.integers(18, 90, rows).astype(np.float64)
    age[g.random(rows) < 0.02] = np.nan
    country = g.choice(
        np.array(["DE", "FR", "US", "JP"], dtype=object), rows, p=[0.4, 0.3, 0.2, 0.1]
    )
    country[g.random(rows) < 0.05] = None
    country[g.random(rows) < 0.03] = np.nan
    is_new = (g.random(rows) < 0.3).astype(object)
    is_new[g.random(rows) < 0.04] = None
    return {"amount": amount, "age": age, "country": country, "is_new": is_new}


def fields(column: ColumnProfile) -> dict[str, Any]:
    return dict(column.__dict__)


def assert_same_column(a: ColumnProfile, b: ColumnProfile) -> None:
    left, right = fields(a), fields(b)
    assert left.keys() == right.keys()
    for key, value in left.items():
        other = right[key]
        if isinstance(value, np.ndarray):
            assert other.dtype == value.dtype, key
            assert np.array_equal(other, value), key
        elif isinstance(value, float) and math.isnan(value):
            assert isinstance(other, float) and math.isnan(other), key
        else:
            assert type(other) is type(value), key
            assert other == value, key


@pytest.mark.parametrize("seed", range(3))
@pytest.mark.parametrize("bins", [10, 1000])
def test_numeric_columns(seed: int, bins: int) -> None:
    data = reference(seed)
    profile = fit_profile(data, SCHEMA, model_version="1", bins=bins)
    assert profile.rows == ROWS
    for name in ("amount", "age"):
        column = profile.columns[name]
        present = data[name][~np.isnan(data[name])]
        assert column.kind is FeatureType.NUMERIC and column.numeric
        assert column.n == present.size
        assert column.n + column.missing == ROWS
        assert column.counts.dtype == np.int64
        assert column.counts.sum() == column.n
        assert column.edges.size <= bins + 1
        assert np.all(np.diff(column.edges) > 0)
        assert column.edges[0] == present.min() == column.minimum
        assert column.edges[-1] == present.max() == column.maximum
        assert column.counts.size == column.edges.size + 1
        # nothing of the reference lies outside its own range; numpy's histogram has the
        # same convention (half-open bins, the last one closed)
        assert column.counts[0] == column.counts[-1] == 0
        assert np.array_equal(column.counts[1:-1], np.histogram(present, column.edges)[0])
        assert column.n_unique == np.unique(present).size
        assert column.mean == pytest.approx(float(np.mean(present)), rel=1e-12)
        assert column.std == pytest.approx(float(np.std(present)), rel=1e-12)
        assert np.array_equal(column.values, np.sort(present))


def test_quantile_edges_split_the_reference_evenly() -> None:
    values = np.random.default_rng(7).normal(0.0, 1.0, 10_000)
    profile = fit_profile({"x": values}, {"x": FeatureType.NUMERIC}, model_version="1", bins=20)
    assert profile.columns["x"].edges.size == 21
    assert profile.columns["x"].counts.tolist() == [0, *[500] * 20, 0]


def test_slot_of() -> None:
    values = np.random.default_rng(3).normal(10.0, 2.0, 1000)
    profile = fit_profile({"x": values}, {"x": FeatureType.NUMERIC}, model_version="1", bins=8)
    c = profile.columns["x"]
    last = c.edges.size
    assert c.slot_of(
        np.array([c.minimum - 1.0, -np.inf, np.nextafter(c.minimum, -np.inf)])
    ).tolist() == [0, 0, 0]
    assert (
        c.slot_of(np.array([c.maximum + 1.0, np.inf, np.nextafter(c.maximum, np.inf)])).tolist()
        == [last] * 3
    )
    assert c.slot_of(np.array([c.maximum])).tolist() == [last - 1]  # the last bin is closed
    assert c.slot_of(np.array([c.minimum])).tolist() == [1]
    inner = c.edges[:-1]  # each edge opens the bin it starts
    assert c.slot_of(inner).tolist() == list(range(1, last))
    below = np.nextafter(c.edges[1:], -np.inf)  # just below an edge: the bin it closes
    assert c.slot_of(below).tolist() == list(range(1, last))
    assert c.slot_of(np.empty(0)).tolist() == []


def test_constant_column_has_one_closed_bin() -> None:
    values = np.array([4.5] * 50 + [np.nan] * 5)
    profile = fit_profile({"x": values}, {"x": FeatureType.NUMERIC}, model_version="1")
    c = profile.columns["x"]
    assert (c.n, c.missing, c.n_unique) == (50, 5, 1)
    assert c.edges.tolist() == [4.5, 4.5]
    assert c.counts.tolist() == [0, 50, 0]
    assert (c.minimum, c.maximum, c.mean, c.std) == (4.5, 4.5, 4.5, 0.0)
    assert c.slot_of(np.array([4.0, 4.5, 5.0])).tolist() == [0, 1, 2]


def test_all_missing_column() -> None:
    schema = {"x": FeatureType.NUMERIC, "c": FeatureType.CATEGORICAL, "b": FeatureType.BOOLEAN}
    data = {
        "x": np.full(20, np.nan),
        "c": np.array([None, np.nan] * 10, dtype=object),
        "b": np.full(20, None, dtype=object),
    }
    profile = fit_profile(data, schema, model_version="1")
    for name in schema:
        c = profile.columns[name]
        assert (c.n, c.missing, c.n_unique) == (0, 20, 0), name
        assert c.edges.size == c.counts.size == c.values.size == 0
        assert c.categories == () and c.category_counts.size == 0
    x = profile.columns["x"]
    assert all(math.isnan(v) for v in (x.minimum, x.maximum, x.mean, x.std))


@pytest.mark.parametrize("seed", range(3))
def test_categorical_and_boolean_columns(seed: int) -> None:
    data = reference(seed)
    profile = fit_profile(data, SCHEMA, model_version="1")
    country = profile.columns["country"]
    present = [v for v in data["country"].tolist() if isinstance(v, str)]
    assert country.kind is FeatureType.CATEGORICAL and not country.numeric
    assert country.n == len(present)
    assert country.n + country.missing == ROWS
    assert country.categories == ("DE", "FR", "JP", "US")  # sorted
    expected = Counter(present)
    assert country.category_counts.tolist() == [expected[c] for c in country.categories]
    assert country.category_counts.dtype == np.int64
    assert country.n_unique == 4
    assert country.edges.size == 0 and math.isnan(country.mean)

    is_new = profile.columns["is_new"]
    flags = [v for v in data["is_new"].tolist() if v is not None]
    assert is_new.kind is FeatureType.BOOLEAN
    assert is_new.categories == ("false", "true")
    assert is_new.category_counts.tolist() == [flags.count(False), flags.count(True)]
    assert is_new.n + is_new.missing == ROWS


def test_boolean_from_a_numpy_bool_array() -> None:
    flags = np.array([True, False, True, True])
    profile = fit_profile({"b": flags}, {"b": FeatureType.BOOLEAN}, model_version="1")
    assert profile.columns["b"].categories == ("false", "true")
    assert profile.columns["b"].category_counts.tolist() == [1, 3]


def test_category_text() -> None:
    assert category_text(True) == "true"
    assert category_text(False) == "false"
    assert category_text(np.bool_(True)) == "true"
    assert category_text(np.bool_(False)) == "false"
    assert category_text(3.0) == "3"
    assert category_text(np.float64(3.0)) == "3"
    assert category_text(-2.0) == "-2"
    assert category_text(3.5) == "3.5"
    assert category_text(3) == "3"
    assert category_text("DE") == "DE"


def test_numeric_categories_are_keyed_by_their_text() -> None:
    values = np.array([1, 2.0, 2, "2", None, 3.5], dtype=object)
    profile = fit_profile({"c": values}, {"c": FeatureType.CATEGORICAL}, model_version="1")
    c = profile.columns["c"]
    assert c.categories == ("1", "2", "3.5")
    assert c.category_counts.tolist() == [1, 3, 1]
    assert (c.n, c.missing) == (5, 1)


def test_large_reference_keeps_a_seeded_uniform_sample_of_values() -> None:
    values = np.random.default_rng(11).normal(0.0, 1.0, 5000)
    schema = {"x": FeatureType.NUMERIC}
    a = fit_profile({"x": values}, schema, model_version="1", max_values=1000, seed=4)
    b = fit_profile({"x": values}, schema, model_version="1", max_values=1000, seed=4)
    c = fit_profile({"x": values}, schema, model_version="1", max_values=1000, seed=5)
    x = a.columns["x"]
    assert x.values.size == 1000
    assert np.all(np.diff(x.values) >= 0)
    assert np.isin(x.values, values).all() and np.unique(x.values).size == 1000
    assert np.array_equal(x.values, b.columns["x"].values)
    assert not np.array_equal(x.values, c.columns["x"].values)
    # everything else is fitted on all the values
    assert x.n == 5000 and x.counts.sum() == 5000
    assert x.minimum == values.min() and x.maximum == values.max()


@pytest.mark.parametrize("seed", range(3))
def test_round_trip_through_json_is_exact(seed: int) -> None:
    data = reference(seed)
    data["empty"] = np.full(ROWS, np.nan)
    schema = {**SCHEMA, "empty": FeatureType.NUMERIC}
    profile = fit_profile(data, schema, model_version="v7", bins=50, max_values=500, seed=seed)
    text = orjson.dumps(profile.to_dict())
    back = ReferenceProfile.from_dict(orjson.loads(text))
    assert back.model_version == "v7" and back.rows == ROWS
    assert list(back.columns) == list(schema)
    for name in schema:
        assert_same_column(back.columns[name], profile.columns[name])
    assert math.isnan(back.columns["empty"].mean)  # JSON null, read back as NaN
    assert orjson.dumps(back.to_dict()) == text
    # and without JSON in between
    again = ReferenceProfile.from_dict(profile.to_dict())
    for name in schema:
        assert_same_column(again.columns[name], profile.columns[name])
    # and as the statistics job reads a stored profile
    stored = orjson.dumps({**profile.to_dict(), "source": "ref.csv@1"})
    fast, source = profile_from_json(stored)
    assert source == "ref.csv@1" and fast.model_version == "v7" and fast.rows == ROWS
    assert list(fast.columns) == list(schema) and fast.calibrated
    for name in schema:
        assert_same_column(fast.columns[name], profile.columns[name])
    assert orjson.dumps(fast.to_dict()) == text


def test_bad_input_is_named() -> None:
    with pytest.raises(ValueError, match="differ in length"):
        fit_profile(
            {"a": np.zeros(3), "b": np.zeros(4)},
            {"a": FeatureType.NUMERIC, "b": FeatureType.NUMERIC},
            model_version="1",
        )
    with pytest.raises(ValueError, match="no column 'b'"):
        fit_profile(
            {"a": np.zeros(3)},
            {"a": FeatureType.NUMERIC, "b": FeatureType.NUMERIC},
            model_version="1",
        )


@pytest.mark.filterwarnings("ignore::RuntimeWarning")
def test_infinite_reference_values_do_not_break_the_bins() -> None:
    values = np.random.default_rng(1).normal(0.0, 1.0, 1000)
    values[:3] = [np.inf, -np.inf, np.nan]
    profile = fit_profile({"x": values}, {"x": FeatureType.NUMERIC}, model_version="1")
    c = profile.columns["x"]
    assert np.isfinite(c.edges).all() and np.all(np.diff(c.edges) > 0)
    assert math.isfinite(c.minimum) and math.isfinite(c.maximum) and math.isfinite(c.mean)
