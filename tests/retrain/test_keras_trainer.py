"""The Keras trainer: real TensorFlow on a few thousand demo rows."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import numpy as np
import pytest
from sklearn.metrics import roc_auc_score

from driftd.demo.data import TARGET
from retrain.trainers import load, save, trainer_for
from retrain.trainers.base import Candidate, KerasGridPoint

keras_trainer = pytest.importorskip("retrain.trainers.keras")


def test_training_is_deterministic_for_a_seed(demo_splits, small_keras_spec) -> None:  # type: ignore[no-untyped-def]
    train, validation, test = demo_splits
    first = trainer_for(small_keras_spec).fit(train, validation, small_keras_spec)
    second = trainer_for(small_keras_spec).fit(train, validation, small_keras_spec)
    digest = keras_trainer.weights_digest(first.native)
    assert digest == keras_trainer.weights_digest(second.native)
    assert first.history["weights_sha256"] == digest
    np.testing.assert_array_equal(first.predict_scores(test), second.predict_scores(test))
    other_seed = dataclasses.replace(small_keras_spec, seed=8)
    third = trainer_for(other_seed).fit(train, validation, other_seed)
    assert keras_trainer.weights_digest(third.native) != digest  # the seed matters
    assert roc_auc_score(test[TARGET], first.predict_scores(test)) > 0.8


def test_preprocessing_lives_in_the_model_and_survives_save_and_load(  # type: ignore[no-untyped-def]
    demo_splits, small_keras_spec, tmp_path: Path
) -> None:
    train, validation, test = demo_splits
    candidate = trainer_for(small_keras_spec).fit(train, validation, small_keras_spec)
    names = {layer.name for layer in candidate.native.layers}
    assert {"normalize_amount", "lookup_country", "fill_customer_age"} <= names
    odd = test.head(4).astype(object)
    odd.loc[odd.index[0], "customer_age"] = None  # missing
    odd.loc[odd.index[1], "country"] = "BR"  # never seen in training
    odd.loc[odd.index[2], "merchant_category"] = None
    scores = candidate.predict_scores(odd)
    assert np.isfinite(scores).all() and ((scores > 0) & (scores < 1)).all()

    bare = Candidate("keras", candidate.native, {}, {})  # a model registered without its spec
    np.testing.assert_allclose(bare.predict_scores(odd), scores, atol=1e-6)

    loaded = load(save(candidate, tmp_path / "candidate"))
    assert loaded.framework == "keras" and loaded.params == candidate.params
    np.testing.assert_allclose(
        loaded.predict_scores(test), candidate.predict_scores(test), atol=1e-6
    )
    np.testing.assert_allclose(loaded.predict_scores(odd), scores, atol=1e-6)


def test_high_cardinality_categories_get_an_embedding(demo_splits, small_keras_spec) -> None:  # type: ignore[no-untyped-def]
    train, validation, test = demo_splits
    spec = dataclasses.replace(small_keras_spec, embedding_above=5, max_epochs=2)
    candidate = trainer_for(spec).fit(train, validation, spec)
    names = {layer.name for layer in candidate.native.layers}
    assert {"embed_country", "embed_merchant_category"} <= names  # 7 and 6 categories
    assert np.isfinite(candidate.predict_scores(test)).all()


@pytest.mark.slow
def test_the_grid_search_picks_the_lowest_validation_loss(demo_splits, small_keras_spec) -> None:  # type: ignore[no-untyped-def]
    train, validation, _ = demo_splits
    spec = dataclasses.replace(
        small_keras_spec,
        grid=(
            KerasGridPoint(units=(16,), dropout=0.0, l2=1e-4, learning_rate=3e-3),
            KerasGridPoint(units=(32, 16), dropout=0.2, l2=1e-3, learning_rate=1e-3),
        ),
        class_weight="none",
    )
    candidate = trainer_for(spec).fit(train, validation, spec)
    search = candidate.history["search"]
    assert len(search) == 2
    best = min(search, key=lambda point: point["val_loss"])
    assert candidate.params["units"] == best["units"]
    assert candidate.history["validation_loss"] == best["val_loss"]
    assert candidate.history["class_weight"] == {0: 1.0, 1: 1.0}
