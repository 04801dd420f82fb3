"""Paired tests: McNemar against scipy's exact binomial test and the textbook formula,
the paired bootstrap against a brute-force loop over the same resamples."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import stats
from sklearn.metrics import roc_auc_score

from monitor import paired


def test_mcnemar_matches_the_exact_binomial_test_and_the_chi_square_formula() -> None:
    rng = np.random.default_rng(1)
    ref = rng.random(500) < 0.80
    cand = np.where(rng.random(500) < 0.1, ~ref, ref)  # flip 10% of rows
    cand[:30] = True  # and make the candidate right on some more
    result = paired.mcnemar(cand, ref)

    b = int(np.sum(cand & ~ref))
    c = int(np.sum(~cand & ref))
    assert (result.candidate_only, result.reference_only) == (b, c)
    assert result.delta == pytest.approx(cand.mean() - ref.mean(), abs=1e-12)
    assert result.statistic == pytest.approx((abs(b - c) - 1) ** 2 / (b + c), abs=1e-12)
    exact = stats.binomtest(b, b + c, 0.5)
    assert result.p_two_sided == pytest.approx(exact.pvalue, abs=1e-9)
    greater = stats.binomtest(b, b + c, 0.5, alternative="greater")
    assert result.p_better == pytest.approx(greater.pvalue, abs=1e-9)


def test_mcnemar_without_discordant_rows_shows_no_difference() -> None:
    same = np.array([True, False, True])
    result = paired.mcnemar(same, same)
    assert result.delta == 0.0
    assert result.p_better == 1.0
    assert np.isnan(result.statistic)


def test_mcnemar_refuses_arrays_of_different_lengths() -> None:
    with pytest.raises(ValueError, match="same length"):
        paired.mcnemar([True, False], [True])


def _brute_force_auc_deltas(y, a, b, resamples, seed):  # type: ignore[no-untyped-def]
    rng = np.random.default_rng(seed)
    idx = rng.integers(0, y.size, size=(resamples, y.size))  # one block: small n
    out = []
    for rows in idx:
        if y[rows].min() == y[rows].max():
            continue
        out.append(roc_auc_score(y[rows], a[rows]) - roc_auc_score(y[rows], b[rows]))
    return np.array(out)


def test_paired_bootstrap_of_roc_auc_matches_a_brute_force_loop() -> None:
    rng = np.random.default_rng(7)
    n = 300
    y = (rng.random(n) < 0.3).astype(int)
    cand = np.round(y * 0.8 + rng.normal(0, 0.5, n), 2)  # rounded: tied scores
    ref = np.round(y * 0.5 + rng.normal(0, 0.5, n), 2)
    result = paired.paired_bootstrap(
        paired.weighted_roc_auc(y == 1, cand),
        paired.weighted_roc_auc(y == 1, ref),
        n,
        resamples=200,
        seed=3,
    )
    deltas = _brute_force_auc_deltas(y, cand, ref, 200, 3)
    assert result.candidate == pytest.approx(roc_auc_score(y, cand), abs=1e-12)
    assert result.reference == pytest.approx(roc_auc_score(y, ref), abs=1e-12)
    assert result.resamples == deltas.size
    low, high = np.quantile(deltas, [0.025, 0.975])
    assert (result.low, result.high) == pytest.approx((low, high), abs=1e-9)
    assert result.p_better == pytest.approx(np.mean(deltas <= 0), abs=1e-12)
    assert result.delta > 0 and result.low > 0  # the better model is found better


def test_paired_bootstrap_of_a_cost_orients_delta_so_that_positive_is_better() -> None:
    rng = np.random.default_rng(11)
    n = 400
    cand_cost = rng.choice([0.0, 1.0, 10.0], size=n, p=[0.9, 0.08, 0.02])
    ref_cost = rng.choice([0.0, 1.0, 10.0], size=n, p=[0.85, 0.10, 0.05])
    result = paired.paired_bootstrap(
        paired.weighted_mean(cand_cost),
        paired.weighted_mean(ref_cost),
        n,
        higher_is_better=False,
        resamples=300,
        seed=5,
    )
    assert result.delta == pytest.approx(ref_cost.mean() - cand_cost.mean(), abs=1e-12)
    rng2 = np.random.default_rng(5)
    idx = rng2.integers(0, n, size=(300, n))
    brute = ref_cost[idx].mean(axis=1) - cand_cost[idx].mean(axis=1)
    assert result.p_better == pytest.approx(np.mean(brute <= 0), abs=1e-12)
    assert (result.low, result.high) == pytest.approx(
        tuple(np.quantile(brute, [0.025, 0.975])), abs=1e-9
    )


def test_identical_models_are_never_better() -> None:
    rng = np.random.default_rng(2)
    y = rng.random(200) < 0.5
    s = rng.random(200)
    metric = paired.weighted_roc_auc(y, s)
    result = paired.paired_bootstrap(metric, metric, 200, resamples=50)
    assert result.delta == 0.0 and result.p_better == 1.0
