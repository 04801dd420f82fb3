"""Per-method time of driftd's drift methods against Evidently 0.7's stattest functions.

    python bench/methods.py [--rows 1000000] [--cap 100000] [--tvd-rows 10000] [--repeat 3]

One column per method, reference and current of ``--rows`` values each, generated from a
seed: numeric (normal vs. a shifted, wider normal, 1% NaN), categorical (ten country codes
as Python strings, 1% None, one code absent from the reference) and boolean. For each
method it prints driftd's time on raw arrays (NaN removal, sorting and counting of both
samples included), driftd's time with the reference prepared once (a ``ReferenceColumn``,
the daemon's case; its one-off preparation time is printed apart), Evidently's time on the
same data with missing values already dropped (as its data-drift calculation hands them to
the stattest; that dropna is not timed), the ratio Evidently / driftd-prepared and the
absolute difference of the scores.

Evidently's Anderson-Darling and energy distance run at ``--cap`` rows (driftd's ratio is
then taken at the same size); TVD, a 1000-permutation test that Evidently runs through
Python lists, at ``--tvd-rows`` rows for both. Timings are the best of ``--repeat`` runs,
for both tools alike (TVD: one run each).
"""

from __future__ import annotations

import argparse
import time
import warnings
from collections.abc import Callable
from typing import Any

import numpy as np
import pandas as pd

from monitor.drift.methods import METHODS
from monitor.drift.samples import ReferenceColumn

with warnings.catch_warnings():
    warnings.simplefilter("ignore")
    from evidently.legacy.calculations import stattests as ev
    from evidently.legacy.core import ColumnType

EVIDENTLY = {
    "ks": ev.ks_stat_test,
    "wasserstein": ev.wasserstein_stat_test,
    "psi": ev.psi_stat_test,
    "jensenshannon": ev.jensenshannon_stat_test,
    "hellinger": ev.hellinger_stat_test,
    "kl_div": ev.kl_div_stat_test,
    "TVD": ev.tvd_test,
    "chisquare": ev.chi_stat_test,
    "z": ev.z_stat_test,
    "anderson": ev.anderson_darling_test,
    "cramer_von_mises": ev.cramer_von_mises,
    "mannw": ev.mann_whitney_u_stat_test,
    "ed": ev.energy_dist_test,
    "t_test": ev.t_test,
    "fisher_exact": ev.fisher_exact_test,
    "g_test": ev.g_test,
    "es": ev.epps_singleton_test,
}
CAPPED = {"anderson", "ed"}
COUNTRIES = np.array(["DE", "FR", "US", "GB", "NL", "ES", "IT", "PL", "SE", "BR"], dtype=object)
# (method, column type) rows of the table; g_test and fisher_exact need samples of equal
# size (after dropping missing values), so they run on the boolean column
NUMERIC = "wasserstein ks psi jensenshannon kl_div hellinger anderson cramer_von_mises mannw ed"
CATEGORICAL = "jensenshannon psi kl_div hellinger chisquare z TVD"
BOOLEAN = "jensenshannon z g_test fisher_exact"
ROWS = [
    (name, kind)
    for kind, names in [
        ("numeric", NUMERIC + " t_test es"),
        ("categorical", CATEGORICAL),
        ("boolean", BOOLEAN),
    ]
    for name in names.split()
]


def make_data(rows: int, seed: int = 0) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    g = np.random.default_rng(seed)
    ref_num, cur_num = g.normal(0, 1, rows), g.normal(0.05, 1.05, rows)
    ref_num[g.random(rows) < 0.01] = np.nan
    cur_num[g.random(rows) < 0.01] = np.nan
    p = np.linspace(1, 2, COUNTRIES.size)
    ref_cat = g.choice(COUNTRIES[:-1], rows, p=p[:-1] / p[:-1].sum())
    cur_cat = g.choice(COUNTRIES, rows, p=p / p.sum())
    ref_cat[g.random(rows) < 0.01] = None
    cur_cat[g.random(rows) < 0.01] = None
    return {
        "numeric": (ref_num, cur_num),
        "categorical": (ref_cat, cur_cat),
        "boolean": (g.random(rows) < 0.3, g.random(rows) < 0.31),
    }


def best_of(repeat: int, fn: Callable[..., Any], *args: Any, **kwargs: Any) -> tuple[float, Any]:
    best, out = float("inf"), None
    for _ in range(repeat):
        start = time.perf_counter()
        out = fn(*args, **kwargs)
        best = min(best, time.perf_counter() - start)
    return best, out


def evidently(
    name: str, ref: np.ndarray, cur: np.ndarray, kind: str, repeat: int
) -> tuple[float, float]:
    """Evidently's stattest, the best of ``repeat`` runs (as many as driftd gets)."""
    column_type = ColumnType.Numerical if kind == "numeric" else ColumnType.Categorical
    ref_s, cur_s = (pd.Series(x).replace([np.inf, -np.inf], np.nan).dropna() for x in (ref, cur))
    threshold = METHODS[name].default_threshold
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        seconds, out = best_of(repeat, EVIDENTLY[name].func, ref_s, cur_s, column_type, threshold)
        return seconds, float(out[0])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--cap", type=int, default=100_000)
    parser.add_argument("--tvd-rows", type=int, default=10_000)
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    warnings.simplefilter("ignore")  # scipy's p-value-cap and rank warnings

    data = make_data(args.rows)
    prepared: dict[tuple[str, int], ReferenceColumn] = {}
    print(f"{args.rows:,} vs {args.rows:,} rows; times in ms (best of {args.repeat})")
    for kind, (ref, _) in data.items():
        seconds, prepared[kind, args.rows] = best_of(
            1, lambda r=ref: ReferenceColumn.from_values(r)
        )
        print(f"  prepare {kind} reference once: {seconds * 1000:.0f} ms")
    header = f"{'method':17} {'column':11} {'rows':>9} {'raw':>8} {'prepared':>9} {'evidently':>10} {'ratio':>7} {'|diff|':>8}"
    print(header)
    print("-" * len(header))
    for name, kind in ROWS:
        method = METHODS[name]
        ref, cur = data[kind]
        rows = args.rows
        if name in CAPPED:
            t_full, _ = best_of(args.repeat, method.fn, prepared[kind, rows], cur, column_type=kind)
            print(f"{name:17} {kind:11} {rows:>9,} {'':>8} {t_full * 1000:>9.1f}")
            rows = args.cap
        if name == "TVD":
            rows = args.tvd_rows
        if rows != args.rows:
            ref, cur = ref[:rows], cur[:rows]
            prepared.setdefault((kind, rows), ReferenceColumn.from_values(ref))
        repeat = 1 if name == "TVD" else args.repeat
        t_raw, ours = best_of(repeat, method.fn, ref, cur, column_type=kind)
        t_prep = t_raw
        if name != "TVD":  # TVD's parity needs the rows in their original order
            t_prep, _ = best_of(repeat, method.fn, prepared[kind, rows], cur, column_type=kind)
        t_ev, theirs = evidently(name, ref, cur, kind, repeat)
        print(
            f"{name:17} {kind:11} {rows:>9,} {t_raw * 1000:>8.1f} {t_prep * 1000:>9.1f}"
            f" {t_ev * 1000:>10.1f} {t_ev / t_prep:>6.1f}x {abs(ours - theirs):>8.1e}"
        )


if __name__ == "__main__":
    main()
