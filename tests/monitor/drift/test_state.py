"""Window states: what ``partial`` counts, and that ``merge`` does not depend on the split.

States are compared as serialized bytes. :func:`canonical` sorts the keys of every
dictionary, so it compares every count, exact sum, range and sample byte; the raw
``orjson.dumps(state.to_dict())`` that the statistics job stores is compared as well.
"""

from __future__ import annotations

import math
import random
from collections import Counter
from collections.abc import Sequence
from typing import Any

import numpy as np
import orjson
import pytest

from monitor.drift.exact import exact_sum
from monitor.drift.profile import ReferenceProfile, fit_profile
from monitor.drift.state import (
    MAX_UNSEEN,
    WindowState,
    merge,
    partial,
    row_keys,
)
from monitor.records import FeatureType

SCHEMA = {
    "amount": FeatureType.NUMERIC,
    "age": FeatureType.NUMERIC,
    "country": FeatureType.CATEGORICAL,
    "is_new": FeatureType.BOOLEAN,
}
COUNTRIES = ["DE", "FR", "US", "JP"]


def make_profile(seed: int = 0, rows: int = 2000) -> ReferenceProfile:
    g = np.random.default_rng(seed)
    return fit_profile(
        {
            "amount": g.lognormal(3.0, 1.0, rows),
            "age": g.integers(18, 90, rows).astype(np.float64),
            "country": g.choice(np.array(COUNTRIES, dtype=object), rows),
            "is_new": (g.random(rows) < 0.3).astype(object),
        },
        SCHEMA,
        model_version="1",
        bins=50,
    )


PROFILE = make_profile()


def window(seed: int, rows: int) -> tuple[dict[str, list[Any]], list[str]]:
    """Python values as the statistics job passes them: None for missing, some values of
    the wrong type, values outside the reference range and categories never seen."""
    g = np.random.default_rng(seed)
    amount: list[Any] = g.lognormal(3.2, 1.2, rows).tolist()
    age: list[Any] = g.integers(10, 100, rows).astype(float).tolist()
    country: list[Any] = g.choice(COUNTRIES + ["BR", "IN", "CN"], rows).tolist()
    for i in np.flatnonzero(g.random(rows) < 0.05).tolist():
        country[i] = f"new-{int(g.integers(0, 30))}"
    is_new: list[Any] = (g.random(rows) < 0.4).tolist()
    for column in (amount, age, country, is_new):
        for i in np.flatnonzero(g.random(rows) < 0.08).tolist():
            column[i] = None
    for i in np.flatnonzero(g.random(rows) < 0.01).tolist():
        amount[i] = "n/a"
        country[i] = {"code": "DE"}
    ids = [f"{seed}-{i}" for i in range(rows)]
    return {"amount": amount, "age": age, "country": country, "is_new": is_new}, ids


def state_of(
    batch: dict[str, list[Any]], ids: Sequence[str], sample_size: int = 300
) -> WindowState:
    return partial(batch, row_keys(ids), PROFILE, sample_size=sample_size)


def rows_of(batch: dict[str, list[Any]], index: Sequence[int]) -> dict[str, list[Any]]:
    return {name: [values[i] for i in index] for name, values in batch.items()}


def canonical(state: WindowState) -> bytes:
    return orjson.dumps(state.to_dict(), option=orjson.OPT_SORT_KEYS)


def raw(state: WindowState) -> bytes:
    return orjson.dumps(state.to_dict())


def chunk_states(
    rnd: random.Random, batch: dict[str, list[Any]], ids: list[str], sample_size: int
) -> list[WindowState]:
    """The window's rows shuffled and cut into random chunks (some empty), one state each;
    some states go through JSON as the statistics job stores them."""
    order = list(range(len(ids)))
    rnd.shuffle(order)
    cuts = sorted(rnd.sample(range(len(ids) + 1), 9)) + [len(ids)]
    states = []
    start = 0
    for end in [0, *cuts]:
        part = order[start:end]
        state = state_of(rows_of(batch, part), [ids[i] for i in part], sample_size)
        if rnd.random() < 0.3:
            state = WindowState.from_dict(orjson.loads(raw(state)))
        states.append(state)
        start = end
    return states


