"""Seeded simulations of whole experiments, checked every cycle (issue 13's tests).

Each simulated experiment serves ``ROWS`` labelled rows per cycle, split between the
arms by a fair coin per row (so the arms' sizes vary as in production), for ``CYCLES``
cycles; the last cycle is the maximum duration. The decision rule of
:mod:`monitor.ab.analysis` runs at every cycle on the cumulative counts, and the first
cycle that decides ends the experiment, as in the daemon. Vectorised over experiments;
a handful of experiments are replayed through :func:`analyse` itself to show the
vectorised path is the daemon's.
"""

from __future__ import annotations

from datetime import timedelta

import numpy as np
import numpy.typing as npt
import pytest
from scipy import stats

from monitor.ab.analysis import (
    CONTINUE,
    PROMOTE,
    ROLLBACK,
    Action,
    Settings,
    analyse,
    rule,
    sides,
)
from monitor.ab.sequential import Moments, difference_sequence
from monitor.ab.srm import log_bayes_factor, sample_ratio

SIMS = 1000
CYCLES = 30
ROWS = 400  # labelled rows per cycle, both arms together
SPLIT = {"champion": 0.5, "challenger": 0.5}
SETTINGS = Settings(split=SPLIT, metric="accuracy", alpha=0.05, min_sample=500)
IntArray = npt.NDArray[np.int64]


def simulate(
    seed: int, p_champion: float, p_challenger: float, share: float = 0.5, sims: int = SIMS
) -> tuple[Moments, Moments, IntArray, IntArray]:
    """Cumulative moments per (experiment, cycle) of 0/1 correctness, and the arms' sizes."""
    rng = np.random.default_rng(seed)
    n_b = rng.binomial(ROWS, share, (sims, CYCLES))
    n_a = ROWS - n_b
    hits_a = rng.binomial(n_a, p_champion)
    hits_b = rng.binomial(n_b, p_challenger)
    na, nb = n_a.cumsum(axis=1), n_b.cumsum(axis=1)
    sa, sb = hits_a.cumsum(axis=1), hits_b.cumsum(axis=1)
    return Moments.from_sums(na, sa, sa), Moments.from_sums(nb, sb, sb), na, nb


def first_decision(
    champion: Moments, challenger: Moments, settings: Settings
) -> tuple[IntArray, IntArray]:
    """Per experiment: the first decision's code and the cycle it came at."""
    interval = difference_sequence(champion, challenger, settings.alpha, settings.rho2)
    better, worse = sides(interval.lower, interval.upper, higher_is_better=True)
    enough = np.minimum(champion.n, challenger.n) >= settings.min_sample
    expired = np.zeros(enough.shape, dtype=bool)
    expired[:, -1] = True
    codes = rule(better, worse, False, enough, expired)
    cycle = np.argmax(codes != CONTINUE, axis=1)
    return codes[np.arange(codes.shape[0]), cycle], cycle


def test_no_true_difference_promotes_at_most_alpha_of_experiments_checked_every_cycle() -> None:
    champion, challenger, _, _ = simulate(seed=20261205, p_champion=0.8, p_challenger=0.8)
    outcome, _ = first_decision(champion, challenger, SETTINGS)
    promoted = float(np.mean(outcome == PROMOTE))
    decided = float(np.mean(outcome != CONTINUE))
    wrongly_rolled_back = _rolled_back_before_the_end(champion, challenger)
    message = (
        f"{SIMS} experiments without a true difference, looked at {CYCLES} times each: "
        f"promoted {promoted:.1%} (alpha {SETTINGS.alpha}), rolled back as worse before the "
        f"maximum duration {wrongly_rolled_back:.1%}"
    )
    print(message)
    assert SIMS >= 500 and decided == 1.0  # the maximum duration ends every experiment
    assert promoted <= SETTINGS.alpha, message
    # the sequence's promoting side alone errs in at most alpha / 2 (docs/ab-testing.md)
    assert promoted <= SETTINGS.alpha / 2, message
    assert wrongly_rolled_back <= SETTINGS.alpha, message


