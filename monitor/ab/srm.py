"""Sample ratio mismatch: does the traffic each variant served match the configured
split? (pure)

The serving side assigns variants; when its split breaks (a bug in the hash, a variant
that crashes and logs nothing, a bot filtered on one arm only) the arms stop being
comparable populations and every comparison after that point is invalid. So the
analysis checks the ratio *first*: a chi-square goodness-of-fit test of the served
counts against the configured shares, and a p-value below ``threshold`` (0.001 by
default, the industry's usual bar: Fabijan et al., "Diagnosing sample ratio mismatch in
online controlled experiments", KDD 2019) stops the analysis.

Traffic logged under a variant the split does not name (or under no variant) also
stops it: the assignment itself is not what was configured.

The test runs once the smallest expected count reaches ``min_expected`` (5: the usual
validity condition of the chi-square approximation); before that it reports
``checked=False`` and does not stop anything.

Looked at every cycle, the chi-square test's 0.001 is per look: over many looks of the
same growing counts its false alarms add up (measured in the tests: about 1% over 30
looks and 2.5% over 336, hourly for two weeks). :func:`sequential_sample_ratio` is the
always-valid alternative (``srm_method: sequential``): the Dirichlet-multinomial Bayes
factor of Lindon and Malek, "Anytime-valid inference for multinomial count data"
(NeurIPS 2022), whose ``1 / BF`` is a p-value valid at every look at once (Ville's
inequality), at the price of catching a broken split later.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from scipy import stats
from scipy.special import gammaln

SRM_THRESHOLD = 0.001
MIN_EXPECTED = 5.0
CONCENTRATION = 100.0  # the sequential test's Dirichlet prior: concentration x split
CHI_SQUARE, SEQUENTIAL = "chi-square", "sequential"


@dataclass(frozen=True)
class SRMResult:
    counts: Mapping[str, int]  # served rows per configured variant
    expected: Mapping[str, float]  # what the split predicts for the same total
    statistic: float  # chi-square (NaN when not checked)
    p_value: float  # NaN when not checked
    threshold: float
    checked: bool  # False while the counts are too small for the test
    unexpected: Mapping[str, int] = field(default_factory=dict)  # variants outside the split
    method: str = CHI_SQUARE  # or SEQUENTIAL: statistic is then the log Bayes factor

    @property
    def mismatch(self) -> bool:
        """True when the analysis must stop: the split is broken."""
        return bool(self.unexpected) or (self.checked and self.p_value < self.threshold)

    @property
    def reason(self) -> str:
        if self.unexpected:
            names = ", ".join(f"{k!r}: {v}" for k, v in sorted(self.unexpected.items()))
            return f"traffic under variants the split does not name ({names})"
        if not self.checked:
            return f"too few rows for the sample ratio check (need {MIN_EXPECTED:g} expected per variant)"
        observed = ", ".join(
            f"{k} {self.counts[k]} (expected {self.expected[k]:.0f})" for k in self.counts
        )
        verdict = "mismatch" if self.mismatch else "ok"
        test = "chi-square" if self.method == CHI_SQUARE else "log Bayes factor"
        return (
            f"sample ratio {verdict}: {observed}; {test} {self.statistic:.2f}, "
            f"p={self.p_value:.2g} (stops below {self.threshold:g})"
        )

    def to_dict(self) -> dict[str, Any]:
        return {
            "counts": dict(self.counts),
            "expected": dict(self.expected),
            "statistic": None if math.isnan(self.statistic) else self.statistic,
            "p_value": None if math.isnan(self.p_value) else self.p_value,
            "threshold": self.threshold,
            "checked": self.checked,
            "unexpected": dict(self.unexpected),
            "mismatch": self.mismatch,
            "method": self.method,
            "reason": self.reason,
        }


def check_split(split: Mapping[str, float]) -> dict[str, float]:
    """The split as a dict of shares, validated: at least two variants, each share in
    (0, 1), summing to 1."""
    shares = {str(k): float(v) for k, v in split.items()}
    if len(shares) < 2:
        raise ValueError(f"a split needs at least two variants, got {sorted(shares)}")
    bad = {k: v for k, v in shares.items() if not 0 < v < 1}
    if bad:
        raise ValueError(f"split shares must be in (0, 1), got {bad}")
    total = sum(shares.values())
    if not math.isclose(total, 1.0, abs_tol=1e-6):
        raise ValueError(f"split shares must sum to 1, got {total!r} for {shares}")
    return shares


def sample_ratio(
    counts: Mapping[str | None, int],
    split: Mapping[str, float],
    *,
    threshold: float = SRM_THRESHOLD,
    min_expected: float = MIN_EXPECTED,
) -> SRMResult:
    """Check served ``counts`` per variant (``None``: rows logged without a variant)
    against the configured ``split`` ({variant: share})."""
    if not 0 < threshold < 1:
        raise ValueError(f"SRM threshold must be in (0, 1), got {threshold!r}")
    shares = check_split(split)
    unexpected = {str(k): int(v) for k, v in counts.items() if k not in shares and v > 0}
    observed = {k: int(counts.get(k, 0)) for k in shares}
    total = sum(observed.values())
    expected = {k: total * share for k, share in shares.items()}
    if min(expected.values()) < min_expected:
        nan = math.nan
        return SRMResult(observed, expected, nan, nan, threshold, False, unexpected)
    chi2, p = stats.chisquare(list(observed.values()), list(expected.values()))
    return SRMResult(observed, expected, float(chi2), float(p), threshold, True, unexpected)


def log_bayes_factor(counts: Any, shares: Any, concentration: float = CONCENTRATION) -> Any:
    """Lindon and Malek's Dirichlet-multinomial log Bayes factor of counts (last axis:
    variants) against the split ``shares``; vectorised over leading axes."""
    x = np.asarray(counts, dtype=np.float64)
    theta = np.asarray(shares, dtype=np.float64)
    a = concentration * theta
    n = x.sum(axis=-1)
    return (
        gammaln(a.sum())
        - gammaln(a.sum() + n)
        + (gammaln(a + x) - gammaln(a)).sum(axis=-1)
        - (x * np.log(theta)).sum(axis=-1)
    )[()]


def sequential_sample_ratio(
    counts: Mapping[str | None, int],
    split: Mapping[str, float],
    *,
    threshold: float = SRM_THRESHOLD,
    concentration: float = CONCENTRATION,
) -> SRMResult:
    """The always-valid check: mismatch when the Bayes factor reaches ``1/threshold``."""
    if not 0 < threshold < 1:
        raise ValueError(f"SRM threshold must be in (0, 1), got {threshold!r}")
    if not concentration > 0:
        raise ValueError(f"SRM concentration must be positive, got {concentration!r}")
    shares = check_split(split)
    unexpected = {str(k): int(v) for k, v in counts.items() if k not in shares and v > 0}
    observed = {k: int(counts.get(k, 0)) for k in shares}
    total = sum(observed.values())
    expected = {k: total * share for k, share in shares.items()}
    log_bf = float(log_bayes_factor(list(observed.values()), list(shares.values()), concentration))
    p = min(1.0, math.exp(-log_bf))
    return SRMResult(observed, expected, log_bf, p, threshold, total > 0, unexpected, SEQUENTIAL)


__all__ = [
    "CHI_SQUARE",
    "MIN_EXPECTED",
    "SEQUENTIAL",
    "SRMResult",
    "SRM_THRESHOLD",
    "check_split",
    "log_bayes_factor",
    "sample_ratio",
    "sequential_sample_ratio",
]
