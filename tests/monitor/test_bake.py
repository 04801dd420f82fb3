"""The bake's readings (pure): windows pooled by their rows, an always-valid interval, and
a breach only when the whole interval is beyond the limit on enough rows; a healthy
champion looked at every cycle is rarely rolled back."""

from __future__ import annotations

import math

import numpy as np
import pytest

from monitor.ab.bake import ESTIMATED, REALIZED, Reading, Watch, limit_for, pool, watch


def proportion(n: int, p: float) -> Reading:
    return Reading(n, p, math.sqrt(p * (1 - p) / n))


def test_windows_pool_as_one_sample_of_their_rows() -> None:
    pooled = pool([proportion(100, 0.7), proportion(300, 0.8)])
    assert pooled is not None
    assert pooled.n == 400
    assert pooled.value == pytest.approx(0.775)
    # per-row variance: the windows' own, weighted by their rows
    expected = (100 * 0.7 * 0.3 + 300 * 0.8 * 0.2) / 400
    assert pooled.sd == pytest.approx(math.sqrt(expected))
    assert pool([]) is None
    assert pool([Reading(0, math.nan, math.nan)]) is None


def test_a_breach_is_an_interval_wholly_beyond_the_limit_on_enough_rows() -> None:
    def w(readings: list[Reading], limit: float, hib: bool = True, min_rows: int = 200) -> Watch:
        return watch(
            "accuracy",
            REALIZED,
            readings,
            higher_is_better=hib,
            limit=limit,
            basis="test",
            alpha=0.05,
            min_rows=min_rows,
        )

    bad = [proportion(600, 0.3)]
    assert w(bad, 0.7).breached
    assert not w(bad, 0.7, min_rows=1000).breached
    assert not w([proportion(600, 0.69)], 0.7).breached
    # lower is better: a false-positive rate above its limit
    fpr = watch(
        "fpr",
        ESTIMATED,
        [proportion(800, 0.2)],
        higher_is_better=False,
        limit=0.1,
        basis="test",
        alpha=0.05,
        min_rows=200,
    )
    assert fpr.breached and "limit: at most 0.1" in fpr.describe()
    empty = w([], 0.7)
    assert not empty.breached and "no reading yet" in empty.describe()
    assert limit_for(True, 0.8, 0.02) == pytest.approx(0.78)
    assert limit_for(False, 0.1, 0.02) == pytest.approx(0.12)


def test_a_healthy_champion_checked_every_cycle_is_rarely_rolled_back() -> None:
    """500 seeded bakes of a champion exactly at its limit's basis (accuracy 0.8, limit
    0.78), 24 hourly windows of 100 rows each, looked at after every window: the
    confidence sequence keeps false rollbacks far below alpha."""
    rng = np.random.default_rng(13)
    rolled_back = 0
    for _ in range(500):
        hits = rng.binomial(100, 0.8, 24)
        readings: list[Reading] = []
        for h in hits:
            p = h / 100
            readings.append(Reading(100, p, math.sqrt(max(p * (1 - p), 1e-9) / 100)))
            look = watch(
                "accuracy",
                REALIZED,
                readings,
                higher_is_better=True,
                limit=0.8,  # not even the tolerated drop: the limit is the truth itself
                basis="test",
                alpha=0.05,
                min_rows=200,
            )
            if look.breached:
                rolled_back += 1
                break
    print(f"healthy champion at its limit, 24 looks: rolled back in {rolled_back / 500:.1%}")
    assert rolled_back / 500 <= 0.025
