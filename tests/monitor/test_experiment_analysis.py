"""The A/B analysis step by step: sample ratio check, metric values, and the order of
the checks in a decision."""

from __future__ import annotations

import json
import math
from datetime import timedelta

import numpy as np
import pytest
from scipy import stats

from monitor.ab.analysis import Action, Guardrail, Settings, analyse
from monitor.ab.metrics import Costs, fold, row_values
from monitor.ab.sequential import Moments
from monitor.ab.srm import sample_ratio, sequential_sample_ratio

SPLIT = {"champion": 0.9, "challenger": 0.1}
DAY = timedelta(days=1)


def test_sample_ratio_is_scipys_chi_square_against_the_split() -> None:
    counts = {"champion": 9120, "challenger": 880}
    result = sample_ratio(counts, SPLIT)
    chi2, p = stats.chisquare([9120, 880], [9000, 1000])
    assert result.checked
    assert result.statistic == pytest.approx(chi2, rel=1e-12)
    assert result.p_value == pytest.approx(p, rel=1e-12)
    assert p < 0.001 and result.mismatch
    assert (
        "sample ratio mismatch" in result.reason
        and "challenger 880 (expected 1000)" in result.reason
    )
    fine = sample_ratio({"champion": 9030, "challenger": 970}, SPLIT)
    assert not fine.mismatch and fine.p_value > 0.001


def test_three_variants_and_traffic_outside_the_split() -> None:
    split = {"champion": 0.5, "challenger": 0.25, "other": 0.25}
    assert not sample_ratio({"champion": 500, "challenger": 260, "other": 240}, split).mismatch
    stray = sample_ratio({"champion": 500, "challenger": 250, "other": 250, None: 3}, split)
    assert stray.mismatch and "'None': 3" in stray.reason
    typo = sample_ratio({"champion": 500, "challlenger": 250, "challenger": 1, "other": 249}, split)
    assert typo.mismatch and "challlenger" in typo.reason


def test_too_few_rows_are_not_checked_and_stop_nothing() -> None:
    result = sample_ratio({"champion": 40, "challenger": 0}, SPLIT)
    assert not result.checked and not result.mismatch and math.isnan(result.p_value)
    assert json.dumps(result.to_dict())  # NaN becomes null