def _rolled_back_before_the_end(champion: Moments, challenger: Moments) -> float:
    interval = difference_sequence(champion, challenger, SETTINGS.alpha, SETTINGS.rho2)
    _, worse = sides(interval.lower, interval.upper, higher_is_better=True)
    enough = np.minimum(champion.n, challenger.n) >= SETTINGS.min_sample
    return float(np.mean((worse & enough).any(axis=1)))


def test_peeking_at_a_fixed_sample_interval_would_promote_far_more_often() -> None:
    # the same experiments judged by a 95% z interval at every cycle: the problem the
    # confidence sequence solves, and proof that the simulation can see it
    champion, challenger, na, nb = simulate(seed=20261205, p_champion=0.8, p_challenger=0.8)
    diff = np.asarray(challenger.mean) - np.asarray(champion.mean)
    se = np.sqrt(np.asarray(champion.variance) / na + np.asarray(challenger.variance) / nb)
    enough = np.minimum(na, nb) >= SETTINGS.min_sample
    naive = float(np.mean(((diff - 1.96 * se > 0) & enough).any(axis=1)))
    outcome, _ = first_decision(champion, challenger, SETTINGS)
    sequential = float(np.mean(outcome == PROMOTE))
    print(f"peeking every cycle: z interval promotes {naive:.1%}, the sequence {sequential:.1%}")
    assert naive > 2 * SETTINGS.alpha / 2 > sequential


def test_a_real_difference_is_detected_and_promoted() -> None:
    champion, challenger, na, nb = simulate(seed=11, p_champion=0.80, p_challenger=0.83)
    outcome, cycle = first_decision(champion, challenger, SETTINGS)
    detected = float(np.mean(outcome == PROMOTE))
    rows = (na + nb)[np.arange(SIMS), cycle][outcome == PROMOTE]
    message = (
        f"accuracy 0.80 -> 0.83: promoted in {detected:.1%} of {SIMS} experiments, "
        f"median {int(np.median(rows))} labelled rows to the decision"
    )
    print(message)
    assert detected >= 0.8, message
    assert float(np.mean(outcome == ROLLBACK)) < 0.2  # the rest ran out of time, none lost
    # a worse challenger is rolled back, not promoted
    champion, challenger, _, _ = simulate(seed=12, p_champion=0.83, p_challenger=0.80)
    outcome, _ = first_decision(champion, challenger, SETTINGS)
    assert float(np.mean(outcome == ROLLBACK)) >= 0.99
    assert float(np.mean(outcome == PROMOTE)) == 0.0


def test_the_vectorised_rule_is_what_analyse_decides() -> None:
    champion, challenger, na, nb = simulate(seed=5, p_champion=0.80, p_challenger=0.83, sims=12)
    outcome, cycle = first_decision(champion, challenger, SETTINGS)
    for sim in range(12):
        for c in range(CYCLES):
            counts = {"champion": int(na[sim, c]), "challenger": int(nb[sim, c])}
            moments = {
                arm: {
                    "accuracy": Moments(
                        int(m.n[sim, c]), float(m.mean[sim, c]), float(m.m2[sim, c])
                    )
                }
                for arm, m in (("champion", champion), ("challenger", challenger))
            }
            elapsed = timedelta(days=14) if c == CYCLES - 1 else timedelta(hours=c)
            decision = analyse(counts, moments, SETTINGS, elapsed=elapsed)
            if decision.action is not Action.CONTINUE:
                break
        assert c == cycle[sim]
        assert decision.action == (Action.PROMOTE if outcome[sim] == PROMOTE else Action.ROLLBACK)
        if decision.action is Action.PROMOTE:
            assert decision.justification is not None and decision.justification.lower > 0


