"""The confidence sequence against the closed forms of its papers.

The boundary of Waudby-Smith et al. (2021) is where Robbins' normal-mixture martingale
reaches 1/alpha; the same boundary is Johari, Pekelis and Walsh's mSPRT and confseq's
``normal_mixture_bound``. Each is computed here independently of monitor.ab.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
from scipy import integrate, stats
from scipy.optimize import minimize_scalar

from monitor.ab.sequential import Moments, difference_sequence, radius, tuned_rho2

CASES = [(0.05, 100, 0.01), (0.05, 5000, 1e-3), (0.01, 20_000, 5e-4), (0.2, 37, 0.3)]


def mixture_martingale(s: float, t: float, rho2: float) -> float:
    """Robbins' mixture of exp(l s - l^2 t / 2) over l ~ N(0, rho2), by quadrature."""
    sd = math.sqrt(rho2)

    def integrand(lam: float) -> float:
        return math.exp(lam * s - lam**2 * t / 2) * stats.norm.pdf(lam, scale=sd)

    peak = s / (t + 1 / rho2)  # the integrand's mode
    width = 12 / math.sqrt(t + 1 / rho2)
    value, _ = integrate.quad(integrand, peak - width, peak + width, epsabs=0, epsrel=1e-12)
    return value


@pytest.mark.parametrize(("alpha", "t", "rho2"), CASES)
def test_boundary_is_where_the_mixture_martingale_reaches_one_over_alpha(
    alpha: float, t: int, rho2: float
) -> None:
    s = t * float(radius(t, alpha, rho2))  # the standardised sum at the boundary
    assert mixture_martingale(s, t, rho2) == pytest.approx(1 / alpha, rel=1e-9)
    # inside the boundary the martingale is below 1/alpha: the interval is the right side
    assert mixture_martingale(0.99 * s, t, rho2) < 1 / alpha


@pytest.mark.parametrize(("alpha", "t", "rho2"), CASES)
def test_boundary_equals_the_msprt_of_johari_pekelis_walsh(
    alpha: float, t: int, rho2: float
) -> None:
    sigma = 2.5
    tau2 = rho2 * sigma**2  # the mixing variance in the effect's own units
    theta = sigma * float(radius(t, alpha, rho2))  # the interval's end, sd sigma
    v = sigma**2
    msprt = math.sqrt(v / (v + t * tau2)) * math.exp(
        t**2 * tau2 * theta**2 / (2 * v * (v + t * tau2))
    )
    assert msprt == pytest.approx(1 / alpha, rel=1e-9)


@pytest.mark.parametrize(("alpha", "t", "rho2"), CASES)
def test_boundary_equals_confseq_normal_mixture_bound(alpha: float, t: int, rho2: float) -> None:
    # confseq uniform_boundaries.h TwoSidedNormalMixture::bound with rho = 1 / rho2
    r = 1 / rho2
    bound = math.sqrt((t + r) * (math.log(1 + t / r) + 2 * math.log(1 / alpha)))
    assert float(radius(t, alpha, rho2)) == pytest.approx(bound / t, rel=1e-12)


@pytest.mark.parametrize("alpha", [0.01, 0.05, 0.1])
@pytest.mark.parametrize("rows", [500, 20_000])
def test_tuned_rho_makes_the_sequence_tightest_at_the_tuning_rows(alpha: float, rows: int) -> None:
    tuned = float(radius(rows, alpha, tuned_rho2(rows, alpha)))
    best = minimize_scalar(
        lambda log_rho2: float(radius(rows, alpha, math.exp(log_rho2))),
        bounds=(-25, 5),
        method="bounded",
        options={"xatol": 1e-10},
    )
    assert tuned == pytest.approx(best.fun, rel=1e-4)
    # and elsewhere it is wider than a sequence tuned there
    assert float(radius(rows * 20, alpha, tuned_rho2(rows, alpha))) > float(
        radius(rows * 20, alpha, tuned_rho2(rows * 20, alpha))
    )


def test_sequence_is_wider_than_the_fixed_sample_interval_by_the_price_of_peeking() -> None:
    # at the tuning point and alpha 0.05 the sequence is 1.55 times a z interval
    t, alpha = 4000, 0.05
    ratio = float(radius(t, alpha, tuned_rho2(t, alpha))) * math.sqrt(t) / stats.norm.ppf(0.975)
    assert 1.5 < ratio < 1.6
    assert math.isinf(float(radius(0, alpha, 1e-3)))


def test_moments_merge_like_numpy() -> None:
    rng = np.random.default_rng(7)
    a, b = rng.normal(3, 2, 311), rng.normal(-1, 5, 1000)
    merged = Moments.of(a).merge(Moments.of(b))
    both = np.concatenate([a, b])
    assert merged.n == both.size
    assert merged.mean == pytest.approx(both.mean(), rel=1e-12)
    assert merged.variance == pytest.approx(both.var(ddof=1), rel=1e-12)
    sums = Moments.from_sums(both.size, both.sum(), (both**2).sum())
    assert sums.variance == pytest.approx(both.var(ddof=1), rel=1e-9)
    # NaN rows are outside the metric
    assert Moments.of([1.0, np.nan, 3.0]).n == 2
    assert Moments.of([]).merge(Moments.of(a)).mean == pytest.approx(a.mean(), rel=1e-12)


def test_difference_sequence_uses_the_two_sample_variance() -> None:
    rng = np.random.default_rng(3)
    a, b = rng.binomial(1, 0.7, 800).astype(float), rng.binomial(1, 0.75, 1200).astype(float)
    alpha, rho2 = 0.05, tuned_rho2(2000, 0.05)
    got = difference_sequence(Moments.of(a), Moments.of(b), alpha, rho2)
    se = math.sqrt(a.var(ddof=1) / a.size + b.var(ddof=1) / b.size)
    half = se * math.sqrt(2000) * float(radius(2000, alpha, rho2))
    assert got.estimate == pytest.approx(b.mean() - a.mean(), rel=1e-12)
    assert got.lower == pytest.approx(b.mean() - a.mean() - half, rel=1e-12)
    assert got.upper == pytest.approx(b.mean() - a.mean() + half, rel=1e-12)
    empty = difference_sequence(Moments.of([]), Moments.of(b), alpha, rho2)
    assert math.isinf(empty.lower) and math.isinf(empty.upper)


def test_bad_parameters_are_refused_with_their_value() -> None:
    with pytest.raises(ValueError, match="alpha must be in"):
        radius(10, 1.5, 0.1)
    with pytest.raises(ValueError, match="rho2 must be positive, got 0"):
        radius(10, 0.05, 0)
    with pytest.raises(ValueError, match="tuning rows must be positive, got -3"):
        tuned_rho2(-3, 0.05)
