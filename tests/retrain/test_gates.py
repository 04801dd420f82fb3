"""Gates on final-test rows: a worse candidate never passes, a better one does."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from retrain.gates import ChangeThreshold, GateSpec, evaluate


def scored_rows(seed: int, n: int = 6000):  # type: ignore[no-untyped-def]
    """Labels, a champion's scores and a candidate's that sees the signal noisier."""
    rng = np.random.default_rng(seed)
    signal = rng.normal(size=n)
    y = (rng.random(n) < 1 / (1 + np.exp(-(2.2 * signal - 2.0)))).astype(int)
    champion = 1 / (1 + np.exp(-(2.2 * signal - 2.0 + rng.normal(0, 0.4, n))))
    worse = 1 / (1 + np.exp(-(2.2 * signal - 2.0 + rng.normal(0, 1.0, n))))
    country = rng.choice(["DE", "FR", "GB"], size=n)
    return y, champion, worse, pd.DataFrame({"country": country})


SPEC = GateSpec(primary_metric="roc_auc", threshold=0.5, cost_fn=10.0, cost_fp=1.0, resamples=300)


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_a_candidate_worse_than_the_champion_never_passes(seed: int) -> None:
    y, champion, worse, frame = scored_rows(seed)
    report = evaluate(y, worse, SPEC, baseline_rate=y.mean(), champion_scores=champion, frame=frame)
    gates = {r.name: r for r in report.results}
    assert not report.passed
    auc = gates["champion:roc_auc"]
    assert not auc.passed
    assert -0.05 < auc.delta < -0.003  # worse by a small but real margin
    assert auc.p_value > 0.9  # the paired bootstrap is sure it is not better
    assert gates["baseline:roc_auc"].passed  # it still beats the trivial model
    assert "champion" in report.reason()


def test_the_champion_against_a_worse_model_passes_every_gate() -> None:
    y, champion, worse, frame = scored_rows(0)
    spec = GateSpec(
        primary_metric="roc_auc",
        cost_fn=10.0,
        resamples=300,
        champion=ChangeThreshold(0.0, alpha=0.05),
        slices=("country",),
        primary_min=0.8,
    )
    report = evaluate(y, champion, spec, baseline_rate=y.mean(), champion_scores=worse, frame=frame)
    assert report.passed, report.reason()
    names = {r.name for r in report.results}
    assert {"slice:country=DE:roc_auc", "value:roc_auc", "champion:cost"} <= names
    stored = report.to_dict()
    assert stored["passed"] is True and len(stored["gates"]) == len(report.results)


def test_significance_blocks_a_candidate_that_only_ties() -> None:
    y, champion, _, _ = scored_rows(3)
    spec = GateSpec(resamples=200, champion=ChangeThreshold(-1e-10, alpha=0.05))
    report = evaluate(y, champion, spec, baseline_rate=y.mean(), champion_scores=champion)
    auc = next(r for r in report.results if r.name == "champion:roc_auc")
    assert auc.delta == 0.0  # no regression, but no evidence of improvement either
    assert not auc.passed and "not below alpha" in auc.reason
    lenient = evaluate(
        y, champion, GateSpec(resamples=200), baseline_rate=y.mean(), champion_scores=champion
    )
    assert next(r for r in lenient.results if r.name == "champion:roc_auc").passed


def test_mcnemar_judges_accuracy_and_slices_catch_a_local_regression() -> None:
    y, champion, _, frame = scored_rows(4)
    candidate = champion.copy()
    de = (frame["country"] == "DE").to_numpy()
    candidate[de] = 1 - candidate[de]  # broken on one country only
    spec = GateSpec(primary_metric="accuracy", slices=("country",), slice_min_rows=100)
    report = evaluate(
        y, candidate, spec, baseline_rate=y.mean(), champion_scores=champion, frame=frame
    )
    gates = {r.name: r for r in report.results}
    assert gates["champion:accuracy"].test == "mcnemar"
    assert not gates["champion:accuracy"].passed
    assert not gates["slice:country=DE:accuracy"].passed
    assert gates["slice:country=FR:accuracy"].passed


def test_the_trivial_baseline_is_beaten_only_by_a_model_with_signal() -> None:
    rng = np.random.default_rng(5)
    y = (rng.random(3000) < 0.1).astype(int)
    noise = rng.random(3000)
    report = evaluate(y, noise, GateSpec(resamples=200), baseline_rate=0.1)
    gates = {r.name: r for r in report.results}
    assert not gates["baseline:cost"].passed  # alarms on noise cost more than silence
    assert report.passed is False


def test_value_thresholds_apply_to_the_candidate_alone() -> None:
    y, champion, _, _ = scored_rows(6)
    report = evaluate(
        y, champion, GateSpec(primary_min=0.99, cost_max=0.0, resamples=100), baseline_rate=0.1
    )
    gates = {r.name: r for r in report.results}
    assert not gates["value:roc_auc"].passed and "below 0.99" in gates["value:roc_auc"].reason
    assert not gates["value:cost"].passed
