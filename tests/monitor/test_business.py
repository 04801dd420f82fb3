"""monitor.business: Wilson intervals against scipy, outcome counts against
scikit-learn's confusion matrix, the cost curve against a brute force, the segment
decomposition adding up."""

from __future__ import annotations

import numpy as np
import pytest
from scipy.stats import binomtest
from sklearn.metrics import confusion_matrix

from monitor.business import Costs, cost_curve, decompose, outcomes, segment_costs, wilson

COSTS = Costs(tp=1.0, fp=4.0, fn=50.0, tn=0.0)


@pytest.mark.parametrize(("k", "n"), [(0, 10), (3, 10), (8, 10), (10, 10), (17, 4031)])
def test_wilson_matches_scipy(k: int, n: int) -> None:
    ci = binomtest(k, n).proportion_ci(confidence_level=0.9, method="wilson")
    rate = wilson(k, n, 0.9)
    assert rate.value == k / n
    assert (rate.lower, rate.upper) == pytest.approx((ci.low, ci.high), abs=1e-12)
    assert wilson(0, 0).value is None


def test_labelled_rows_give_the_confusion_matrix_and_its_cost() -> None:
    rng = np.random.default_rng(1)
    y = rng.random(500) < 0.1
    flagged = rng.random(500) < np.where(y, 0.7, 0.05)
    amount = rng.gamma(2.0, 30.0, 500)
    o = outcomes(y.astype(float), flagged, costs=COSTS, miss_value=amount)
    tn, fp, fn, tp = confusion_matrix(y, flagged).ravel()
    assert (o.tp, o.fp, o.fn, o.tn) == (tp, fp, fn, tn)
    missed = amount[y & ~flagged].sum() + 50.0 * fn
    assert o.cost == pytest.approx(1.0 * tp + 4.0 * fp + missed, rel=1e-12)
    rates = o.rates()
    assert rates["fnr"].value == fn / (fn + tp) and rates["precision"].value == tp / (tp + fp)


def test_expected_counts_and_unknown_rows_scale_to_the_volume() -> None:
    q = np.array([0.9, 0.2, np.nan, 0.5, np.nan, 0.0])
    flagged = np.array([True, True, True, False, False, False])
    o = outcomes(q, flagged, costs=COSTS)
    assert (o.tp, o.fp, o.fn, o.tn) == pytest.approx((1.1, 0.9, 0.5, 1.5))
    assert (o.rows, o.known, o.scale) == (6, 4, 1.5)
    assert o.count("fn") == pytest.approx(0.75)
    assert o.cost == pytest.approx((1.1 * 1 + 0.9 * 4 + 0.5 * 50) * 1.5)
    with pytest.raises(ValueError, match="probabilities"):
        outcomes([1.5], [True], costs=COSTS)


def test_the_cost_curve_is_the_brute_force_cost_at_each_threshold() -> None:
    rng = np.random.default_rng(2)
    scores = rng.random(2000)
    q = np.clip(scores + rng.normal(0, 0.1, 2000), 0, 1)
    q[:100] = np.nan  # unknown rows are left out and the rest scaled
    value = rng.gamma(2.0, 10.0, 2000)
    thresholds = [0.1, 0.25, 0.5, 0.5001, 0.9]
    curve = cost_curve(
        q, scores, thresholds, days=7, costs=COSTS, miss_value=value, capacity=700 / 7
    )
    known = ~np.isnan(q)
    for point in curve.points:
        flagged = scores[known] >= point.threshold
        brute = outcomes(q[known], flagged, costs=COSTS, miss_value=value[known])
        scale = 2000 / known.sum() / 7
        assert point.cost_per_day == pytest.approx(brute.cost * scale, rel=1e-9)
        assert point.flagged_per_day == pytest.approx(flagged.sum() * scale, rel=1e-9)
        assert point.missed_per_day == pytest.approx(brute.fn * scale, rel=1e-9)
    assert curve.best == min(curve.points, key=lambda p: p.cost_per_day)
    fitting = [p for p in curve.points if p.flagged_per_day <= 100]
    assert curve.best_within_capacity == min(fitting, key=lambda p: p.cost_per_day)


def test_segment_changes_add_up_to_the_total_change() -> None:
    rng = np.random.default_rng(3)
    segments_before = rng.choice(["a", "b", "c"], 800)
    segments_now = rng.choice(["a", "b", "d"], 1000)  # c gone, d new
    q0, q1 = rng.random(800) * 0.2, rng.random(1000) * 0.3
    f0, f1 = rng.random(800) < 0.1, rng.random(1000) < 0.1
    before = segment_costs(segments_before, q0, f0, costs=COSTS)
    now = segment_costs(segments_now, q1, f1, costs=COSTS)
    changes = decompose(now, before)
    total = outcomes(q1, f1, costs=COSTS).cost - outcomes(q0, f0, costs=COSTS).cost
    assert sum(c.change for c in changes) == pytest.approx(total, rel=1e-9)
    for c in changes:
        assert c.volume_effect + c.rate_effect == pytest.approx(c.change, rel=1e-9, abs=1e-9)
    by_name = {c.segment: c for c in changes}
    assert by_name["d"].volume_effect == by_name["d"].cost and by_name["c"].cost == 0
    assert abs(changes[0].change) == max(abs(c.change) for c in changes)
