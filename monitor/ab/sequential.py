"""An always-valid confidence sequence for the difference of two means (pure).

The A/B analysis looks at the experiment every cycle and may stop at any look, so a
fixed-sample interval (valid at one pre-planned look) would promote far more often
than its level says. A *confidence sequence* is valid at every look at once: with
probability at least ``1 - alpha``, *every* interval of the sequence contains the true
difference, however many times and whenever it is looked at.

Choice: the asymptotic confidence sequence of Waudby-Smith, Arbour, Sinha, Kennedy and
Ramdas, "Time-uniform central limit theory and asymptotic confidence sequences"
(2021, arXiv:2103.06476, Theorem 2.2 with Robbins' normal mixture), the one GrowthBook
ships. After ``t`` observations with running mean ``mu_t`` and standard deviation
``sigma_t``::

    mu_t  +/-  sigma_t * sqrt( 2 (t rho^2 + 1) / (t^2 rho^2) * log( sqrt(t rho^2 + 1) / alpha ) )

It is the boundary where the two-sided normal-mixture martingale
``(1 + t rho^2)^(-1/2) exp(rho^2 S_t^2 / (2 (1 + t rho^2)))`` of the standardised sum
``S_t`` reaches ``1 / alpha`` (Ville's inequality), i.e. the mixture SPRT of Johari,
Pekelis and Walsh ("Always valid inference", 2017/2022) with mixing variance
``tau^2 = rho^2 sigma^2``; the same closed form is confseq's ``normal_mixture_bound``
(Howard et al. 2021) with ``rho_confseq = 1 / rho^2``. Validity is asymptotic (a CLT
coupling), which is why the analysis waits for a minimum sample before deciding.

For two arms (champion ``a``, challenger ``b``) the estimate is the difference of
means ``d = mean_b - mean_a`` with variance ``v = var_a / n_a + var_b / n_b``; with
``t = n_a + n_b`` rows the per-row standard deviation is ``sqrt(v t)`` (GrowthBook's
two-sample form; under random assignment with a fixed split this is the asymptotic
variance of the inverse-propensity estimate the paper treats in its Section 3).

Tuning: ``rho^2`` sets *where in time* the sequence is tightest. :func:`tuned_rho2`
gives the value that (to first order) minimises the width at ``rows`` observations:
``rho^2 = (2 log(1/alpha) + log(1 + 2 log(1/alpha))) / rows`` (Howard, Ramdas,
McAuliffe and Sekhon 2021, "Time-uniform, nonparametric, nonasymptotic confidence
sequences"; confseq's ``TwoSidedNormalMixture::best_rho``). Wrong tuning costs
width, never validity: any ``rho^2 > 0`` gives a valid sequence.

Every function here is vectorised over numpy arrays (the simulations run thousands of
experiments at once); scalars in, floats out.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt

FloatArray = npt.NDArray[np.float64]
ArrayLike = npt.ArrayLike


def tuned_rho2(rows: float, alpha: float) -> float:
    """The ``rho^2`` that makes a level-``alpha`` sequence tightest near ``rows`` rows."""
    _check_alpha(alpha)
    if not rows > 0:
        raise ValueError(f"tuning rows must be positive, got {rows!r}")
    log_inv = math.log(1.0 / alpha)
    return (2.0 * log_inv + math.log1p(2.0 * log_inv)) / rows


def radius(t: ArrayLike, alpha: float, rho2: float) -> Any:
    """The half-width of the sequence for a *unit* standard deviation after ``t`` rows
    (multiply by the standard deviation of one row). ``inf`` where ``t <= 0``."""
    _check_alpha(alpha)
    if not rho2 > 0:
        raise ValueError(f"rho2 must be positive, got {rho2!r}")
    t = np.asarray(t, dtype=np.float64)
    safe = np.where(t > 0, t, 1.0)
    tr = safe * rho2
    out = np.sqrt(2.0 * (tr + 1.0) / (safe * tr) * (0.5 * np.log1p(tr) - math.log(alpha)))
    return np.where(t > 0, out, np.inf)[()]


@dataclass(frozen=True)
class Moments:
    """Count, mean and sum of squared deviations of one arm's per-row values (mergeable,
    Chan et al.'s parallel update); fields may be arrays of many experiments at once."""

    n: Any
    mean: Any
    m2: Any

    @classmethod
    def of(cls, values: ArrayLike) -> Moments:
        """The moments of the finite values (NaN marks rows outside the metric)."""
        v = np.asarray(values, dtype=np.float64)
        v = v[np.isfinite(v)]
        if v.size == 0:
            return cls(0, 0.0, 0.0)
        mean = float(v.mean())
        return cls(int(v.size), mean, float(((v - mean) ** 2).sum()))

    @classmethod
    def from_sums(cls, n: ArrayLike, total: ArrayLike, squares: ArrayLike) -> Moments:
        """From counts, sums and sums of squares (0/1 data: ``squares == total``)."""
        n_ = np.asarray(n, dtype=np.float64)
        with np.errstate(divide="ignore", invalid="ignore"):
            mean = np.where(n_ > 0, np.asarray(total) / n_, 0.0)
        m2 = np.maximum(np.asarray(squares) - n_ * mean**2, 0.0)
        return cls(np.asarray(n)[()], mean[()], m2[()])

    def merge(self, other: Moments) -> Moments:
        n = np.asarray(self.n) + np.asarray(other.n)
        with np.errstate(divide="ignore", invalid="ignore"):
            delta = np.asarray(other.mean) - np.asarray(self.mean)
            mean = np.where(n > 0, self.mean + delta * np.asarray(other.n) / n, 0.0)
            m2 = np.where(
                n > 0, self.m2 + other.m2 + delta**2 * np.asarray(self.n) * other.n / n, 0.0
            )
        return Moments(n[()], mean[()], m2[()])

    @property
    def variance(self) -> Any:
        """The sample variance (``ddof=1``); 0 with fewer than two rows."""
        n = np.asarray(self.n, dtype=np.float64)
        with np.errstate(divide="ignore", invalid="ignore"):
            return np.where(n > 1, np.asarray(self.m2) / (n - 1), 0.0)[()]


@dataclass(frozen=True)
class Interval:
    """A difference ``challenger - champion`` with its confidence-sequence interval."""

    estimate: Any
    lower: Any
    upper: Any


def difference_sequence(
    champion: Moments, challenger: Moments, alpha: float, rho2: float
) -> Interval:
    """The confidence sequence for ``mean(challenger) - mean(champion)`` at this look.

    Infinite bounds while an arm has no row. Both arms' counts are cumulative since
    the experiment started: the sequence covers all looks simultaneously.
    """
    na = np.asarray(champion.n, dtype=np.float64)
    nb = np.asarray(challenger.n, dtype=np.float64)
    t = na + nb
    with np.errstate(divide="ignore", invalid="ignore"):
        v = np.asarray(champion.variance) / na + np.asarray(challenger.variance) / nb
        sd = np.sqrt(v * t)
    ready = (na > 0) & (nb > 0)
    estimate = np.where(ready, np.asarray(challenger.mean) - np.asarray(champion.mean), 0.0)
    half = np.where(ready, sd * radius(np.where(ready, t, 0.0), alpha, rho2), np.inf)
    return Interval(estimate[()], (estimate - half)[()], (estimate + half)[()])


def _check_alpha(alpha: float) -> None:
    if not 0 < alpha < 1:
        raise ValueError(f"alpha must be in (0, 1), got {alpha!r}")


__all__ = ["Interval", "Moments", "difference_sequence", "radius", "tuned_rho2"]
