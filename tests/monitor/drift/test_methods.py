"""Drift methods against Evidently 0.7's stattests (and scipy) on seeded data, to 1e-9."""

from __future__ import annotations

import math
import warnings
from collections.abc import Callable
from typing import Any

import numpy as np
import pandas as pd
import pytest
import scipy.stats

from monitor.drift.methods import METHODS, Method, auto_method, score
from monitor.drift.ranked import wasserstein_sorted
from monitor.drift.samples import ReferenceColumn

with warnings.catch_warnings():
    warnings.simplefilter("ignore")
    from evidently.legacy.calculations import stattests as ev
    from evidently.legacy.core import ColumnType

# scipy's Epps-Singleton warns on few-valued data, for Evidently and driftd alike
pytestmark = pytest.mark.filterwarnings("ignore:Estimated covariance matrix:UserWarning")

EVIDENTLY: dict[str, Any] = {
    "ks": ev.ks_stat_test,
    "wasserstein": ev.wasserstein_stat_test,
    "psi": ev.psi_stat_test,
    "jensenshannon": ev.jensenshannon_stat_test,
    "hellinger": ev.hellinger_stat_test,
    "kl_div": ev.kl_div_stat_test,
    "TVD": ev.tvd_test,
    "chisquare": ev.chi_stat_test,
    "z": ev.z_stat_test,
    "anderson": ev.anderson_darling_test,
    "cramer_von_mises": ev.cramer_von_mises,
    "mannw": ev.mann_whitney_u_stat_test,
    "ed": ev.energy_dist_test,
    "t_test": ev.t_test,
    "fisher_exact": ev.fisher_exact_test,
    "g_test": ev.g_test,
    "es": ev.epps_singleton_test,
}
NUMERIC_ONLY = ["ks", "wasserstein", "anderson", "cramer_von_mises", "mannw", "ed", "t_test", "es"]
BOTH = ["psi", "jensenshannon", "hellinger", "kl_div"]
COUNTS = ["chisquare", "z", "g_test", "fisher_exact"]


def _case(seed: int, make: Callable[[np.random.Generator], tuple[Any, Any]], kind: str) -> Any:
    ref, cur = make(np.random.default_rng(seed))
    return np.asarray(ref), np.asarray(cur), kind


CASES: dict[str, tuple[np.ndarray, np.ndarray, str]] = {
    # mild shifts keep p-values away from 0 and 1, where they say little
    "normal-small": _case(1, lambda g: (g.normal(0, 1, 600), g.normal(0.15, 1, 500)), "numeric"),
    "normal-large": _case(
        2, lambda g: (g.normal(0, 1, 20_000), g.normal(0.03, 1.01, 15_000)), "numeric"
    ),
    "normal-equal": _case(3, lambda g: (g.normal(0, 1, 5_000), g.normal(0, 1, 5_000)), "numeric"),
    "exp-gaps": _case(
        4,
        lambda g: (np.round(g.exponential(1, 3_000), 1), np.round(g.exponential(1.05, 2_000), 1)),
        "numeric",
    ),
    "few-small": _case(
        5, lambda g: (g.integers(0, 4, 800).astype(float), g.integers(0, 4, 700) + 0.0), "numeric"
    ),
    "few-large": _case(
        6,
        lambda g: (
            g.choice(4, 20_000, p=[0.4, 0.3, 0.2, 0.1]),
            g.choice(5, 20_000, p=[0.39, 0.3, 0.2, 0.1, 0.01]),
        ),
        "numeric",
    ),
    "int-binned": _case(
        7, lambda g: (g.integers(0, 22, 20_000), g.integers(0, 22, 20_000)), "numeric"
    ),
    "cat-small": _case(
        8,
        lambda g: (
            g.choice(["DE", "FR", "US", "GB"], 400, p=[0.4, 0.3, 0.2, 0.1]),
            g.choice(["DE", "FR", "US", "GB", "NL"], 300, p=[0.37, 0.3, 0.2, 0.1, 0.03]),
        ),
        "categorical",
    ),
    "cat-large": _case(
        9,
        lambda g: (
            g.choice(["web", "app", "pos", "phone"], 20_000, p=[0.5, 0.3, 0.15, 0.05]),
            g.choice(
                ["web", "app", "pos", "phone", "kiosk"], 20_000, p=[0.5, 0.3, 0.15, 0.049, 0.001]
            ),
        ),
        "categorical",
    ),
    "bool-small": _case(10, lambda g: (g.random(500) < 0.3, g.random(500) < 0.36), "boolean"),
    "bool-large": _case(11, lambda g: (g.random(20_000) < 0.3, g.random(20_000) < 0.31), "boolean"),
}
TVD_MAX_N = 600  # Evidently's TVD runs 1000 permutations through Python lists


def _applicable(name: str, kind: str, ref: np.ndarray, cur: np.ndarray) -> bool:
    if name in NUMERIC_ONLY:
        return kind == "numeric"
    if name == "TVD":
        return kind != "numeric" and len(ref) + len(cur) <= 2 * TVD_MAX_N
    if name in ("chisquare", "z"):
        return kind != "numeric" or len(np.unique(ref)) <= 20
    if name in ("g_test", "fisher_exact"):
        return kind != "numeric"
    return True


