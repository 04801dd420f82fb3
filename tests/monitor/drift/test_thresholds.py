"""drift.thresholds: calibrated thresholds see moderate shifts that fixed ones miss, keep
stationary windows quiet, and evidently mode decides as Evidently does.

Seeded data made here: a reference of 50,000 rows and windows of 2,000 rows over 11
columns (6 numeric of different shapes, 4 categorical, 1 boolean). A shifted window moves
5 points of share from one category of ``c_four`` to another and shifts ``n_normal`` by
0.15 standard deviations; everything else stays stationary.
"""

from __future__ import annotations

import warnings
from datetime import UTC, datetime

import numpy as np
import pandas as pd
import pytest

from monitor.drift.compare import column_drift, reference_column
from monitor.drift.nulls import FLOORS
from monitor.drift.profile import ReferenceProfile, fit_profile
from monitor.drift.state import partial, row_keys
from monitor.drift.thresholds import benjamini_hochberg
from monitor.records import FeatureType
from monitor.results import WindowResults
from monitor.statistics import DriftSettings, StatisticsEngine

N = FeatureType.NUMERIC
SCHEMA = {
    "n_normal": N,
    "n_lognormal": N,
    "n_poisson": N,
    "n_uniform": N,
    "n_t": N,
    "n_zero": N,
    "c_four": FeatureType.CATEGORICAL,
    "c_two": FeatureType.CATEGORICAL,
    "c_many": FeatureType.CATEGORICAL,
    "c_rare": FeatureType.CATEGORICAL,
    "b_flag": FeatureType.BOOLEAN,
}
FOUR = np.array([0.35, 0.30, 0.20, 0.15])
MOVED = np.array([0.30, 0.35, 0.20, 0.15])  # 5 points from "a" to "b"
MANY = np.arange(1, 11) ** -1.0 / np.sum(np.arange(1, 11) ** -1.0)
START = datetime(2026, 1, 1, tzinfo=UTC)


def draw(g: np.random.Generator, n: int, *, shifted: bool = False) -> pd.DataFrame:
    return pd.DataFrame(
        {
            "n_normal": g.normal(0.15 if shifted else 0.0, 1.0, n),
            "n_lognormal": g.lognormal(2.0, 0.7, n),
            "n_poisson": g.poisson(4, n).astype(float),
            "n_uniform": g.uniform(-1, 3, n),
            "n_t": g.standard_t(5, n),
            "n_zero": np.where(g.random(n) < 0.3, 0.0, g.exponential(2.0, n)),
            "c_four": g.choice(list("abcd"), n, p=MOVED if shifted else FOUR),
            "c_two": g.choice(["x", "y"], n),
            "c_many": g.choice([f"k{i}" for i in range(10)], n, p=MANY),
            "c_rare": g.choice(["common", "other", "rare"], n, p=[0.8, 0.17, 0.03]),
            "b_flag": g.random(n) < 0.3,
        }
    )


def columns(frame: pd.DataFrame) -> dict[str, np.ndarray]:
    return {c: frame[c].to_numpy(dtype=float if SCHEMA[c] is N else object) for c in SCHEMA}


@pytest.fixture(scope="module")
def setup() -> tuple[pd.DataFrame, ReferenceProfile]:
    reference = draw(np.random.default_rng(2026), 50_000)
    return reference, fit_profile(columns(reference), SCHEMA, model_version="1")


def results(engine: StatisticsEngine, frame: pd.DataFrame, key: str) -> WindowResults:
    state = partial(
        {c: frame[c].tolist() for c in SCHEMA},
        row_keys([f"{key}-{i}" for i in range(len(frame))]),
        engine.profile,
    )
    numeric = {c: frame[c].to_numpy(dtype=float) for c in SCHEMA if SCHEMA[c] is N}
    # the window's every value, as finalize re-reads them from the stored rows
    return engine.window_results(state, START, START, len(frame), exact_values=numeric.get)


def engine(profile: ReferenceProfile, mode: str) -> StatisticsEngine:
    settings = DriftSettings(mode=mode, multivariate=False)
    return StatisticsEngine(repository=None, model="m", profile=profile, settings=settings)  # type: ignore[arg-type]


