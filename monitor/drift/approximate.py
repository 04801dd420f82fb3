"""Binned scores of a whole window, each with a certain interval around the exact score.

A window state (:mod:`monitor.drift.state`) holds, per numeric column, the counts of *all*
the window's values on the reference profile's frozen quantile bins, and the window's
minimum and maximum. The reference's values are known exactly. From the two histograms
alone, :func:`binned_interval` bounds what a method would score on all the window's values:
the exact score lies in ``[low, high]``. driftd reports the midpoint as the score and half
the width as ``error_bound``, so ``|score - exact| <= error_bound``.

Notation: slots ``j = 0 .. B+1`` are the profile's bins with the two outer slots
(``(-inf, e_0)`` and ``(e_B, +inf)``, see :meth:`~monitor.drift.profile.ColumnProfile.slot_of`);
``r_j`` and ``w_j`` are the reference's and the window's shares of values in slot ``j``;
``L_j = F_R - F_W`` just before slot ``j`` (the difference of the two ECDFs, known exactly
at every bin edge); ``h_j`` is the slot's width (the outer slots reach the window's
minimum and maximum; the reference's values lie within ``[e_0, e_B]``). Inside slot ``j``
both ECDFs rise monotonically by ``r_j`` and ``w_j`` in an unknown way, so there
``F_R - F_W`` can take any value of ``[L_j - w_j, L_j + r_j]`` and no other.

- ``ks`` (asymptotic p-value, i.e. more than 10,000 values on one side): the exact
  ``D = sup |F_R - F_W|`` lies in ``[D_edges, max(D_edges, max_j max(L_j + r_j, w_j - L_j))]``,
  ``D_edges`` being the largest ``|F_R - F_W|`` at the bin edges. As ``|L_j| <= D_edges``,
  the width is at most ``max_j max(r_j, w_j)``: with quantile bins ``r_j ~ 1/B`` (B = 1000),
  so binned KS is within ``1/B`` of the exact D where the window's share per bin is small
  too. The p-value ``kstwo.sf(D, round(n_R n_W / (n_R + n_W)))`` decreases in D, which
  gives its interval.
- ``wasserstein``: ``W1 = integral |F_R - F_W|``, which per slot lies between
  ``h_j dist(0, [L_j - w_j, L_j + r_j])`` and ``h_j max(|L_j - w_j|, |L_j + r_j|)``,
  divided by the reference std (at least 0.001); the half-width is at most
  ``sum_j h_j (r_j + w_j) / 2`` over the std.
- ``ed`` (energy distance, ``sqrt(2 integral (F_R - F_W)^2)``): the same per-slot ranges,
  squared.
- ``psi``, ``jensenshannon``, ``kl_div``: Evidently defines these for a numeric column on
  *its own* bins, Sturges bins over the range of both samples (:mod:`.binned`), not on
  driftd's quantile bins. A value on the 1,000 quantile bins ("driftd-binned") would be a
  different statistic, with a different spread: for a stationary normal window of 10,000
  values its Jensen-Shannon distance is about 0.12, above the usual threshold of 0.1,
  against 0.016 on Evidently's bins. So the *same* statistic is bounded: the window's
  range and size are known, hence Evidently's edges; the reference's counts on them are
  exact; the window's count below a Sturges edge is known up to the count of the one
  quantile bin the edge falls in. Each score is a sum of per-bin terms, each convex in the
  window's share of its bin, so each term lies between its minimum and its maximum over
  that bin's range of shares (Evidently's zero filling included), and the score between
  the sums. (KL: scipy normalizes the filled shares, which adds ``log(1 + fill * empty)``.)

The KS, Wasserstein and energy intervals are the tightest the histograms allow: each end
is reached (or approached) by some placement of the values inside their bins, as the
tests see (``|score - exact| / error_bound`` up to 1.0). The PSI, JS and KL intervals
bound each Sturges bin separately, ignoring that the window's shares sum to one.

No binned form: ``hellinger`` (Evidently's bins depend on the number of distinct values,
which counts do not give), the rank tests (Anderson-Darling, Cramer-von Mises,
Mann-Whitney: ties and ranks inside a bin are unknown), ``t_test`` and ``es``; numeric
columns whose reference has at most 20 distinct values for PSI/JS/KL (Evidently bins them
by value); and ``ks`` while both samples have at most 10,000 values (scipy's exact p-value).
Intervals are widened by ``1e-12 + 1e-9 |x|`` for floating-point rounding.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from scipy import special

from monitor.drift.binned import BIN_MIN_UNIQUE, fill_empty_bins, histogram, sturges_edges
from monitor.drift.profile import ColumnProfile, slot_counts
from monitor.drift.ranked import KS_EXACT_MAX_N, ks_p_value
from monitor.drift.samples import ReferenceColumn
from monitor.drift.state import ColumnState

BINNED_METHODS = ("ks", "wasserstein", "ed", "psi", "jensenshannon", "kl_div")


@dataclass(frozen=True)
class Interval:
    """A score certain to lie in ``[low, high]``."""

    low: float
    high: float

    @property
    def score(self) -> float:
        return 0.5 * (self.low + self.high)

    @property
    def bound(self) -> float:
        """The largest distance from :attr:`score` to a value of the interval."""
        return 0.5 * (self.high - self.low)


def _widened(low: float, high: float) -> tuple[float, float]:
    slack = 1e-12 + 1e-9 * max(abs(low), abs(high))
    return low - slack, high + slack


@dataclass(frozen=True)
class Histograms:
    """The reference's and the window's counts on a profile's slots, with their geometry."""

    reference: ReferenceColumn
    edges: np.ndarray  # the profile's bin edges e_0 .. e_B
    ref_counts: np.ndarray  # per slot, B + 2 of them
    cur_counts: np.ndarray
    n_cur: int
    cur_min: float
    cur_max: float

    @classmethod
    def of(
        cls, reference: ReferenceColumn, column: ColumnProfile, state: ColumnState
    ) -> Histograms | None:
        """The histograms of a numeric column, or None when the state has none."""
        edges = column.edges
        if state.n == 0 or edges.size == 0 or state.slots.size != edges.size + 1:
            return None
        if reference.n == 0 or state.minimum is None or state.maximum is None:
            return None
        ref_counts = column.counts
        if reference.n != column.n or ref_counts.size != edges.size + 1:
            ref_counts = slot_counts(reference.values, edges)  # a sample of the reference
        return cls(
            reference,
            edges,
            ref_counts.astype(np.int64, copy=False),
            state.slots.astype(np.int64),
            int(state.n),
            float(state.minimum),
            float(state.maximum),
        )

    def ecdf_gaps(self) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        """Per slot: ``L_j`` (``F_R - F_W`` before it), ``r_j``, ``w_j`` and the width."""
        n_ref = self.reference.n
        cum_r = np.concatenate(([0], np.cumsum(self.ref_counts)))
        cum_w = np.concatenate(([0], np.cumsum(self.cur_counts)))
        before = cum_r[:-1] / n_ref - cum_w[:-1] / self.n_cur
        ref_min = float(self.reference.values[0])
        ref_max = float(self.reference.values[-1])
        lowest = min(self.cur_min, ref_min, float(self.edges[0]))
        highest = max(self.cur_max, ref_max, float(self.edges[-1]))
        bounds = np.concatenate(([lowest], self.edges, [highest]))
        return before, self.ref_counts / n_ref, self.cur_counts / self.n_cur, np.diff(bounds)

    def after_edges(self) -> np.ndarray:
        """``F_R - F_W`` after each slot, values it takes at points (exact)."""
        cum_r = np.cumsum(self.ref_counts)
        cum_w = np.cumsum(self.cur_counts)
        return cum_r / self.reference.n - cum_w / self.n_cur


