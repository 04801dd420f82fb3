"""The shadow verdict on seeded champion/challenger scores of the same rows (the paired
tests themselves are tested in tests/monitor/test_paired.py)."""

from __future__ import annotations

import json
from datetime import timedelta

import numpy as np
import pytest

from monitor.ab.metrics import Costs
from monitor.shadow import ShadowSettings, Verdict, shadow_verdict

DAY = timedelta(days=1)


def rows(n: int, seed: int, champion_noise: float = 1.2, challenger_noise: float = 0.8):
    """Labels and two models' scores: the same signal, each model with its own noise."""
    rng = np.random.default_rng(seed)
    y = rng.binomial(1, 0.3, n)
    signal = np.where(y == 1, 1.0, -1.0)

    def model(noise: float) -> np.ndarray:
        return 1 / (1 + np.exp(-(signal + rng.normal(0, noise, n)) * 1.5))

    return [int(v) for v in y], model(champion_noise), model(challenger_noise)


def test_a_better_challenger_is_better_on_every_metric() -> None:
    labels, champion, challenger = rows(2000, seed=3)
    for metric in ("accuracy", "roc_auc", "cost"):
        settings = ShadowSettings(metric=metric, min_sample=1500, resamples=300)
        result = shadow_verdict(labels, champion, challenger, settings, elapsed=DAY)
        assert result.verdict is Verdict.BETTER, result.reason
        assert result.final and result.n == 1500 and result.available == 2000
        c = result.comparisons[0]
        assert c.delta > 0 and c.p_better < 0.025
        if metric == "accuracy":
            assert c.test == "mcnemar" and c.details["challenger_only"] > c.details["champion_only"]
        else:
            assert c.test == "paired_bootstrap" and 0 < c.low < c.delta < c.high
    swapped = shadow_verdict(
        labels, challenger, champion, ShadowSettings(min_sample=1500), elapsed=DAY
    )
    assert swapped.verdict is Verdict.WORSE and "challenger worse on accuracy" in swapped.reason


def test_the_same_model_twice_gives_no_evidence() -> None:
    labels, champion, _ = rows(1200, seed=4)
    settings = ShadowSettings(
        metric="roc_auc", guards=("accuracy",), min_sample=1000, resamples=200
    )
    result = shadow_verdict(labels, champion, champion.copy(), settings, elapsed=DAY)
    assert result.verdict is Verdict.NO_EVIDENCE and result.final
    assert result.comparisons[1].p_better == 1.0  # no discordant row
    json.dumps(result.to_dict())


def test_a_guard_metric_that_gets_worse_makes_the_verdict_worse() -> None:
    # better ranking (ROC AUC), but scores shifted down: at the serving threshold the
    # challenger misses positives, and a missed positive costs 20
    labels, champion, challenger = rows(2000, seed=5)
    shifted = np.clip(challenger - 0.35, 0, 1)
    settings = ShadowSettings(
        metric="roc_auc",
        guards=("cost",),
        min_sample=2000,
        costs=Costs(false_negative=20, false_positive=1),
        resamples=300,
    )
    result = shadow_verdict(labels, champion, shifted, settings, elapsed=DAY)
    assert result.comparisons[0].verdict is Verdict.BETTER
    assert result.verdict is Verdict.WORSE and "worse on cost" in result.reason


def test_the_verdict_waits_for_the_minimum_sample_and_never_changes_after() -> None:
    labels, champion, challenger = rows(3000, seed=6)
    pending = [None] * 3000
    pending[:800] = labels[:800]  # 800 labels matured so far
    settings = ShadowSettings(min_sample=1000)
    early = shadow_verdict(pending, champion, challenger, settings, elapsed=DAY)
    assert early.verdict is Verdict.NO_EVIDENCE and not early.final
    assert early.reason == "800 labelled rows, the verdict is taken on 1000"
    at = shadow_verdict(labels[:1000], champion[:1000], challenger[:1000], settings, elapsed=DAY)
    # later rows where the challenger is terrible do not change a verdict already taken
    later_challenger = challenger.copy()
    later_challenger[1000:] = 1 - later_challenger[1000:]
    later = shadow_verdict(labels, champion, later_challenger, settings, elapsed=DAY * 5)
    assert later.final and later.available == 3000
    assert later.to_dict() | {"available": 1000} == at.to_dict()


def test_the_maximum_duration_decides_on_the_rows_there_are() -> None:
    labels, champion, challenger = rows(600, seed=7)
    settings = ShadowSettings(min_sample=5000, max_duration=timedelta(days=7))
    result = shadow_verdict(labels, champion, challenger, settings, elapsed=timedelta(days=7))
    assert result.final and result.n == 600
    assert "maximum duration reached with 600 of 5000 rows" in result.reason
    none = shadow_verdict(
        [None] * 10, champion[:10], challenger[:10], settings, elapsed=timedelta(days=8)
    )
    assert none.final and none.verdict is Verdict.NO_EVIDENCE and none.n == 0


def test_bad_input_is_refused_naming_it() -> None:
    with pytest.raises(ValueError, match="unknown shadow metric 'f1'"):
        ShadowSettings(metric="f1")
    with pytest.raises(ValueError, match="3 labels, 2 and 3 scores"):
        shadow_verdict([0, 1, 0], [0.1, 0.2], [0.1, 0.2, 0.3], ShadowSettings(), elapsed=DAY)