def merge_tree(rnd: random.Random, states: list[WindowState]) -> WindowState:
    """Merge in a random tree shape, each merge with its arguments in a random order."""
    if len(states) == 1:
        return states[0]
    cut = rnd.randint(1, len(states) - 1)
    left, right = merge_tree(rnd, states[:cut]), merge_tree(rnd, states[cut:])
    return merge(left, right) if rnd.random() < 0.5 else merge(right, left)


def merge_fold(rnd: random.Random, states: list[WindowState]) -> WindowState:
    """Merge one by one in a shuffled order, as windows are folded batch after batch."""
    states = states[:]
    rnd.shuffle(states)
    out = states[0]
    for state in states[1:]:
        out = merge(out, state) if rnd.random() < 0.5 else merge(state, out)
    return out


def test_partial_counts_missing_values_and_type_errors() -> None:
    batch = {
        "amount": [1.0, None, math.nan, "oops", True, 3, 2.5, 10_000.0],
        "age": [None] * 8,
        "country": ["DE", None, math.nan, {"code": "DE"}, ["x"], "XX", 3.0, "DE"],
        "is_new": [True, False, None, True, "maybe", False, False, math.nan],
    }
    state = state_of(batch, [str(i) for i in range(8)])
    assert state.rows == 8
    amount = state.columns["amount"]
    assert (amount.n, amount.missing, amount.type_errors) == (4, 2, 2)  # str and bool
    assert (amount.minimum, amount.maximum) == (1.0, 10_000.0)
    assert amount.total == exact_sum(np.array([1.0, 3.0, 2.5, 10_000.0]))
    assert amount.slots[-1] == 1  # 10000 is above the reference maximum
    assert amount.slots.sum() == 4
    age = state.columns["age"]
    assert (age.n, age.missing, age.type_errors) == (0, 8, 0)
    assert age.minimum is None and age.maximum is None and age.total == 0
    assert age.slots.sum() == 0 and age.slots.size == PROFILE.columns["age"].edges.size + 1
    country = state.columns["country"]
    assert (country.n, country.missing, country.type_errors) == (4, 2, 2)  # dict and list
    assert dict(
        zip(PROFILE.columns["country"].categories, country.categories.tolist(), strict=True)
    ) == {
        "DE": 2,
        "FR": 0,
        "JP": 0,
        "US": 0,
    }
    assert country.unseen == {"XX": 1, "3": 1} and country.unseen_other == 0
    is_new = state.columns["is_new"]
    assert (is_new.n, is_new.missing, is_new.type_errors) == (6, 2, 0)
    assert is_new.categories.tolist() == [3, 2]  # false, true
    assert is_new.unseen == {"maybe": 1}


def test_a_column_absent_from_the_batch_is_missing() -> None:
    state = state_of({"amount": [1.0, 2.0]}, ["a", "b"])
    assert state.columns["country"].missing == 2 and state.columns["country"].n == 0
    assert state.columns["age"].missing == 2


def test_a_column_of_the_wrong_length_is_refused() -> None:
    with pytest.raises(ValueError, match="column 'amount' has 1 values for 2 rows"):
        state_of({"amount": [1.0]}, ["a", "b"])


@pytest.mark.parametrize("seed", range(3))
def test_partial_counts_on_the_frozen_bins_and_vocabulary(seed: int) -> None:
    batch, ids = window(seed, 4000)
    state = state_of(batch, ids)
    for name in ("amount", "age"):
        column, counted = PROFILE.columns[name], state.columns[name]
        values = batch[name]
        present = np.array([v for v in values if isinstance(v, float)])
        assert counted.n == present.size
        assert counted.missing == values.count(None)
        assert counted.type_errors == len(values) - present.size - values.count(None)
        inside = present[(present >= column.minimum) & (present <= column.maximum)]
        assert counted.slots[0] == np.count_nonzero(present < column.minimum)
        assert counted.slots[-1] == np.count_nonzero(present > column.maximum)
        assert np.array_equal(counted.slots[1:-1], np.histogram(inside, column.edges)[0])
        assert counted.total == exact_sum(present)
        assert counted.total_sq == exact_sum(present * present)
        assert (counted.minimum, counted.maximum) == (present.min(), present.max())
    country = state.columns["country"]
    texts = Counter(v for v in batch["country"] if isinstance(v, str))
    known = PROFILE.columns["country"].categories
    assert country.categories.tolist() == [texts[c] for c in known]
    assert country.unseen == {t: n for t, n in texts.items() if t not in known}
    assert country.n == sum(texts.values())
    assert country.type_errors == sum(isinstance(v, dict) for v in batch["country"])
    is_new = state.columns["is_new"]
    assert is_new.categories.tolist() == [batch["is_new"].count(False), batch["is_new"].count(True)]


