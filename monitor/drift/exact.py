"""Exact, order-independent sums of float64 values.

Window states are merged in whatever order chunks or Spark partitions arrive, and the
merged result must be identical bit for bit. Floating-point addition is not associative,
so sums are kept as Python integers: every float64 is ``m * 2**(e - 53)`` with an integer
mantissa ``m``; scaled by ``2**SHIFT`` it is an integer, and integer addition is exact and
associative. :func:`exact_sum` does this vectorised, by error-free extraction (a few
ns a value); :func:`to_float` gives the correctly rounded float of a scaled sum.
"""

from __future__ import annotations

import math

import numpy as np

SHIFT = 1126  # 2**-1126 is below the smallest subnormal's lowest bit (2**-1074 * 2**-52)
_HALF = 1 << 26
_BLOCK = 1 << 15  # values per extraction block (256 KiB: in the CPU cache)
_LEVELS = 6  # extraction rounds before the rest goes to the mantissa sum
_TINY = 2.0**-900  # below this, a rest is summed by mantissas (sigma would be subnormal)
_HUGE_EXPONENT = 1000  # sigma beyond 2**1000 would overflow: mantissas again


def exact_sum(values: np.ndarray) -> int:
    """The exact sum of finite float64 ``values``, as an integer scaled by ``2**SHIFT``.

    Error-free extraction (Rump, Ogita and Oishi, "Accurate floating-point summation",
    2008): with ``sigma = 2**k >= 2 n max|x|``, ``q = (sigma + x) - sigma`` is exact, a
    multiple of ``u = 2**(k - 53)``, and so is ``x - q``; the ``q`` of ``n`` values sum
    exactly in float64 in any order (every partial sum is a multiple of ``u`` below
    ``2**53 u``), and the rests, ``2**(53 - log2 2n)`` times smaller, go round again.
    Three or four rounds take everything for ordinary data, on blocks of
    :data:`_BLOCK` values that stay in the CPU cache; what is left after
    :data:`_LEVELS` rounds (or values near the float64 limits) is summed by mantissas
    (:func:`_mantissa_sum`). The integer is the same either way: the sum is exact.
    """
    values = np.asarray(values, dtype=np.float64)
    total = 0
    work = np.empty(min(values.size, _BLOCK))
    buffer = np.empty(min(values.size, _BLOCK))
    for start in range(0, values.size, _BLOCK):
        block = values[start : start + _BLOCK]
        n = block.size
        total += _extracted_sum(block, work[:n], buffer[:n])
    return total


def _extracted_sum(values: np.ndarray, rest: np.ndarray, q: np.ndarray) -> int:
    n = values.size
    total = 0
    rest[:] = values
    for _ in range(_LEVELS):
        top = max(float(rest.max()), -float(rest.min()))
        if top == 0.0:
            return total
        # top < 2**e, so sigma = 2**(e + bits(2n)) >= 2 n top
        k = math.frexp(top)[1] + (2 * n).bit_length()
        if top < _TINY or k > _HUGE_EXPONENT:
            break
        sigma = math.ldexp(1.0, k)
        np.add(rest, sigma, out=q)
        np.subtract(q, sigma, out=q)
        exponent = k - 53  # every q is a multiple of 2**exponent
        units = math.ldexp(float(q.sum()), -exponent)  # an integer below 2**53: exact
        total += int(units) << (exponent + SHIFT)
        np.subtract(rest, q, out=rest)
    return total + _mantissa_sum(rest)


def _mantissa_sum(values: np.ndarray) -> int:
    """The exact sum of at most ``2**25`` values, by mantissas grouped by exponent.

    Each mantissa is split into a high part (< 2**27) and a low part (< 2**26); per
    exponent, ``np.bincount`` adds the parts as float64, which is exact while every
    partial sum stays an integer below 2**53.
    """
    if values.size == 0:
        return 0
    total = 0
    mantissa, exponent = np.frexp(values)
    m = (mantissa * (1 << 53)).astype(np.int64)  # exact: 53-bit signed integers
    lowest = int(exponent.min())
    index = exponent - lowest
    high = np.bincount(index, weights=(m >> 26).astype(np.float64))
    low = np.bincount(index, weights=(m & (_HALF - 1)).astype(np.float64))
    for k in np.flatnonzero((high != 0) | (low != 0)).tolist():
        part = (int(high[k]) << 26) + int(low[k])
        total += part << (lowest + k - 53 + SHIFT)
    return total


def to_float(scaled: int, divisor: int = 1) -> float:
    """``scaled / 2**SHIFT / divisor``, correctly rounded."""
    if divisor == 0:
        return float("nan")
    return scaled / ((1 << SHIFT) * divisor)