def flagged(result: WindowResults) -> set[str]:
    return {c.column for c in result.drift.columns if c.drifted}


@pytest.mark.slow
def test_calibrated_mode_sees_moderate_shifts_and_keeps_stationary_windows_quiet(
    setup: tuple[pd.DataFrame, ReferenceProfile],
) -> None:
    _, profile = setup
    calibrated, evidently = engine(profile, "calibrated"), engine(profile, "evidently")
    g = np.random.default_rng(7)
    stationary = [draw(g, 2000) for _ in range(100)]
    shifted = [draw(g, 2000, shifted=True) for _ in range(50)]
    false_flags, dataset_alarms = 0, 0
    for i, frame in enumerate(stationary):
        result = results(calibrated, frame, f"s{i}")
        false_flags += len(flagged(result))
        dataset_alarms += result.drift.drifted
    hits = {"calibrated": {"c_four": 0, "n_normal": 0}, "evidently": {"c_four": 0, "n_normal": 0}}
    for i, frame in enumerate(shifted):
        for name, chosen in (("calibrated", calibrated), ("evidently", evidently)):
            result = results(chosen, frame, f"d{i}")
            for column in hits[name]:
                hits[name][column] += column in flagged(result)
            assert flagged(result) <= {"c_four", "n_normal"} or name == "calibrated"
    rate = false_flags / (len(stationary) * len(SCHEMA))
    assert rate <= 0.01, (false_flags, rate)
    assert dataset_alarms <= 1
    assert hits["calibrated"]["c_four"] >= 0.90 * len(shifted), hits
    assert hits["calibrated"]["n_normal"] >= 0.95 * len(shifted), hits
    # the fixed Jensen-Shannon threshold (0.1) is blind to the 5-point move
    assert hits["evidently"]["c_four"] <= 0.1 * len(shifted), hits


def test_a_calibrated_threshold_is_lower_in_large_windows_and_higher_in_small_ones(
    setup: tuple[pd.DataFrame, ReferenceProfile],
) -> None:
    _, profile = setup
    g = np.random.default_rng(3)
    thresholds = {}
    for n in (60, 2000, 20_000):
        frame = draw(g, n)
        result = results(engine(profile, "calibrated"), frame, f"n{n}")
        thresholds[n] = {c.column: c.threshold for c in result.drift.columns}
    assert thresholds[60]["c_four"] > 0.1 > thresholds[2000]["c_four"]  # both ways
    assert thresholds[60]["n_normal"] > 0.1 > thresholds[2000]["n_normal"]
    # in a huge window the minimum effect decides, not the (tiny) null quantile
    assert thresholds[20_000]["c_four"] == FLOORS["jensenshannon"]
    assert thresholds[20_000]["n_normal"] == FLOORS["wasserstein"]


def test_a_negligible_shift_in_a_huge_window_is_not_flagged(
    setup: tuple[pd.DataFrame, ReferenceProfile],
) -> None:
    reference, profile = setup
    g = np.random.default_rng(4)
    frame = draw(g, 200_000)
    frame["n_normal"] += 0.02  # 0.02 sd: real, detectable at this size, negligible
    ref = reference_column(profile.columns["n_normal"])
    exact = column_drift("n_normal", ref, frame["n_normal"].to_numpy(), "numeric")
    null = profile.nulls["n_normal"]
    assert null.tail("wasserstein", exact.score, 200_000, "numeric") < 0.01  # significant
    result = results(engine(profile, "calibrated"), frame, "huge")
    [column] = [c for c in result.drift.columns if c.column == "n_normal"]
    assert column.basis == "exact" and column.score == exact.score
    assert not column.drifted and column.null_p is not None and column.null_p < 0.01


def test_benjamini_hochberg_equals_the_textbook_procedure() -> None:
    p = [0.001, 0.008, 0.039, 0.041, 0.042, 0.06, 0.074, 0.205, float("nan")]
    # m = 8 (NaN does not count); k = largest i with p_(i) <= 0.05 i / 8: i = 2
    assert benjamini_hochberg(p, 0.05) == [True, True] + [False] * 7
    assert benjamini_hochberg([float("nan")], 0.05) == [False]