def test_an_injected_sample_ratio_mismatch_is_caught_and_stops_the_analysis() -> None:
    # the split says 50/50, the serving side sends 47% to the challenger (a broken hash)
    champion, challenger, na, nb = simulate(
        seed=21, p_champion=0.8, p_challenger=0.85, share=0.47, sims=200
    )
    stopped_at = []
    for sim in range(200):
        for c in range(CYCLES):
            counts = {"champion": int(na[sim, c]), "challenger": int(nb[sim, c])}
            srm = sample_ratio(counts, SPLIT)
            if srm.mismatch:
                moments = {
                    "champion": {
                        "accuracy": Moments(
                            int(na[sim, c]),
                            float(champion.mean[sim, c]),
                            float(champion.m2[sim, c]),
                        )
                    },
                    "challenger": {
                        "accuracy": Moments(
                            int(nb[sim, c]),
                            float(challenger.mean[sim, c]),
                            float(challenger.m2[sim, c]),
                        )
                    },
                }
                decision = analyse(counts, moments, SETTINGS, elapsed=timedelta(days=1))
                assert decision.action is Action.STOP
                assert "sample ratio mismatch" in decision.reason
                stopped_at.append(c)
                break
    caught = len(stopped_at) / 200
    print(
        f"47/53 served against a 50/50 split: stopped in {caught:.0%}, median cycle {np.median(stopped_at):.0f}"
    )
    assert caught >= 0.95


def test_a_correct_split_rarely_raises_a_sample_ratio_mismatch_over_all_cycles() -> None:
    _, _, na, nb = simulate(seed=22, p_champion=0.8, p_challenger=0.8)
    total = na + nb
    statistic = (na - total / 2) ** 2 / (total / 2) + (nb - total / 2) ** 2 / (total / 2)
    p = stats.chi2.sf(statistic, df=1)
    # the vectorised statistic is the check's own
    one = sample_ratio({"champion": int(na[0, 3]), "challenger": int(nb[0, 3])}, SPLIT)
    assert one.p_value == pytest.approx(p[0, 3], rel=1e-12)
    false_alarms = float(np.mean((p < 0.001).any(axis=1)))
    print(f"correct split, {CYCLES} looks: a false sample ratio alarm in {false_alarms:.1%}")
    assert false_alarms <= 0.02  # 0.1% per look, about 1% over 30 correlated looks


def test_over_two_weeks_of_hourly_looks_the_sequential_check_keeps_its_level() -> None:
    # 336 looks at 100 new rows each, correct 90/10 split, then a 6% shortfall on the 10%
    rng = np.random.default_rng(23)
    sims, looks, rows, share = 2000, 336, 100, 0.1
    served = np.arange(1, looks + 1) * rows

    def ratios(true_share: float) -> tuple[np.ndarray, np.ndarray]:
        nb = rng.binomial(rows, true_share, (sims, looks)).cumsum(axis=1)
        counts = np.stack([served - nb, nb], axis=-1)
        expected = served[:, None] * np.array([1 - share, share])
        chi2 = ((counts - expected) ** 2 / expected).sum(axis=-1)
        chi_alarm = stats.chi2.sf(chi2, df=1) < 0.001
        seq_alarm = log_bayes_factor(counts, [1 - share, share]) >= np.log(1000)
        return chi_alarm, seq_alarm

    chi_alarm, seq_alarm = ratios(share)
    chi_rate, seq_rate = float(chi_alarm.any(axis=1).mean()), float(seq_alarm.any(axis=1).mean())
    chi_bad, seq_bad = ratios(share * 0.94)
    caught = (float(chi_bad.any(axis=1).mean()), float(seq_bad.any(axis=1).mean()))
    print(
        f"correct 90/10 split, {looks} looks: false alarms chi-square {chi_rate:.2%}, "
        f"sequential {seq_rate:.2%}; 10% -> 9.4%: caught chi-square {caught[0]:.0%}, "
        f"sequential {caught[1]:.0%}"
    )
    assert chi_rate > 0.005  # per-look 0.001 adds up over looks...
    assert seq_rate <= 0.004  # ...the always-valid one stays at its 0.001 (Monte Carlo noise)
    assert caught[1] > 0.2 and caught[0] > caught[1]  # the price: it catches later
