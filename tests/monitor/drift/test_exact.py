"""Exact sums: correctly rounded like ``math.fsum``, exact in the integer domain, additive."""

from __future__ import annotations

import math
from collections.abc import Callable
from fractions import Fraction

import numpy as np
import pytest

from monitor.drift.exact import SHIFT, exact_sum, to_float

SCALE = 1 << SHIFT


def _exact(values: np.ndarray) -> Fraction:
    return sum((Fraction(float(v)) for v in values), Fraction(0))


def _spread(g: np.random.Generator, n: int) -> np.ndarray:
    """Values over the whole float64 exponent range, subnormals included."""
    exponents = g.integers(-1074, 1023, n)
    signs = g.choice([-1.0, 1.0], n)
    return signs * np.ldexp(g.uniform(1.0, 2.0, n), exponents)


def _cancelling(g: np.random.Generator, n: int) -> np.ndarray:
    """Large values that cancel exactly, leaving small ones: naive summation loses these."""
    big = g.lognormal(30.0, 3.0, n)
    small = g.normal(0.0, 1e-3, n)
    out = np.concatenate([big, -big, small])
    return out[g.permutation(out.size)]


def _subnormal(g: np.random.Generator, n: int) -> np.ndarray:
    return g.integers(-(1 << 52), 1 << 52, n).astype(np.float64) * 5e-324


def _huge(g: np.random.Generator, n: int) -> np.ndarray:
    """Values near 1e308 whose partial sums overflow float64 but whose total does not."""
    big = g.uniform(1e307, 1.7e308, n)
    out = np.concatenate([big, -big, [1.5e308, -1e308, 1e308]])
    return out[g.permutation(out.size)]


ARRAYS: dict[str, Callable[[np.random.Generator], np.ndarray]] = {
    "normal": lambda g: g.normal(0.0, 1.0, 2000),
    "normal-offset": lambda g: g.normal(1e6, 1e-3, 2000),
    "lognormal": lambda g: g.lognormal(0.0, 4.0, 2000),
    "lognormal-signed": lambda g: g.lognormal(0.0, 8.0, 2000) * g.choice([-1.0, 1.0], 2000),
    "cancelling": lambda g: _cancelling(g, 1000),
    "subnormal": lambda g: _subnormal(g, 1000),
    "spread": lambda g: _spread(g, 1000),
    "huge": lambda g: _huge(g, 500),
    "integers": lambda g: g.integers(-(10**6), 10**6, 2000).astype(np.float64),
    "single": lambda g: g.normal(0.0, 1.0, 1),
    "zeros": lambda g: np.zeros(7),
}
SEEDS = range(4)


@pytest.mark.parametrize("seed", SEEDS)
@pytest.mark.parametrize("kind", sorted(ARRAYS))
def test_exact_sum_is_the_exact_sum_scaled(kind: str, seed: int) -> None:
    values = ARRAYS[kind](np.random.default_rng(seed))
    assert exact_sum(values) == _exact(values) * SCALE


@pytest.mark.parametrize("seed", SEEDS)
@pytest.mark.parametrize("kind", sorted(set(ARRAYS) - {"huge"}))
def test_to_float_of_exact_sum_equals_fsum(kind: str, seed: int) -> None:
    values = ARRAYS[kind](np.random.default_rng(seed))
    assert to_float(exact_sum(values)) == math.fsum(values.tolist())


@pytest.mark.parametrize("seed", SEEDS)
def test_huge_values_are_summed_without_overflow(seed: int) -> None:
    values = _huge(np.random.default_rng(seed), 500)
    with pytest.raises(OverflowError):  # the float algorithm overflows on the way ...
        math.fsum(sorted(values.tolist(), reverse=True))
    assert to_float(exact_sum(values)) == 1.5e308  # ... the integer one does not


def test_cancellation_that_naive_summation_gets_wrong() -> None:
    values = np.array([1e16, 1.0, -1e16, 2.0**-60, 3.0, -(2.0**-60)])
    assert float(np.sum(values)) != 4.0
    assert to_float(exact_sum(values)) == 4.0
    assert exact_sum(np.array([1e308, -1e308])) == 0


def test_golden_values() -> None:
    assert exact_sum(np.array([1.0])) == SCALE
    assert exact_sum(np.array([0.5, -0.25])) == SCALE // 4
    assert exact_sum(np.array([5e-324])) == 1 << (SHIFT - 1074)  # 2**-1074 * 2**SHIFT
    assert exact_sum(np.array([0.1])) == Fraction(0.1) * SCALE
    assert exact_sum([1.0, 2.0]) == 3 * SCALE  # any array-like


def test_empty() -> None:
    assert exact_sum(np.empty(0)) == 0
    assert exact_sum([]) == 0
    assert to_float(exact_sum(np.empty(0))) == 0.0 == math.fsum([])


@pytest.mark.parametrize("seed", range(8))
def test_sum_is_additive_over_random_splits(seed: int) -> None:
    g = np.random.default_rng(seed)
    kind = sorted(ARRAYS)[seed % len(ARRAYS)]
    values = np.concatenate([ARRAYS[kind](g), _spread(g, 300), g.lognormal(0.0, 6.0, 300)])
    whole = exact_sum(values)
    for _ in range(10):
        cut = int(g.integers(0, values.size + 1))
        a, b = values[:cut], values[cut:]
        assert exact_sum(a) + exact_sum(b) == whole
    pieces = np.array_split(values[g.permutation(values.size)], 7)
    assert sum(exact_sum(p) for p in pieces) == whole


@pytest.mark.parametrize("seed", range(4))
def test_to_float_with_divisor_is_the_correctly_rounded_mean(seed: int) -> None:
    g = np.random.default_rng(seed)
    values = np.concatenate([g.lognormal(0.0, 5.0, 999), _subnormal(g, 10)])
    total = exact_sum(values)
    mean = to_float(total, values.size)
    assert mean == float(_exact(values) / values.size)
    assert mean == pytest.approx(float(np.mean(values)), rel=1e-12)


def test_to_float_of_zero_divisor_is_nan() -> None:
    assert math.isnan(to_float(exact_sum(np.array([1.0])), 0))
    assert math.isnan(to_float(0, 0))


def test_to_float_rounds_half_to_even_at_the_last_bit() -> None:
    # 1 + 2**-53 lies halfway between 1 and the next float: ties go to the even one, 1.0
    assert to_float(SCALE + (SCALE >> 53)) == 1.0
    assert to_float(SCALE + (SCALE >> 53) + 1) == 1.0 + 2.0**-52
    assert to_float(SCALE + 3 * (SCALE >> 53)) == 1.0 + 2 * 2.0**-52