@pytest.mark.slow
def test_evidently_mode_decides_as_evidently(
    setup: tuple[pd.DataFrame, ReferenceProfile],
) -> None:
    warnings.simplefilter("ignore")
    from evidently import DataDefinition, Dataset, Report
    from evidently.presets import DataDriftPreset

    reference, profile = setup
    ours = engine(profile, "evidently")
    g = np.random.default_rng(11)
    numeric = [c for c, k in SCHEMA.items() if k is N]
    definition = DataDefinition(
        numerical_columns=numeric, categorical_columns=[c for c in SCHEMA if c not in numeric]
    )

    def as_frame(frame: pd.DataFrame) -> pd.DataFrame:
        out = frame.copy()
        out["b_flag"] = out["b_flag"].map({True: "true", False: "false"})
        return out

    for i, frame in enumerate([draw(g, 2000), draw(g, 2000, shifted=True), draw(g, 300)]):
        frame.loc[:, "n_lognormal"] *= 1.0 + 0.3 * i  # some windows drift a lot
        snapshot = Report([DataDriftPreset()], include_tests=True).run(
            Dataset.from_pandas(as_frame(frame), data_definition=definition),
            Dataset.from_pandas(as_frame(reference), data_definition=definition),
        )
        data = snapshot.dict()
        theirs = {}
        for test in data["tests"]:
            params = test["metric_config"]["params"]
            if params["type"].endswith(":ValueDrift"):
                theirs[params["column"]] = test["status"] == "FAIL"
        scores = {
            m["config"]["column"]: m["value"]
            for m in data["metrics"]
            if m["config"]["type"].endswith(":ValueDrift")
        }
        result = results(ours, frame, f"e{i}")
        got = {c.column: c for c in result.drift.columns}
        assert {c: got[c].drifted for c in SCHEMA} == theirs, (i, scores)
        for column in SCHEMA:
            assert got[column].score == pytest.approx(scores[column], abs=1e-9)


def test_a_window_too_small_to_judge_is_insufficient_and_never_drifted(
    setup: tuple[pd.DataFrame, ReferenceProfile],
) -> None:
    """Issue 10: a 1-row window reported 8 of 8 columns drifted, a 6-row one fired
    column drift. Far-off values in tiny windows are shown, never flagged; the same
    window judged once it has filled is."""
    from alerts.signals import window_evaluation

    _, profile = setup
    g = np.random.default_rng(5)
    for mode in ("calibrated", "evidently"):
        chosen = engine(profile, mode)
        for n in (1, 6, 31):
            frame = draw(g, n)
            frame["n_normal"] += 5.0  # far off
            frame["c_four"] = "zz"
            result = results(chosen, frame, f"{mode}{n}")
            drift = result.drift
            assert drift.insufficient and drift.min_rows == 50
            assert not drift.drifted and drift.drifted_columns == 0
            assert all(c.insufficient for c in drift.columns)
            score = next(c for c in drift.columns if c.column == "n_normal").score
            assert score is not None and score > 1
            evaluation = window_evaluation("m", result)
            assert not [s for s in evaluation.signals if "drift" in s.rule], evaluation
        filled = draw(g, 400)
        filled["n_normal"] += 5.0
        result = results(chosen, filled, f"{mode}-filled")
        assert not result.drift.insufficient and "n_normal" in flagged(result)


def test_min_rows_is_configurable(setup: tuple[pd.DataFrame, ReferenceProfile]) -> None:
    _, profile = setup
    settings = DriftSettings(min_rows=500, multivariate=False)
    chosen = StatisticsEngine(repository=None, model="m", profile=profile, settings=settings)  # type: ignore[arg-type]
    frame = draw(np.random.default_rng(6), 400)
    frame["n_normal"] += 5.0
    drift = results(chosen, frame, "m").drift
    assert drift.insufficient and drift.min_rows == 500 and drift.drifted_columns == 0
