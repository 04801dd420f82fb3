"""Exports of a Keras candidate: SavedModel and TFLite (float16, int8) with parity checks."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from retrain.trainers import trainer_for

export = pytest.importorskip("retrain.export")


@pytest.mark.slow
def test_int8_tflite_is_small_and_agrees_with_the_keras_model(  # type: ignore[no-untyped-def]
    demo_splits, small_keras_spec, tmp_path: Path
) -> None:
    train, validation, holdout = demo_splits
    candidate = trainer_for(small_keras_spec).fit(train, validation, small_keras_spec)
    results = {
        r.format: r
        for r in export.export_keras(candidate, tmp_path, reference=train, holdout=holdout)
    }
    assert set(results) == {"saved_model", "tflite_float16", "tflite_int8"}
    int8 = results["tflite_int8"]
    assert int8.rows == len(holdout)
    assert int8.size_bytes <= int8.keras_size_bytes / 3, int8.reason
    assert int8.agreement >= 0.99, int8.reason
    assert abs(int8.roc_auc_delta) <= 0.01 and int8.passed
    assert {p.name for p in Path(int8.path).iterdir()} == {"preprocess.tflite", "model_int8.tflite"}
    assert int8.size_bytes == sum(p.stat().st_size for p in Path(int8.path).iterdir())

    saved = results["saved_model"]
    assert saved.agreement == 1.0 and saved.max_score_diff < 1e-5
    float16 = results["tflite_float16"]
    assert float16.agreement >= 0.99 and float16.size_bytes < float16.keras_size_bytes
    assert all(r.to_dict()["passed"] for r in results.values())

    # the exported files score new rows the way the Keras model does
    rows = holdout.head(50)
    inputs = {k: v.numpy() for k, v in export.model_inputs(rows, candidate.features).items()}
    np.testing.assert_allclose(
        export.tflite_scores(Path(float16.path), inputs),
        candidate.predict_scores(rows),
        atol=1e-2,
    )


def test_only_keras_candidates_export(demo_splits, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    from driftd.demo.data import FEATURES, TARGET
    from retrain.errors import RetrainError
    from retrain.trainers.base import TrainerSpec

    spec = TrainerSpec(features=FEATURES, target=TARGET, framework="sklearn")
    train, validation, holdout = demo_splits
    candidate = trainer_for(spec).fit(train, validation, spec)
    with pytest.raises(RetrainError, match="only Keras candidates"):
        export.export_keras(candidate, tmp_path, reference=train, holdout=holdout)
