"""The scikit-learn trainer, the custom entry point, and a worse candidate meeting the gates."""

from __future__ import annotations

import sys
import textwrap
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from sklearn.compose import ColumnTransformer
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import roc_auc_score
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import FunctionTransformer
from threadpoolctl import threadpool_limits

from driftd.demo.data import FEATURES, TARGET, make_reference, train_baseline
from retrain.errors import RetrainError
from retrain.gates import GateSpec, evaluate
from retrain.trainers import load, save, trainer_for
from retrain.trainers.base import TrainerSpec
from retrain.trainers.sklearn import SklearnTrainer, champion_family

SPEC = TrainerSpec(features=FEATURES, target=TARGET, framework="sklearn", seed=1)


def test_the_pipeline_learns_and_survives_save_and_load(demo_splits, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    train, validation, test = demo_splits
    candidate = trainer_for(SPEC).fit(train, validation, SPEC)
    assert candidate.framework == "sklearn" and isinstance(candidate.native, Pipeline)
    assert candidate.params["family"] == "hist_gradient_boosting"  # no champion known
    assert 1 <= candidate.history["best_iteration"] <= 300  # chosen on validation
    scores = candidate.predict_scores(test)
    assert scores.shape == (len(test),) and ((scores >= 0) & (scores <= 1)).all()
    assert roc_auc_score(test[TARGET], scores) > 0.85

    loaded = load(save(candidate, tmp_path / "candidate"))
    assert loaded.framework == "sklearn" and loaded.params == candidate.params
    np.testing.assert_array_equal(loaded.predict_scores(test), scores)


def test_missing_values_and_new_categories_are_scored(demo_splits) -> None:  # type: ignore[no-untyped-def]
    train, validation, test = demo_splits
    candidate = SklearnTrainer().fit(train, validation, SPEC)
    odd = test.head(5).astype(object)
    odd.loc[odd.index[0], "amount"] = None
    odd.loc[odd.index[1], "country"] = "BR"
    odd.loc[odd.index[2], "card_present"] = None
    assert np.isfinite(candidate.predict_scores(odd)).all()


def test_the_champions_family_is_kept_by_default(demo_splits) -> None:  # type: ignore[no-untyped-def]
    train, validation, _ = demo_splits
    champion = Pipeline([("classifier", LogisticRegression())])
    assert champion_family(champion) == "logistic_regression"
    candidate = SklearnTrainer(champion=champion).fit(train, validation, SPEC)
    assert candidate.params["family"] == "logistic_regression"
    assert candidate.native.named_steps["classifier"].__class__ is LogisticRegression


def test_loading_refuses_types_outside_scikit_learn(tmp_path: Path) -> None:
    import skops.io

    from retrain.trainers.sklearn import load_native

    rogue = Pipeline([("f", ColumnTransformer([("x", FunctionTransformer(np.log1p), ["a"])]))])
    rogue.steps.append(("pd", FunctionTransformer(pd.DataFrame)))
    skops.io.dump(rogue, tmp_path / "model.skops")
    with pytest.raises(RetrainError, match="untrusted types"):
        load_native(tmp_path / "model.skops")


def test_a_candidate_worse_than_the_champion_by_a_small_margin_fails_the_gates() -> None:
    reference = make_reference(8000, seed=0)
    with threadpool_limits(limits=1):  # spinning OpenMP threads crawl on a shared machine
        champion = train_baseline(reference, seed=0)
    # the candidate never sees n_tx_24h nor the hour: a small but real loss of signal
    fewer = {k: v for k, v in FEATURES.items() if k not in ("n_tx_24h", "hour")}
    spec = TrainerSpec(features=fewer, target=TARGET, framework="sklearn", seed=0)
    candidate = SklearnTrainer(champion=champion).fit(
        reference.iloc[:6000], reference.iloc[6000:], spec
    )
    final_test = make_reference(8000, seed=21)
    y = final_test[TARGET].to_numpy()
    with threadpool_limits(limits=1):
        champion_scores = champion.predict_proba(final_test[list(FEATURES)])[:, 1]
    report = evaluate(
        y,
        candidate.predict_scores(final_test),
        GateSpec(cost_fn=20.0, cost_fp=1.0, resamples=300),
        baseline_rate=float(reference[TARGET].mean()),
        champion_scores=champion_scores,
    )
    gates = {r.name: r for r in report.results}
    assert gates["baseline:roc_auc"].passed  # a sound model ...
    assert not gates["champion:roc_auc"].passed  # ... that is still worse
    assert -0.05 < gates["champion:roc_auc"].delta < -0.002
    assert not report.passed


def test_a_custom_entry_point_trains_the_candidate(
    demo_splits, tmp_path: Path, monkeypatch
) -> None:  # type: ignore[no-untyped-def]
    (tmp_path / "team_training.py").write_text(
        textwrap.dedent(
            """
            from sklearn.linear_model import LogisticRegression
            from sklearn.pipeline import make_pipeline
            from sklearn.preprocessing import StandardScaler

            def train(train, validation, spec):
                columns = spec.options["columns"]
                model = make_pipeline(StandardScaler(), LogisticRegression())
                return model.fit(train[columns].astype(float), train[spec.target])

            def broken(train, validation, spec):
                raise KeyError("no such column")
            """
        )
    )
    monkeypatch.syspath_prepend(str(tmp_path))
    numeric = {"amount": "numeric", "distance_km": "numeric", "account_age_days": "numeric"}
    spec = TrainerSpec(
        features=numeric,
        target=TARGET,
        framework="custom",
        entry_point="team_training:train",
        options={"columns": list(numeric)},
    )
    train, validation, test = demo_splits
    candidate = trainer_for(spec).fit(train, validation, spec)
    assert candidate.framework == "sklearn"
    assert candidate.params["entry_point"] == "team_training:train"
    assert roc_auc_score(test[TARGET], candidate.predict_scores(test)) > 0.7

    broken = TrainerSpec(
        features=numeric, target=TARGET, framework="custom", entry_point="team_training:broken"
    )
    with pytest.raises(RetrainError, match="team_training:broken.*no such column"):
        trainer_for(broken).fit(train, validation, broken)
    missing = TrainerSpec(
        features=numeric, target=TARGET, framework="custom", entry_point="team_training:nope"
    )
    with pytest.raises(RetrainError, match="has no 'nope'"):
        trainer_for(missing).fit(train, validation, missing)
    sys.modules.pop("team_training", None)


def test_frames_without_both_classes_are_refused(demo_splits) -> None:  # type: ignore[no-untyped-def]
    train, validation, _ = demo_splits
    with pytest.raises(RetrainError, match="single class"):
        SklearnTrainer().fit(train[train[TARGET] == 0], validation, SPEC)
