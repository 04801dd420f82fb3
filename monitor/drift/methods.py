"""Per-column drift methods with Evidently 0.7's names, scores, thresholds and decisions.

Each :class:`Method` wraps a pure function ``fn(reference, current, *, column_type) ->
float`` giving the score of the Evidently stattest of the same name
(``evidently/legacy/calculations/stattests/``) to 1e-9 on the same data, from numpy
arrays (any 1-D array-like) or :class:`~monitor.drift.samples.ReferenceColumn` s, which
are sorted and counted once and then reused across windows.

Scores are p-values (drift when the score is below the threshold) or distances (drift when
it is above). Evidently is not consistent about equality, and :meth:`Method.drifted` keeps
its choice per method (``inclusive``): ``ks`` and ``cramer_von_mises`` flag ``p <=
threshold``, the other p-value tests ``p < threshold``; ``ed`` flags ``d > threshold``, the
other distances ``d >= threshold``.

Missing values: like Evidently's data-drift calculation, None, NaN and +-inf are dropped
from both samples first. Where Evidently then raises on an empty column, these functions
raise ``ValueError`` for an empty reference (a broken profile) but return NaN for an empty
current window (a window without values for a column is a data-quality finding, not a
crash), and a NaN score never counts as drift. Degenerate data that Evidently's stattest
itself rejects raises ``ValueError`` here too (Anderson-Darling on a single distinct value,
Epps-Singleton with zero IQR, Fisher on non-binary or unequal-size samples, the G-test on
unequal sizes).

Booleans: Evidently types a ``bool`` column as categorical, and so does this module: the
``"boolean"`` column type is accepted wherever ``"categorical"`` is and computed the same
way. (Evidently also types integer columns with at most 5 distinct values as categorical;
choosing the column type is the caller's business.)
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Literal

from monitor.drift import binned, ranked
from monitor.drift.samples import COLUMN_TYPES, ReferenceColumn, align, prepare

MethodFn = Callable[..., float]
SMALL_REFERENCE = 1000  # Evidently: at most this many reference values is "small"

_NUM = frozenset({"numeric"})
_CAT = frozenset({"categorical", "boolean"})
_ANY = _NUM | _CAT


@dataclass(frozen=True)
class Method:
    """A drift method: Evidently's name, kind, default threshold and column types.

    ``column_types`` are the types a user may configure the method for (Evidently's
    ``allowed_feature_types``, with ``"boolean"`` wherever ``"categorical"`` is).
    :func:`auto_method` may still pick ``chisquare`` or ``z`` for a numeric column with
    few values, as Evidently does.
    """

    name: str
    display_name: str
    kind: Literal["p_value", "distance"]
    default_threshold: float
    column_types: frozenset[str]
    fn: MethodFn
    inclusive: bool  # a score equal to the threshold counts as drift

    def drifted(self, score: float, threshold: float | None = None) -> bool:
        """Whether ``score`` means drift at ``threshold`` (default: the method's); never
        for a NaN score."""
        limit = self.default_threshold if threshold is None else threshold
        if math.isnan(score):
            return False
        if self.kind == "p_value":
            return score <= limit if self.inclusive else score < limit
        return score >= limit if self.inclusive else score > limit

    def accepts(self, column_type: str) -> bool:
        return str(column_type) in self.column_types


_P: Literal["p_value"] = "p_value"
_D: Literal["distance"] = "distance"

METHODS: dict[str, Method] = {
    row[0]: Method(*row)
    for row in (
        # name, display name, kind, default threshold, column types, function, inclusive
        ("ks", "K-S p_value", _P, 0.05, _NUM, ranked.ks, True),
        ("wasserstein", "Wasserstein distance (normed)", _D, 0.1, _NUM, ranked.wasserstein, True),
        ("psi", "PSI", _D, 0.1, _ANY, binned.psi, True),
        ("jensenshannon", "Jensen-Shannon distance", _D, 0.1, _ANY, binned.jensenshannon, True),
        ("hellinger", "Hellinger distance", _D, 0.1, _ANY, binned.hellinger, True),
        ("kl_div", "Kullback-Leibler divergence", _D, 0.1, _ANY, binned.kl_div, True),
        ("TVD", "Total-Variation-Distance", _P, 0.1, _CAT, binned.total_variation, False),
        ("chisquare", "chi-square p_value", _P, 0.05, _CAT, binned.chisquare, False),
        ("z", "Z-test p_value", _P, 0.05, _CAT, binned.z_test, False),
        ("anderson", "Anderson-Darling", _P, 0.1, _NUM, ranked.anderson, False),
        ("cramer_von_mises", "Cramer-von Mises", _P, 0.1, _NUM, ranked.cramer_von_mises, True),
        ("mannw", "Mann-Whitney U-rank test", _P, 0.05, _NUM, ranked.mann_whitney, False),
        ("ed", "Energy-distance", _D, 0.1, _NUM, ranked.energy, False),
        ("t_test", "t_test", _P, 0.05, _NUM, ranked.t_test, False),
        ("fisher_exact", "Fisher's Exact test", _P, 0.1, _CAT, binned.fisher_exact, False),
        ("g_test", "g_test", _P, 0.1, _CAT, binned.g_test, False),
        ("es", "Epps-Singleton", _P, 0.05, _NUM, ranked.epps_singleton, False),
    )
}


def auto_method(reference: Any, current: Any, column_type: str) -> str:
    """The method Evidently picks when none is configured (``_get_default_stattest``).

    By reference size (after dropping missing values) and the number of distinct values
    in both samples together: a reference of at most 1000 values gets ``ks`` (numeric, more
    than 5 distinct values), else ``chisquare`` (more than 2) or ``z``; a larger reference
    gets ``wasserstein`` (numeric, more than 5 distinct values), else ``jensenshannon``.
    Boolean columns are categorical.
    """
    column_type = str(column_type)
    if column_type not in COLUMN_TYPES:
        raise ValueError(
            f"unknown column type {column_type!r}, expected one of {sorted(COLUMN_TYPES)}"
        )
    ref = prepare(reference)
    numeric = column_type == "numeric"
    if ref.n > SMALL_REFERENCE:
        if not numeric:
            return "jensenshannon"
        return "jensenshannon" if _distinct(ref, current) <= 5 else "wasserstein"
    n_values = _distinct(ref, current)
    if numeric and n_values > 5:
        return "ks"
    return "chisquare" if n_values > 2 else "z"


def _distinct(ref: ReferenceColumn, current: Any) -> int:
    """Distinct values of both samples together, or any number above 5 when larger."""
    if ref.unique.size > 5:  # the current window need not even be looked at
        return 6
    cur = prepare(current)
    if cur.unique.size > 5:
        return 6
    return int(align(ref, cur)[0].size)


def score(
    name: str, reference: Any, current: Any, column_type: str, threshold: float | None = None
) -> tuple[float, bool]:
    """Run method ``name``: its score and whether that means drift at ``threshold``."""
    method = METHODS[name]
    value = method.fn(reference, current, column_type=str(column_type))
    return value, method.drifted(value, threshold)