@pytest.mark.parametrize(
    ("split", "message"),
    [
        ({"champion": 1.0}, "at least two variants"),
        ({"champion": 0.6, "challenger": 0.6}, "must sum to 1, got 1.2"),
        ({"champion": 1.0, "challenger": 0.0}, "in \\(0, 1\\)"),
    ],
)
def test_a_bad_split_is_refused_naming_it(split: dict[str, float], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        sample_ratio({"champion": 1}, split)


def test_row_values_of_each_metric() -> None:
    labels = [1, 0, 1, 0, None, 1]
    preds = [1, 1, 0, 0, 1, 1]
    nan = np.nan
    np.testing.assert_array_equal(row_values("accuracy", labels, preds), [1, 0, 0, 1, nan, 1])
    np.testing.assert_array_equal(row_values("error_rate", labels, preds), [0, 1, 1, 0, nan, 0])
    np.testing.assert_array_equal(row_values("fpr", labels, preds), [nan, 1, nan, 0, nan, nan])
    np.testing.assert_array_equal(row_values("fnr", labels, preds), [0, nan, 1, nan, nan, 0])
    cost = row_values("cost", labels, preds, costs=Costs(false_negative=50, false_positive=2))
    np.testing.assert_array_equal(cost, [0, 2, 50, 0, nan, 0])
    assert Moments.of(cost).mean == pytest.approx(52 / 5)
    np.testing.assert_allclose(row_values("abs_error", [1.5, 2.0], [1.0, 3.5]), [0.5, 1.5])
    strings = row_values("fpr", ["fraud", "ok"], ["fraud", "fraud"], positive="fraud")
    np.testing.assert_array_equal(strings, [nan, 1])
    with pytest.raises(ValueError, match="unknown A/B metric 'auc'"):
        row_values("auc", labels, preds)


def arms(
    champion: tuple[int, int], challenger: tuple[int, int], metric: str = "accuracy"
) -> dict[str, dict[str, Moments]]:
    """Moments of 0/1 values from (rows, ones) per arm."""
    return {
        "champion": {metric: Moments.from_sums(champion[0], champion[1], champion[1])},
        "challenger": {metric: Moments.from_sums(challenger[0], challenger[1], challenger[1])},
    }


SETTINGS = Settings(split=SPLIT, min_sample=500)
COUNTS = {"champion": 45_000, "challenger": 5_000}


def test_a_clearly_better_challenger_is_promoted_with_its_interval() -> None:
    decision = analyse(COUNTS, arms((20_000, 16_000), (4_000, 3_400)), SETTINGS, elapsed=DAY)
    assert decision.action is Action.PROMOTE
    j = decision.justification
    assert j is not None and j.metric == "accuracy" and 0 < j.lower < j.difference < j.upper
    assert j.difference == pytest.approx(0.85 - 0.80)
    assert "challenger better" in decision.reason and "confidence sequence" in decision.reason
    assert json.loads(json.dumps(decision.to_dict()))["action"] == "promote"


def test_a_sample_ratio_mismatch_stops_before_anything_else() -> None:
    counts = {"champion": 45_000, "challenger": 4_000}
    decision = analyse(counts, arms((20_000, 16_000), (4_000, 3_400)), SETTINGS, elapsed=DAY)
    assert decision.action is Action.STOP
    assert decision.primary is None and decision.srm.mismatch


def test_below_the_minimum_sample_it_continues_until_the_maximum_duration() -> None:
    few = arms((3_000, 2_400), (400, 380))  # striking, but 400 < 500 labelled rows
    decision = analyse(COUNTS, few, SETTINGS, elapsed=DAY)
    assert decision.action is Action.CONTINUE
    assert decision.reason == "400 labelled rows in the smaller arm, 500 needed"
    late = analyse(COUNTS, few, SETTINGS, elapsed=timedelta(days=14))
    assert late.action is Action.ROLLBACK and "maximum duration" in late.reason


def test_a_breached_guardrail_rolls_back_even_when_the_primary_metric_wins() -> None:
    moments = arms((20_000, 16_000), (4_000, 3_400))
    # the challenger raises the false-positive rate from 5% to 12% (negatives only)
    moments["champion"]["fpr"] = Moments.from_sums(10_000, 500, 500)
    moments["challenger"]["fpr"] = Moments.from_sums(2_000, 240, 240)
    guarded = Settings(split=SPLIT, min_sample=500, guardrails=(Guardrail("fpr", margin=0.01),))
    decision = analyse(COUNTS, moments, guarded, elapsed=DAY)
    assert decision.action is Action.ROLLBACK
    assert decision.justification is not None and decision.justification.metric == "fpr"
    assert decision.justification.lower > 0.01 and "guardrail breached" in decision.reason
    # within a generous margin the same guardrail holds and the challenger is promoted
    loose = Settings(split=SPLIT, min_sample=500, guardrails=(Guardrail("fpr", margin=0.2),))
    assert analyse(COUNTS, moments, loose, elapsed=DAY).action is Action.PROMOTE


def test_worse_rolls_back_and_inconclusive_keeps_the_champion_at_the_deadline() -> None:
    worse = analyse(COUNTS, arms((20_000, 16_000), (4_000, 2_900)), SETTINGS, elapsed=DAY)
    assert worse.action is Action.ROLLBACK and "challenger worse" in worse.reason
    close = arms((20_000, 16_000), (4_000, 3_210))
    assert analyse(COUNTS, close, SETTINGS, elapsed=DAY).action is Action.CONTINUE
    end = analyse(COUNTS, close, SETTINGS, elapsed=timedelta(days=14))
    assert end.action is Action.ROLLBACK and "inconclusive" in end.reason


def test_lower_is_better_metrics_promote_on_a_lower_cost() -> None:
    cost = Settings(split=SPLIT, metric="error_rate", min_sample=500)
    decision = analyse(COUNTS, arms((20_000, 4_000), (4_000, 600), "error_rate"), cost, elapsed=DAY)
    assert decision.action is Action.PROMOTE
    assert decision.primary is not None and decision.primary.upper < 0


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"metric": "auc"}, "unknown A/B metric 'auc'"),
        ({"champion": "blue"}, "variant 'blue' is not in the split"),
        ({"alpha": 0}, "alpha must be in"),
        ({"min_sample": 0}, "min_sample must be at least 1, got 0"),
        ({"guardrails": (Guardrail("fpr", -0.1),)}, "margin must be >= 0, got -0.1"),
    ],
)
def test_bad_settings_are_refused_naming_the_value(kwargs: dict[str, object], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        Settings(split=SPLIT, **kwargs)  # type: ignore[arg-type]


def test_sequential_sample_ratio_is_the_beta_binomial_bayes_factor() -> None:
    # two variants: the Dirichlet-multinomial factor is a beta-binomial over a binomial
    counts = {"champion": 9120, "challenger": 880}
    result = sequential_sample_ratio(counts, SPLIT, concentration=50)
    a = 50 * np.array([0.9, 0.1])
    expected = stats.betabinom.logpmf(880, 10_000, a[1], a[0]) - stats.binom.logpmf(
        880, 10_000, 0.1
    )
    assert result.statistic == pytest.approx(expected, rel=1e-9)
    assert result.p_value == pytest.approx(math.exp(-expected), rel=1e-9)
    # more cautious than the one-look chi-square (p 1e-5 here): not yet a mismatch
    assert not result.mismatch and "log Bayes factor" in result.reason
    assert not sequential_sample_ratio({"champion": 9030, "challenger": 970}, SPLIT).mismatch
    counts = {"champion": 9200, "challenger": 800}
    assert sequential_sample_ratio(counts, SPLIT).mismatch
    stopped = analyse(
        counts,
        arms((9_000, 7_200), (800, 700)),
        Settings(split=SPLIT, min_sample=500, srm_method="sequential"),
        elapsed=DAY,
    )
    assert stopped.action is Action.STOP and stopped.srm.method == "sequential"


def test_folding_pages_equals_folding_everything_at_once() -> None:
    rng = np.random.default_rng(2)
    variants = list(rng.choice(["champion", "challenger"], 500)) + [None]
    labels = [int(v) for v in rng.integers(0, 2, 501)]
    preds = [int(v) for v in rng.integers(0, 2, 501)]
    metrics = ["accuracy", "cost", "fnr"]
    whole = fold({}, variants, labels, preds, metrics, costs=Costs(5, 1))
    paged = fold({}, variants[:123], labels[:123], preds[:123], metrics, costs=Costs(5, 1))
    paged = fold(paged, variants[123:], labels[123:], preds[123:], metrics, costs=Costs(5, 1))
    assert set(whole) == {"champion", "challenger"}  # the row without a variant is skipped
    for arm in whole:
        for metric in metrics:
            a, b = whole[arm][metric], paged[arm][metric]
            assert a.n == b.n
            assert a.mean == pytest.approx(b.mean, rel=1e-12)
            assert a.variance == pytest.approx(b.variance, rel=1e-12)


def test_a_guardrail_acts_only_on_enough_of_its_own_rows_and_infinite_bounds_become_null() -> None:
    moments = arms((20_000, 16_000), (4_000, 3_210))
    # four negatives so far in the challenger arm, all false alarms: no evidence yet
    moments["champion"]["fpr"] = Moments.from_sums(10_000, 500, 500)
    moments["challenger"]["fpr"] = Moments.from_sums(4, 4, 4)
    guarded = Settings(split=SPLIT, min_sample=500, guardrails=(Guardrail("fpr"),))
    decision = analyse(COUNTS, moments, guarded, elapsed=DAY)
    assert decision.guardrails[0].worse
    assert decision.action is Action.CONTINUE
    empty = analyse(COUNTS, {}, SETTINGS, elapsed=DAY).to_dict()
    assert empty["primary"]["lower"] is None and json.dumps(empty, allow_nan=False)
