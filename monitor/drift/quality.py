"""Data-quality checks of a window against the reference profile (pure).

Each check has a value, a threshold, a severity and whether it failed. Column checks:
missing share above the reference's, values of the wrong type, numeric values outside
the reference range, categories never seen in the reference, a column that became
constant. Window checks: row volume against the expected volume, the share of records
that repeated an id already stored, and the share of records quarantined at ingestion.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache
from typing import Any

from scipy.stats import beta, betabinom, binom

from monitor.drift.compare import finite_dict
from monitor.drift.profile import ColumnProfile, ReferenceProfile
from monitor.drift.state import ColumnState, WindowState


@dataclass(frozen=True)
class QualityThresholds:
    missing_increase: float = 0.05  # absolute rise of the missing share over the reference
    type_errors: float = 0.0  # share of values of the wrong type
    out_of_range: float = 0.01  # share of numeric values outside [ref min, ref max]
    new_categories: float = 0.01  # share of values in categories unseen in the reference
    volume_ratio: float = 0.5  # rows below ratio*expected or above expected/ratio
    quarantine_rate: float = 0.01
    duplicate_ids: float = 0.01  # share of the window's records whose id was already stored


@dataclass(frozen=True)
class Check:
    check: str
    column: str | None
    value: float
    threshold: float
    failed: bool
    severity: str  # "warning" or "critical"
    detail: str = ""

    def to_dict(self) -> dict[str, Any]:
        return finite_dict(self)


def _share(part: int, whole: int) -> float:
    return part / whole if whole else 0.0


@lru_cache(maxsize=4096)  # the quantile search costs ~5 ms; a backfill repeats (reference, n)
def chance_outside(reference: int, n: int, rate: float = 0.01) -> float:
    """The share of ``n`` values outside the range of ``reference`` values that a window
    drawn like the reference exceeds with probability at most ``rate``.

    The probability mass outside the range of ``reference`` exchangeable values is
    Beta(2, reference - 1) distributed (mean 2 / (reference + 1)), so the count of a
    window's values beyond it is beta-binomial. A small reference is exceeded often (269
    values: 0.74% of values on average, several percent for an unlucky narrow one), and a
    fixed share alone would alarm on stationary data.
    """
    if n <= 0 or reference <= 1:
        return 0.0
    return float(betabinom.ppf(1 - rate, n, 2, reference - 1)) / n


@lru_cache(maxsize=4096)  # ~0.35 ms a call (two scipy quantiles), per column and window
def chance_outside_above(reference: int, n: int, rate: float = 0.01) -> float:
    """An upper bound of :func:`chance_outside`, from closed forms (the beta-binomial
    quantile searches its CDF term by term: seconds for a window of a million values).

    With ``p`` the mass outside and ``t`` its ``1 - rate/2`` quantile (Beta), and ``k``
    the ``1 - rate/2`` quantile of Binomial(n, t): P(count > k) <= P(p > t) + P(Bin(n, t)
    > k) <= rate, so the ``1 - rate`` quantile of the count is at most ``k``."""
    if n <= 0 or reference <= 1:
        return 0.0
    t = float(beta.isf(rate / 2, 2, reference - 1))
    return float(binom.isf(rate / 2, n, t)) / n


def out_of_range_limit(reference: int, n: int, floor: float, rate: float = 0.01) -> float:
    """``max(floor, chance_outside(...))``, exactly, with the quantile's search skipped
    when the closed-form bound already lies at or below ``floor``."""
    if chance_outside_above(reference, n, rate) <= floor:
        return floor
    return max(floor, chance_outside(reference, n, rate))


def column_checks(profile: ColumnProfile, state: ColumnState, t: QualityThresholds) -> list[Check]:
    name = profile.name
    total = state.n + state.missing + state.type_errors
    checks = []
    ref_missing = _share(profile.missing, profile.n + profile.missing)
    missing = _share(state.missing, total)
    checks.append(
        Check(
            "missing_share",
            name,
            missing,
            ref_missing + t.missing_increase,
            total > 0 and missing > ref_missing + t.missing_increase,
            "warning",
            f"reference {ref_missing:.2%}",
        )
    )
    errors = _share(state.type_errors, total)
    checks.append(
        Check("type_errors", name, errors, t.type_errors, errors > t.type_errors, "critical")
    )
    if profile.numeric and state.slots.size:
        outside = _share(int(state.slots[0] + state.slots[-1]), state.n)
        limit = out_of_range_limit(profile.n, state.n, t.out_of_range)
        checks.append(
            Check(
                "out_of_range",
                name,
                outside,
                limit,
                outside > limit,
                "warning",
                f"reference range [{profile.minimum:g}, {profile.maximum:g}]",
            )
        )
        constant = (
            state.n > 1 and state.minimum == state.maximum and profile.minimum != profile.maximum
        )
        checks.append(
            Check(
                "constant",
                name,
                float(constant),
                0.0,
                constant,
                "critical",
                f"every value is {state.minimum!r}" if constant else "",
            )
        )
    elif not profile.numeric:
        unseen = _share(state.unseen_total, state.n)
        top = sorted(state.unseen.items(), key=lambda kv: (-kv[1], kv[0]))[:5]
        checks.append(
            Check(
                "new_categories",
                name,
                unseen,
                t.new_categories,
                unseen > t.new_categories,
                "warning",
                ", ".join(f"{k!r} x{v}" for k, v in top),
            )
        )
        seen = int((state.categories > 0).sum()) + len(state.unseen) + (state.unseen_other > 0)
        constant = state.n > 1 and seen == 1 and profile.n_unique > 1
        checks.append(Check("constant", name, float(constant), 0.0, constant, "critical"))
    return checks


def window_checks(
    profile: ReferenceProfile,
    state: WindowState,
    *,
    expected_rows: float | None = None,
    quarantined: int | None = None,  # None: not known per window (no check)
    duplicates: int = 0,
    thresholds: QualityThresholds | None = None,
) -> list[Check]:
    """Every data-quality check of one window."""
    t = thresholds or QualityThresholds()
    checks: list[Check] = []
    for name, column in profile.columns.items():
        if name in state.columns:
            checks.extend(column_checks(column, state.columns[name], t))
    if expected_rows:
        ratio = state.rows / expected_rows
        checks.append(
            Check(
                "row_volume",
                None,
                ratio,
                t.volume_ratio,
                ratio < t.volume_ratio or ratio > 1 / t.volume_ratio,
                "warning",
                f"{state.rows} rows, {expected_rows:.0f} expected",
            )
        )
    repeated = _share(duplicates, state.rows + duplicates)
    checks.append(
        Check(
            "duplicate_ids",
            None,
            repeated,
            t.duplicate_ids,
            repeated > t.duplicate_ids,
            "warning",
            f"{duplicates} records repeated an id already stored",
        )
    )
    if quarantined is None:
        return checks
    rate = _share(quarantined, state.rows + quarantined)
    checks.append(
        Check(
            "quarantine_rate",
            None,
            rate,
            t.quarantine_rate,
            rate > t.quarantine_rate,
            "warning",
            f"{quarantined} records quarantined",
        )
    )
    return checks