def _evidently(name: str, ref: Any, cur: Any, kind: str, threshold: float) -> tuple[float, bool]:
    """Evidently's stattest function on NaN-free Series, as its data-drift calculation calls it."""
    column_type = ColumnType.Numerical if kind == "numeric" else ColumnType.Categorical
    series = [pd.Series(x).replace([np.inf, -np.inf], np.nan).dropna() for x in (ref, cur)]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        value, drifted = EVIDENTLY[name].func(series[0], series[1], column_type, threshold)
    return float(value), bool(drifted)


def _close(ours: float, theirs: float) -> bool:
    if math.isnan(theirs):
        return math.isnan(ours)
    return abs(ours - theirs) <= 1e-9 * max(1.0, abs(theirs))


PAIRS = [
    pytest.param(case, name, id=f"{name}-{case}")
    for case, (ref, cur, kind) in CASES.items()
    for name in METHODS
    if _applicable(name, kind, ref, cur)
]


@pytest.mark.parametrize(("case", "name"), PAIRS)
def test_score_and_decision_match_evidently(case: str, name: str) -> None:
    ref, cur, kind = CASES[case]
    method = METHODS[name]
    try:
        theirs, theirs_drift = _evidently(name, ref, cur, kind, method.default_threshold)
    except ValueError:
        with pytest.raises(ValueError):
            method.fn(ref, cur, column_type=kind)
        return
    ours = method.fn(ref, cur, column_type=kind)
    assert _close(ours, theirs), (ours, theirs)
    assert method.drifted(ours) == theirs_drift
    # at a threshold equal to the score, Evidently's < vs <= choice shows
    assert method.drifted(theirs, theirs) == _evidently(name, ref, cur, kind, theirs)[1]
    if name != "TVD":  # TVD replays permutations of the rows in their original order
        prepared = method.fn(ReferenceColumn.from_values(ref), cur, column_type=kind)
        assert _close(prepared, theirs), (prepared, theirs)


@pytest.mark.parametrize("case", list(CASES))
def test_auto_method_matches_evidently(case: str) -> None:
    ref, cur, kind = CASES[case]
    column_type = ColumnType.Numerical if kind == "numeric" else ColumnType.Categorical
    expected = ev.get_stattest(pd.Series(ref), pd.Series(cur), column_type, None).name
    assert auto_method(ref, cur, kind) == expected
    assert auto_method(ReferenceColumn.from_values(ref), cur, kind) == expected


def test_auto_method_thresholds() -> None:
    few = np.array([0.0, 1.0, 2.0] * 10)
    assert auto_method(few, few, "numeric") == "chisquare"
    assert auto_method(few[few < 2], few[few < 2], "numeric") == "z"
    assert auto_method(np.arange(6.0), np.arange(6.0), "numeric") == "ks"
    assert auto_method(np.arange(1001.0) % 5, np.arange(10.0) % 5, "numeric") == "jensenshannon"
    assert auto_method(np.arange(1001.0) % 6, np.arange(10.0), "numeric") == "wasserstein"
    assert (
        auto_method(np.array([True, False] * 600), np.array([True]), "boolean") == "jensenshannon"
    )
    with pytest.raises(ValueError, match="column type"):
        auto_method(few, few, "text")


def test_missing_values_are_dropped_like_evidentlys_data_drift() -> None:
    g = np.random.default_rng(12)
    ref, cur = g.normal(0, 1, 3_000), g.normal(0.05, 1, 2_000)
    ref[::7], cur[::5], cur[1] = np.nan, np.nan, np.inf
    for name in NUMERIC_ONLY + BOTH:
        theirs = _evidently(name, ref, cur, "numeric", METHODS[name].default_threshold)[0]
        assert _close(METHODS[name].fn(ref, cur, column_type="numeric"), theirs), name
    labels = np.array(["a", "b", None, "c", float("nan")] * 200, dtype=object)
    shifted = np.array(["a", "a", None, "c", "d"] * 100, dtype=object)
    for name in ["chisquare", "z", "TVD"] + BOTH:
        theirs = _evidently(name, labels, shifted, "categorical", 0.05)[0]
        assert _close(METHODS[name].fn(labels, shifted, column_type="categorical"), theirs), name


@pytest.mark.parametrize("name", list(METHODS))
@pytest.mark.parametrize("current", [np.array([np.nan, np.inf, np.nan]), np.array([])])
def test_no_current_values_score_nan_and_no_drift(name: str, current: np.ndarray) -> None:
    # Evidently raises "An empty column ... in the current dataset"; a window without values
    # is a data-quality finding here, not an error
    ref = np.arange(30.0) % 7 if name not in ("fisher_exact",) else np.zeros(3)
    kind = "numeric" if METHODS[name].accepts("numeric") else "categorical"
    value, drifted = score(name, ref, current, kind)
    assert math.isnan(value) and not drifted