def test_a_float_array_gives_the_same_state_as_a_list_with_none() -> None:
    g = np.random.default_rng(4)
    values = g.normal(20.0, 15.0, 500)
    values[g.random(500) < 0.1] = np.nan
    as_list = [None if math.isnan(v) else v for v in values.tolist()]
    ids = [str(i) for i in range(500)]
    from_array = state_of({"amount": values, "age": values}, ids)
    from_list = state_of({"amount": as_list, "age": as_list}, ids)
    assert raw(from_array) == raw(from_list)


def test_unseen_categories_are_capped() -> None:
    values = [f"new-{i:03d}" for i in range(150)] * 2 + ["DE"] * 10
    state = state_of({"country": values}, [str(i) for i in range(len(values))])
    country = state.columns["country"]
    assert MAX_UNSEEN == 100
    assert len(country.unseen) == MAX_UNSEEN
    assert all(n == 2 for n in country.unseen.values())  # the remembered ones count exactly
    assert country.unseen_other == 2 * 150 - 2 * MAX_UNSEEN
    assert country.unseen_total == 300
    assert country.n == 310 and country.categories.sum() == 10


@pytest.mark.parametrize("sample_size", [1, 100, 1000, 5000])
def test_the_sample_keeps_the_rows_with_the_smallest_keys(sample_size: int) -> None:
    batch, ids = window(7, 2000)
    keys = row_keys(ids)
    state = partial(batch, keys, PROFILE, sample_size=sample_size)
    kept = np.argsort(keys)[:sample_size]
    assert state.sample_size == sample_size
    assert np.array_equal(state.sample_keys, np.sort(keys)[:sample_size])
    assert state.sample_keys.dtype == np.uint64
    for name in ("amount", "age"):
        expected = np.array(
            [v if isinstance(v, float) else math.nan for v in batch[name]], dtype=np.float64
        )[kept]
        assert np.array_equal(state.sample[name], expected, equal_nan=True)
    expected_country = [v if isinstance(v, str) else None for v in batch["country"]]
    assert state.sample["country"].tolist() == [expected_country[i] for i in kept]
    flags = [None if v is None else ("true" if v else "false") for v in batch["is_new"]]
    assert state.sample["is_new"].tolist() == [flags[i] for i in kept]


def test_row_keys_are_stable_64_bit_hashes() -> None:
    keys = row_keys(["a", "row-1", "42", ""])
    assert keys.dtype == np.uint64
    assert keys.tolist() == [
        3405396810240292928,
        15844874809322270300,
        8820412187630416983,
        13020603013274838756,
    ]
    many = row_keys([str(i) for i in range(10_000)])
    assert np.unique(many).size == 10_000
    # uniform: each eighth of the 64-bit range gets its share
    assert np.all(
        np.abs(np.bincount((many >> np.uint64(61)).astype(np.int64), minlength=8) - 1250) < 150
    )


@pytest.mark.parametrize("seed", range(6))
def test_merge_is_associative_and_commutative(seed: int) -> None:
    rnd = random.Random(seed)
    batch, ids = window(seed, 3000)
    sample_size = [50, 300, 5000][seed % 3]
    whole = canonical(state_of(batch, ids, sample_size))
    for _ in range(3):
        states = chunk_states(rnd, batch, ids, sample_size)
        assert canonical(merge_tree(rnd, states)) == whole
        assert canonical(merge_fold(rnd, states)) == whole


@pytest.mark.parametrize("seed", range(3))
def test_merge_serializes_to_the_same_bytes_as_one_partial(seed: int) -> None:
    rnd = random.Random(seed)
    batch, ids = window(seed, 3000)
    whole = raw(state_of(batch, ids))
    states = chunk_states(rnd, batch, ids, 300)
    assert raw(merge_tree(rnd, states)) == whole