def binned_interval(method: str, window: Histograms) -> tuple[Interval | None, str]:
    """The interval of ``method``'s exact score on the window, or None and why not."""
    if method == "ks":
        if max(window.reference.n, window.n_cur) <= KS_EXACT_MAX_N:
            return None, "ks on at most 10,000 values per side is scipy's exact p-value"
        return ks_interval(window), ""
    if method == "wasserstein":
        return wasserstein_interval(window), ""
    if method == "ed":
        return energy_interval(window), ""
    if method in ("psi", "jensenshannon", "kl_div"):
        if window.reference.unique.size <= BIN_MIN_UNIQUE:
            return None, (
                f"{method}: the reference has at most {BIN_MIN_UNIQUE} distinct values, "
                "which Evidently bins by value"
            )
        return _sturges_interval(method, window), ""
    return None, f"{method} has no binned form"


def ks_d_interval(window: Histograms) -> tuple[float, float]:
    """Bounds of the exact two-sample KS statistic D."""
    at_edges = float(np.max(np.abs(window.after_edges()), initial=0.0))
    before, r, w, width = window.ecdf_gaps()
    inside = width > 0
    within = np.maximum(before + r, w - before)[inside]
    high = max(at_edges, float(np.max(within, initial=0.0)))
    low, high = _widened(at_edges, high)
    return max(low, 0.0), min(high, 1.0)


