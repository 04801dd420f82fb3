"""Null distributions of drift scores: how far a stationary window strays, fitted once.

A window drawn from the reference's own distribution still scores above zero, and by how
much depends on the column and on the window's size ``n``. driftd fits that null once per
reference (when the profile is built) and stores it with the profile, so no run, restart
or process pays for calibration again. Both samples are random, so sizes combine as
``n_eff = n N / (n + N)`` (``N`` the reference's count).

- Numeric distances (``wasserstein``, ``ed``): ``sqrt(n_eff) W1 / std`` tends to
  ``integral |B(F(x))| dx / std`` and ``sqrt(n_eff) ED`` to
  ``sqrt(2 integral B(F(x))^2 dx)``, ``B`` a Brownian bridge and ``F`` the reference's
  distribution (the empirical-process limit; the L1/L2 functionals converge fast, from a
  few dozen values). :func:`fit_null` simulates ``ROUNDS`` bridges on the reference's
  distinct values (or ``GRID`` quantiles of them) and keeps the sorted limits.
- Divergences on counts (``jensenshannon``, ``psi``, ``kl_div``, ``hellinger``): to second
  order each is a multiple of Pearson's ``sum (q - p)^2 / p``, whose ``n_eff`` multiple is
  chi-square with ``k - 1`` degrees of freedom: ``8 n_eff JS^2``, ``n_eff PSI``,
  ``2 n_eff KL``, ``8 n_eff H^2`` (``k`` categories, or Evidently's bins of a numeric
  column). Analytic: nothing to fit.
- p-value tests (``ks``, ``chisquare``, ``z``, ...): the p-value of a stationary window is
  uniform (conservative with ties), so its null tail probability is the p-value itself.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from scipy import stats

from monitor.drift.binned import BIN_MIN_UNIQUE, sturges_edges
from monitor.drift.codec import decode_array, encode_array
from monitor.drift.methods import METHODS

ROUNDS = 2000  # simulated bridges per column: the 1% quantile rests on 20 of them
CHUNK = 250
GRID = 1000  # bridge points at most (quantiles of the distinct values beyond that)
SIMULATED = ("wasserstein", "ed")
CHI_SQUARE = {"jensenshannon": 8.0, "psi": 1.0, "kl_div": 2.0, "hellinger": 8.0}
SQUARED = frozenset({"jensenshannon", "hellinger"})  # distances whose square is the divergence
VERSION = 1  # bump when what is stored changes: older profiles are rebuilt

# Minimum effects (calibrated mode): a column is flagged only when its shift is also at
# least this large, so that a negligible shift in a huge window is not drift. The floors
# of distances apply to the score; a p-value test's effect is its column's companion
# distance (numeric: normed Wasserstein; categorical: Jensen-Shannon).
FLOORS = {
    "wasserstein": 0.05,  # 5% of the reference's std (a 0.05-sd mean shift)
    "ed": 0.05,
    "jensenshannon": 0.02,  # about a 3-point share move between two even categories
    "hellinger": 0.02,
    "psi": 0.004,  # PSI ~ 8 JS^2
    "kl_div": 0.002,  # KL ~ 4 JS^2
}
COMPANION = {"numeric": "wasserstein", "categorical": "jensenshannon"}

# Fewest values a window needs before its column is judged, per method: below it, the
# column is "insufficient" (shown, never flagged) and is judged when the window fills.
MIN_ROWS = {
    "ks": 20,
    "mannw": 20,
    "t_test": 20,
    "anderson": 30,
    "cramer_von_mises": 30,
    "es": 30,
    "wasserstein": 30,
    "ed": 30,
    "chisquare": 30,
    "z": 30,
    "g_test": 30,
    "fisher_exact": 30,
    "jensenshannon": 50,
    "psi": 50,
    "kl_div": 50,
    "hellinger": 50,
    "TVD": 50,
}


@dataclass(frozen=True)
class ColumnNull:
    """The null of one column: simulated limits (numeric) and the reference's geometry."""

    n_reference: int
    categories: int = 0  # categorical: reference categories
    lo: float = math.nan  # numeric: the reference's range, for Evidently's bin count
    hi: float = math.nan
    unique: int = 0
    limits: Mapping[str, np.ndarray] = field(default_factory=dict)  # method -> sorted

    def to_dict(self) -> dict[str, Any]:
        return {
            "n_reference": self.n_reference,
            "categories": self.categories,
            "lo": None if math.isnan(self.lo) else self.lo,
            "hi": None if math.isnan(self.hi) else self.hi,
            "unique": self.unique,
            "limits": {m: encode_array(v.astype(np.float32)) for m, v in self.limits.items()},
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> ColumnNull:
        return cls(
            n_reference=data["n_reference"],
            categories=data["categories"],
            lo=math.nan if data["lo"] is None else data["lo"],
            hi=math.nan if data["hi"] is None else data["hi"],
            unique=data["unique"],
            limits={m: decode_array(v).astype(np.float64) for m, v in data["limits"].items()},
        )

    def effective(self, n: int) -> float:
        return n * self.n_reference / (n + self.n_reference)

    def tail(self, method: str, score: float, n: int, column_type: str) -> float:
        """P(a stationary window of ``n`` values scores at least ``score``)."""
        if math.isnan(score) or n <= 0:
            return math.nan
        chosen = METHODS[method]
        if chosen.kind == "p_value":
            return score
        n_eff = self.effective(n)
        if method in self.limits:
            sims = self.limits[method]
            above = sims.size - np.searchsorted(sims, math.sqrt(n_eff) * score, side="left")
            return float((1 + above) / (1 + sims.size))
        if method in CHI_SQUARE:
            divergence = score * score if method in SQUARED else score
            df = self._df(n, column_type)
            return float(stats.chi2.sf(CHI_SQUARE[method] * n_eff * divergence, df))
        return math.nan  # no null known: the method's fixed threshold decides

    def limit(self, method: str, n: int, alpha: float, column_type: str) -> float | None:
        """The score a stationary window of ``n`` values exceeds with probability
        ``alpha`` (None when no null is known)."""
        chosen = METHODS[method]
        if chosen.kind == "p_value":
            return alpha
        n_eff = self.effective(n)
        if method in self.limits:
            sims = self.limits[method]
            return float(np.quantile(sims, 1 - alpha, method="higher")) / math.sqrt(n_eff)
        if method in CHI_SQUARE:
            df = self._df(n, column_type)
            divergence = float(stats.chi2.isf(alpha, df)) / (CHI_SQUARE[method] * n_eff)
            return math.sqrt(divergence) if method in SQUARED else divergence
        return None

    def _df(self, n: int, column_type: str) -> int:
        if column_type != "numeric" or self.unique <= BIN_MIN_UNIQUE:
            k = self.categories if column_type != "numeric" else self.unique
            return max(k - 1, 1)
        edges = sturges_edges(
            self.lo, self.hi, self.n_reference + n, integer=False
        )  # profiles hold float64
        return max(edges.size - 2, 1)


def fit_null(column: Any, *, rounds: int = ROUNDS, grid: int = GRID, seed: int = 0) -> ColumnNull:
    """The null of a profiled column (:class:`~monitor.drift.profile.ColumnProfile`)."""
    if not column.numeric:
        return ColumnNull(n_reference=int(column.n), categories=len(column.categories))
    values = np.asarray(column.values, dtype=np.float64)
    if values.size == 0:
        return ColumnNull(n_reference=0)
    distinct = np.unique(values)
    exact = distinct.size <= grid
    points = distinct if exact else np.quantile(values, np.linspace(0, 1, grid))
    shares = np.searchsorted(values, points, side="right") / values.size  # F at the points
    widths = np.diff(points)
    steps = np.sqrt(np.diff(np.concatenate(([0.0], shares))))
    rng = np.random.default_rng(seed)
    l1, l2 = np.empty(rounds), np.empty(rounds)
    for first in range(0, rounds, CHUNK):  # bounded memory: CHUNK bridges at a time
        size = min(CHUNK, rounds - first)
        walk = np.cumsum(rng.standard_normal((size, shares.size)) * steps, axis=1)
        bridge = walk - shares * walk[:, -1:]  # B(t) = W(t) - t W(1), t = F at each point
        absolute, square = np.abs(bridge), np.square(bridge)
        if exact:  # F is constant from one distinct value to the next
            l1[first : first + size] = absolute[:, :-1] @ widths
            l2[first : first + size] = square[:, :-1] @ widths
        else:  # F rises between quantiles: the trapezoid rule
            l1[first : first + size] = 0.5 * (absolute[:, :-1] + absolute[:, 1:]) @ widths
            l2[first : first + size] = 0.5 * (square[:, :-1] + square[:, 1:]) @ widths
    std = max(float(np.std(values)), 0.001)
    return ColumnNull(
        n_reference=int(column.n),
        lo=float(values[0]),
        hi=float(values[-1]),
        unique=int(distinct.size),
        limits={"wasserstein": np.sort(l1 / std), "ed": np.sort(np.sqrt(2 * l2))},
    )


def fit_nulls(profile: Any, **options: Any) -> dict[str, ColumnNull]:
    """The null of every profiled column with values."""
    return {name: fit_null(c, **options) for name, c in profile.columns.items() if c.n}