@pytest.mark.parametrize("name", list(METHODS))
def test_empty_reference_is_an_error(name: str) -> None:
    kind = "numeric" if METHODS[name].accepts("numeric") else "categorical"
    with pytest.raises(ValueError, match="reference"):
        METHODS[name].fn(np.array([np.nan]), np.arange(10.0), column_type=kind)


@pytest.mark.parametrize(
    "name",
    [
        "ks",
        "wasserstein",
        "psi",
        "jensenshannon",
        "hellinger",
        "kl_div",
        "cramer_von_mises",
        "mannw",
        "ed",
        "t_test",
        "anderson",
        "es",
        "chisquare",
        "z",
    ],
)
@pytest.mark.parametrize("shift", [0.0, 1.0])
def test_constant_columns_match_evidently(name: str, shift: float) -> None:
    ref, cur = np.full(50, 3.0), np.full(40, 3.0 + shift)
    try:
        theirs = _evidently(name, ref, cur, "numeric", METHODS[name].default_threshold)[0]
    except ValueError:  # anderson: one distinct value; es: zero IQR
        with pytest.raises(ValueError):
            METHODS[name].fn(ref, cur, column_type="numeric")
        return
    assert _close(METHODS[name].fn(ref, cur, column_type="numeric"), theirs)


def test_g_test_and_fisher_need_equal_sizes_like_evidently() -> None:
    ref, cur = np.array(["a", "b"] * 50), np.array(["a", "b", "b"] * 20)
    for name in ("g_test", "fisher_exact"):
        with pytest.raises(ValueError):
            _evidently(name, ref, cur, "categorical", 0.1)
        with pytest.raises(ValueError, match="equal"):
            METHODS[name].fn(ref, cur, column_type="categorical")


def test_fisher_exact_on_a_single_value_uses_evidentlys_placeholder() -> None:
    ref, cur = np.array([True] * 30), np.array([True] * 30)
    assert METHODS["fisher_exact"].fn(ref, cur, column_type="boolean") == 1.0
    assert _evidently("fisher_exact", ref, cur, "boolean", 0.1)[0] == 1.0


@pytest.mark.parametrize("seed", range(8))
def test_wasserstein_sorted_equals_scipy(seed: int) -> None:
    g = np.random.default_rng(seed)
    n1, n2 = (int(n) for n in g.integers(1, 3_000, 2))
    if seed == 0:
        n2 = n1
    ref = g.normal(0, 1, n1) if seed % 2 else np.round(g.normal(0, 3, n1))  # odd: ties
    cur = g.normal(0.3, 1.2, n2) if seed % 2 else np.round(g.normal(0.5, 3, n2))
    expected = scipy.stats.wasserstein_distance(ref, cur)
    assert wasserstein_sorted(np.sort(ref), cur) == pytest.approx(expected, rel=1e-9, abs=1e-15)


def test_golden_values() -> None:
    assert wasserstein_sorted(np.array([0.0, 1.0, 3.0]), np.array([5.0, 6.0, 8.0])) == 5.0
    # PSI on two categories: (0.5 - 0.25) ln 2 + (0.5 - 0.75) ln(2/3)
    ref, cur = np.array(["a", "b"] * 4), np.array(["a", "b", "b", "b"] * 2)
    expected = 0.25 * math.log(2) - 0.25 * math.log(2 / 3)
    assert METHODS["psi"].fn(ref, cur, column_type="categorical") == pytest.approx(
        expected, rel=1e-15
    )


def test_reference_column_drops_missing_and_counts() -> None:
    col = ReferenceColumn.from_values(np.array([3.0, np.nan, 1.0, 3.0, -np.inf]))
    assert col.values.tolist() == [1.0, 3.0, 3.0]
    assert col.unique.tolist() == [1.0, 3.0] and col.counts.tolist() == [1, 2]
    assert col.n == 3 and col.std == pytest.approx(np.std([1.0, 3.0, 3.0]))
    labels = ReferenceColumn.from_values(np.array(["b", None, "a", "b"], dtype=object))
    assert labels.unique.tolist() == ["a", "b"] and labels.counts.tolist() == [1, 2]
    assert not labels.numeric and math.isnan(labels.std)
    assert ReferenceColumn.from_values(np.array([1, 2, 2])).integer


def test_methods_registry_mirrors_evidently() -> None:
    for name, method in METHODS.items():
        theirs = EVIDENTLY[name]
        assert isinstance(method, Method) and method.name == theirs.name == name
        assert method.display_name == theirs.display_name
        assert method.default_threshold == theirs.default_threshold
        kinds = {
            "numeric" if t == ColumnType.Numerical else "categorical"
            for t in theirs.allowed_feature_types
        }
        assert {t for t in method.column_types if t != "boolean"} == kinds
        assert ("boolean" in method.column_types) == ("categorical" in method.column_types)


def test_methods_module_imports_no_pandas() -> None:
    import subprocess
    import sys

    code = "import sys, monitor.drift.methods; print('pandas' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"