def ks_interval(window: Histograms) -> Interval:
    """The asymptotic KS p-value's interval (it decreases in D)."""
    low, high = ks_d_interval(window)
    n_ref, n_cur = window.reference.n, window.n_cur
    return Interval(ks_p_value(high, n_ref, n_cur), ks_p_value(low, n_ref, n_cur))


def _gap_ranges(window: Histograms) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Per slot, the least and largest ``|F_R - F_W|`` inside it, and its width."""
    before, r, w, width = window.ecdf_gaps()
    low, high = before - w, before + r
    largest = np.maximum(np.abs(low), np.abs(high))
    least = np.where(low > 0, low, np.where(high < 0, -high, 0.0))
    return least, largest, width


def wasserstein_interval(window: Histograms) -> Interval:
    """W1 over ``max(std(reference), 0.001)``."""
    least, largest, width = _gap_ranges(window)
    norm = max(window.reference.std, 0.001)
    low, high = _widened(float(np.dot(width, least)), float(np.dot(width, largest)))
    return Interval(max(low, 0.0) / norm, high / norm)


def energy_interval(window: Histograms) -> Interval:
    """``sqrt(2 integral (F_R - F_W)^2)``."""
    least, largest, width = _gap_ranges(window)
    low, high = _widened(
        float(np.dot(width, np.square(least))), float(np.dot(width, np.square(largest)))
    )
    return Interval(math.sqrt(2 * max(low, 0.0)), math.sqrt(2 * high))


# -- PSI, Jensen-Shannon and KL on Evidently's bins ----------------------------------------


def sturges_counts(window: Histograms) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Evidently's Sturges edges for the reference and the whole window, the reference's
    counts on them (exact), and the least and largest counts the window can have on them."""
    ref = window.reference
    lo = min(float(ref.values[0]), window.cur_min)
    hi = max(float(ref.values[-1]), window.cur_max)
    # the window's values are float64, as its state and row sample hold them
    edges = sturges_edges(lo, hi, ref.n + window.n_cur, integer=False)
    n = window.n_cur
    fine = window.edges
    inner = edges[1:-1]
    slot = np.searchsorted(fine, inner, side="right")
    slot[inner == fine[-1]] = fine.size - 1
    cum = np.concatenate(([0], np.cumsum(window.cur_counts)))
    below = cum[slot]  # the window's values in the slots below the edge's slot
    on_edge = (slot >= 1) & (inner == fine[np.maximum(slot - 1, 0)])  # at the slot's start
    uncertain = np.where(on_edge, 0, window.cur_counts[slot])
    least, most = below.copy(), below + uncertain
    for bound in (least, most):
        bound[inner <= window.cur_min] = 0
        bound[inner > window.cur_max] = n
    least_cum = np.concatenate(([0], least, [n]))
    most_cum = np.concatenate(([0], most, [n]))
    low = np.maximum(least_cum[1:] - most_cum[:-1], 0)
    high = most_cum[1:] - least_cum[:-1]
    return edges, histogram(ref.values, edges), np.stack((low, high))