def test_merge_keeps_the_profile_column_order() -> None:
    names = [f"feature_{i:02d}" for i in range(20)]
    profile = fit_profile(
        {name: np.arange(10.0) for name in names},
        dict.fromkeys(names, FeatureType.NUMERIC),
        model_version="1",
    )
    a = partial({n: [1.0] for n in names}, row_keys(["a"]), profile)
    b = partial({n: [2.0] for n in names}, row_keys(["b"]), profile)
    assert list(a.columns) == names
    assert list(merge(a, b).columns) == names
    assert list(merge(a, b).sample) == names


def test_merge_keeps_unseen_values_in_one_order() -> None:
    values = ["zz", "yy", "xx"]
    whole = state_of({"country": values}, ["1", "2", "3"])
    a = state_of({"country": values[:1]}, ["1"])
    b = state_of({"country": values[1:]}, ["2", "3"])
    assert list(merge(a, b).columns["country"].unseen) == list(
        merge(b, a).columns["country"].unseen
    )
    assert raw(merge(a, b)) == raw(merge(b, a)) == raw(whole)


def test_merge_is_commutative_beyond_the_unseen_cap() -> None:
    first = [f"a{i:03d}" for i in range(MAX_UNSEEN)]
    a = state_of({"country": first}, first)
    b = state_of({"country": ["b000"]}, ["b000"])
    whole = state_of({"country": ["b000", *first]}, ["b000", *first])
    ab, ba = merge(a, b).columns["country"], merge(b, a).columns["country"]
    assert ab.unseen_total == ba.unseen_total == MAX_UNSEEN + 1  # the totals do agree
    assert canonical(merge(a, b)) == canonical(merge(b, a)) == canonical(whole)


def test_merging_an_empty_state_changes_nothing() -> None:
    batch, ids = window(2, 500)
    state = state_of(batch, ids)
    empty = state_of({}, [])
    assert empty.rows == 0 and empty.columns["country"].n == 0
    assert canonical(merge(state, empty)) == canonical(state)
    assert canonical(merge(empty, state)) == canonical(state)


def test_merging_states_of_different_sample_sizes_is_refused() -> None:
    batch, ids = window(3, 100)
    a = state_of(rows_of(batch, range(50)), ids[:50], sample_size=300)
    b = state_of(rows_of(batch, range(50, 100)), ids[50:], sample_size=301)
    with pytest.raises(ValueError, match="different sample sizes"):
        merge(a, b)


@pytest.mark.parametrize("seed", range(3))
def test_round_trip_through_json(seed: int) -> None:
    batch, ids = window(seed, 1500)
    state = state_of(batch, ids, sample_size=[10, 300, 5000][seed])
    text = raw(state)
    back = WindowState.from_dict(orjson.loads(text))
    assert raw(back) == text
    assert back.rows == state.rows and back.sample_size == state.sample_size
    for name, column in state.columns.items():
        other = back.columns[name]
        assert (other.total, other.total_sq) == (column.total, column.total_sq)  # big ints
        assert np.array_equal(other.slots, column.slots)
        assert other.slots.dtype == np.int64 and other.categories.dtype == np.int64
        assert other.unseen == column.unseen and other.unseen_other == column.unseen_other
    for name, values in state.sample.items():
        assert back.sample[name].dtype == values.dtype
        if values.dtype.kind == "f":
            assert np.array_equal(back.sample[name], values, equal_nan=True)
        else:
            assert back.sample[name].tolist() == values.tolist()
    # a state read back merges like the original
    other_batch, other_ids = window(seed + 10, 700)
    more = state_of(other_batch, other_ids, sample_size=state.sample_size)
    assert canonical(merge(back, more)) == canonical(merge(state, more))


@pytest.mark.parametrize("seed", range(3))
def test_a_full_samples_bound_leaves_the_merged_state_unchanged(seed: int) -> None:
    """The fold passes the largest key of the sample it has so far: rows with larger keys
    are not even considered for the next chunk's sample, and nothing changes."""
    first, first_ids = window(seed, 400)
    second, second_ids = window(seed + 10, 400)
    so_far = state_of(first, first_ids, sample_size=60)
    bound = int(so_far.sample_keys[-1])
    keys = row_keys(second_ids)
    plain = merge(so_far, partial(second, keys, PROFILE, sample_size=60))
    bounded = merge(so_far, partial(second, keys, PROFILE, sample_size=60, below=bound))
    assert raw(bounded) == raw(plain)
    assert int((keys < np.uint64(bound)).sum()) < 400  # some rows were left out