def _fill(smallest: float) -> float:
    """Evidently's replacement of an empty bin's share, given the smallest non-zero one."""
    return smallest / 10**6 if smallest <= 0.0001 else 0.0001


def _filled_shares(
    low: np.ndarray, high: np.ndarray, n: int
) -> tuple[np.ndarray, np.ndarray, float, float]:
    """Ranges of the window's shares after Evidently's zero filling (``fill_empty_bins``), and
    of the fill itself.

    An empty bin gets ``smallest / 10**6`` (or 0.0001), the smallest non-zero share being
    unknown within a range (the fill grows with it); a bin that may be empty or not ranges
    over both."""
    maybe = high > 0
    sure = low > 0
    smallest_low = float(np.min(np.maximum(low[maybe], 1) / n))
    smallest_high = float(np.min(high[sure] / n)) if sure.any() else 1.0
    fill_low, fill_high = _fill(smallest_low), _fill(smallest_high)
    q_low, q_high = low / n, high / n
    empty = low == 0
    q_low = np.where(empty, np.where(high > 0, min(fill_low, 1 / n), fill_low), q_low)
    q_high = np.where(empty, np.maximum(q_high, fill_high), q_high)
    return q_low, q_high, fill_low, fill_high


def _sturges_interval(method: str, window: Histograms) -> Interval:
    _, ref_counts, (low, high) = sturges_counts(window)
    n = window.n_cur
    p = ref_counts / window.reference.n
    if method == "jensenshannon":
        p = p / np.sum(p)
        q_low, q_high = low / n, high / n
        lo_sum = float(np.sum(_js_term(p, np.clip(p, q_low, q_high))))
        hi_sum = float(np.sum(np.maximum(_js_term(p, q_low), _js_term(p, q_high))))
        lo, hi = _widened(lo_sum, hi_sum)
        return Interval(math.sqrt(max(lo, 0.0)), math.sqrt(max(hi, 0.0)))
    fill_empty_bins(p)
    q_low, q_high, fill_low, fill_high = _filled_shares(low, high, n)
    if method == "psi":
        lo_sum = float(np.sum(_psi_term(p, np.clip(p, q_low, q_high))))
        hi_sum = float(np.sum(np.maximum(_psi_term(p, q_low), _psi_term(p, q_high))))
        return Interval(*_widened(lo_sum, hi_sum))
    # kl_div: scipy's entropy normalizes both; the window's shares sum to 1 + fill * empty
    p = p / np.sum(p)
    extra_low = fill_low * int(np.count_nonzero(high == 0))  # surely empty bins
    extra_high = fill_high * int(np.count_nonzero(low == 0))  # possibly empty ones
    lo_sum = float(np.sum(special.rel_entr(p, q_high))) + math.log1p(extra_low)
    hi_sum = float(np.sum(special.rel_entr(p, q_low))) + math.log1p(extra_high)
    return Interval(*_widened(lo_sum, hi_sum))


def _js_term(p: np.ndarray, q: np.ndarray) -> np.ndarray:
    m = (p + q) / 2.0
    return (special.rel_entr(p, m) + special.rel_entr(q, m)) / 2.0


def _psi_term(p: np.ndarray, q: np.ndarray) -> np.ndarray:
    return (p - q) * np.log(p / q)
