"""Exports of a Keras candidate: SavedModel, and TensorFlow Lite in float16 and int8.

Each export is checked against the Keras model on held-out rows: the share of
decisions (score >= the serving threshold) that agree, the ROC AUC delta, the largest
score difference, and its size on disk next to the ``.keras`` file's.

What works offline here (TensorFlow 2.21, Keras 3.15):

- the whole model converts, preprocessing included, with TFLite *builtin* ops only:
  ``StringLookup`` becomes TFLite's hash-table ops, ``Normalization`` and the missing
  indicator (``x != x``) are plain arithmetic. No ``SELECT_TF_OPS`` (Flex) is needed,
  so a stock TFLite runtime runs it; the inputs are the Keras inputs (one (n, 1) tensor
  per feature: float32, or string for categorical columns, ``"missing"`` for None);
- int8 post-training quantization of the *whole* model converts but is useless: it
  scored a near-constant (ROC AUC 0.53-0.71, 70% of decisions agreeing). The quantizer
  gives each tensor one int8 scale, and the preprocessing tensors (raw inputs, the NaN
  test, the normalization constants) do not survive that. So the int8 export splits
  the model at its ``features`` layer: ``preprocess.tflite`` (the lookups, missing
  values and normalization, float32, builtin ops) feeds ``model_int8.tflite`` (the
  dense network, weights and activations int8, calibrated on reference rows passed
  through the preprocessing; float32 in and out). Its size is both files together;
  the parity check runs the two in a chain;
- ``tf.lite.Interpreter`` warns that it moves to ``ai_edge_litert``; that package is
  not installed here, the TensorFlow one still works and is used with one thread.
"""

from __future__ import annotations

import logging
import math
import shutil
import warnings
from collections.abc import Iterator
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Literal

import numpy as np
import pandas as pd
import tensorflow as tf

from monitor import paired
from retrain.errors import RetrainError
from retrain.trainers.base import Candidate
from retrain.trainers.keras import model_inputs

logger = logging.getLogger(__name__)

Format = Literal["saved_model", "tflite_float16", "tflite_int8"]
FORMATS: tuple[Format, ...] = ("saved_model", "tflite_float16", "tflite_int8")


@dataclass(frozen=True)
class ExportSpec:
    threshold: float = 0.5  # the serving threshold
    min_agreement: float = 0.99  # share of held-out decisions equal to the Keras model's
    max_metric_delta: float = 0.01  # |ROC AUC of the export - ROC AUC of Keras|
    representative_rows: int = 500  # reference rows that calibrate int8
    seed: int = 0
    formats: tuple[Format, ...] = FORMATS


@dataclass(frozen=True)
class ExportResult:
    format: Format
    path: str
    size_bytes: int
    keras_size_bytes: int
    rows: int  # held-out rows compared
    agreement: float  # share of equal decisions at the serving threshold
    keras_roc_auc: float
    export_roc_auc: float
    roc_auc_delta: float  # export minus Keras
    max_score_diff: float
    passed: bool
    reason: str

    @property
    def size_ratio(self) -> float:
        return self.size_bytes / self.keras_size_bytes

    def to_dict(self) -> dict[str, Any]:
        out = asdict(self)
        out["size_ratio"] = self.size_ratio
        return {k: (None if isinstance(v, float) and math.isnan(v) else v) for k, v in out.items()}


def _size(path: Path) -> int:
    if path.is_file():
        return path.stat().st_size
    return sum(f.stat().st_size for f in path.rglob("*") if f.is_file())


def _numpy_inputs(frame: pd.DataFrame, candidate: Candidate) -> dict[str, np.ndarray]:
    return {name: t.numpy() for name, t in model_inputs(frame, candidate.features).items()}


def _convert(saved_model: Path, fmt: Format | None, representative: Any) -> bytes:
    """TFLite bytes of a SavedModel: float16 weights, int8 calibrated on
    ``representative``, or float32 (``fmt`` None)."""
    converter = tf.lite.TFLiteConverter.from_saved_model(str(saved_model))
    if fmt is not None:
        converter.optimizations = [tf.lite.Optimize.DEFAULT]
    if fmt == "tflite_float16":
        converter.target_spec.supported_types = [tf.float16]
    elif fmt == "tflite_int8":
        converter.representative_dataset = representative
    try:
        return bytes(converter.convert())
    except Exception as exc:  # the converter raises ConverterError, RuntimeError, ...
        raise RetrainError(
            f"TensorFlow Lite {fmt} conversion of {str(saved_model)!r} failed: {exc}"
        ) from exc


def tflite_scores(
    model: bytes | Path, inputs: dict[str, np.ndarray], *, flatten: bool = True
) -> np.ndarray:
    """Run rows through a TFLite model's serving signature (its single output)."""
    content = model.read_bytes() if isinstance(model, Path) else model
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)  # "moves to ai_edge_litert"
        interpreter = tf.lite.Interpreter(model_content=content, num_threads=1)
    runner = interpreter.get_signature_runner()
    out = np.asarray(next(iter(runner(**inputs).values())), dtype=np.float64)
    return out.reshape(-1) if flatten else out


def saved_model_scores(path: Path, inputs: dict[str, np.ndarray]) -> np.ndarray:
    loaded = tf.saved_model.load(str(path))
    tensors = {name: tf.constant(values) for name, values in inputs.items()}
    return np.asarray(loaded.serve(tensors), dtype=np.float64).reshape(-1)


def _auc(y: np.ndarray, scores: np.ndarray) -> float:
    return float(paired.weighted_roc_auc(y == 1, scores)(np.ones((1, y.size)))[0])


def _compare(
    fmt: Format,
    path: Path,
    keras_size: int,
    y: np.ndarray,
    reference_scores: np.ndarray,
    scores: np.ndarray,
    spec: ExportSpec,
) -> ExportResult:
    agreement = float(np.mean((scores >= spec.threshold) == (reference_scores >= spec.threshold)))
    keras_auc, export_auc = _auc(y, reference_scores), _auc(y, scores)
    delta = export_auc - keras_auc
    passed = agreement >= spec.min_agreement and abs(delta) <= spec.max_metric_delta
    size = _size(path)
    reason = (
        f"{fmt}: {size / 1024:.1f} KiB ({size / keras_size:.0%} of the .keras file), "
        f"{agreement:.2%} of {y.size} decisions agree (minimum {spec.min_agreement:.0%}), "
        f"ROC AUC {export_auc:.4f} vs {keras_auc:.4f} (delta {delta:+.4f}, limit "
        f"{spec.max_metric_delta:g})"
    )
    return ExportResult(
        format=fmt,
        path=str(path),
        size_bytes=size,
        keras_size_bytes=keras_size,
        rows=int(y.size),
        agreement=agreement,
        keras_roc_auc=keras_auc,
        export_roc_auc=export_auc,
        roc_auc_delta=delta,
        max_score_diff=float(np.max(np.abs(scores - reference_scores))) if y.size else 0.0,
        passed=passed,
        reason=reason,
    )


def export_keras(
    candidate: Candidate,
    directory: str | Path,
    *,
    reference: pd.DataFrame,
    holdout: pd.DataFrame,
    spec: ExportSpec = ExportSpec(),
) -> tuple[ExportResult, ...]:
    """Write ``spec.formats`` of a Keras candidate into ``directory`` and check each on
    ``holdout`` (labelled rows the model never trained on) against the Keras model."""
    if candidate.framework != "keras":
        raise RetrainError(f"only Keras candidates export to TFLite, got {candidate.framework!r}")
    out = Path(directory)
    out.mkdir(parents=True, exist_ok=True)
    keras_file = out / "model.keras"
    candidate.native.save(keras_file)
    keras_size = _size(keras_file)
    saved_model = out / "saved_model"
    try:
        candidate.native.export(str(saved_model), verbose=False)
    except (ValueError, tf.errors.OpError) as exc:
        raise RetrainError(f"SavedModel export to {str(saved_model)!r} failed: {exc}") from exc
    inputs = _numpy_inputs(holdout, candidate)
    y = holdout[candidate.target].to_numpy(dtype=np.int64)
    keras_scores = candidate.predict_scores(holdout)
    results = []
    for fmt in spec.formats:
        if fmt == "saved_model":
            path, scores = saved_model, saved_model_scores(saved_model, inputs)
        elif fmt == "tflite_int8":
            path = out / "int8"
            scores = _export_int8(candidate, path, reference, inputs, spec)
        else:
            content = _convert(saved_model, fmt, None)
            path = out / "model_float16.tflite"
            path.write_bytes(content)
            scores = tflite_scores(content, inputs)
        result = _compare(fmt, path, keras_size, y, keras_scores, scores, spec)
        logger.info("export %s", result.reason)
        results.append(result)
    return tuple(results)


def split_at_features(model: Any) -> tuple[Any, Any]:
    """(preprocessing, network) halves of a model built by the Keras trainer: the
    first maps the inputs to the ``features`` layer's vector, the second that vector
    to the score (the dense layers after it, in order)."""
    import keras

    try:
        features = model.get_layer("features")
    except ValueError as exc:
        raise RetrainError(
            "int8 export needs a model with a 'features' layer (the Keras trainer's)"
        ) from exc
    preprocess = keras.Model(model.inputs, features.output, name="preprocess")
    vector = keras.Input(shape=features.output.shape[1:], name="features")
    x = vector
    after = model.layers[model.layers.index(features) + 1 :]
    for layer in after:
        x = layer(x)
    return preprocess, keras.Model(vector, x, name="network")


def _export_int8(
    candidate: Candidate,
    directory: Path,
    reference: pd.DataFrame,
    inputs: dict[str, np.ndarray],
    spec: ExportSpec,
) -> np.ndarray:
    """Write preprocess.tflite (float) and model_int8.tflite (int8); the scores of
    ``inputs`` through the two in a chain."""
    preprocess, network = split_at_features(candidate.native)
    directory.mkdir(parents=True, exist_ok=True)
    calibration = reference.sample(
        n=min(spec.representative_rows, len(reference)), random_state=spec.seed
    )
    vectors = np.asarray(
        preprocess.predict(model_inputs(calibration, candidate.features), verbose=0), np.float32
    )

    def representative() -> Iterator[list[np.ndarray]]:
        for i in range(len(vectors)):
            yield [vectors[i : i + 1]]

    parts = {}
    for name, model in (("preprocess", preprocess), ("network", network)):
        saved = directory / f"{name}_saved_model"
        model.export(str(saved), verbose=False)
        if name == "network":
            parts[name] = _convert(saved, "tflite_int8", representative)
        else:  # float32: lookups and normalization constants stay exact
            parts[name] = _convert(saved, None, None)
        shutil.rmtree(saved)
    (directory / "preprocess.tflite").write_bytes(parts["preprocess"])
    (directory / "model_int8.tflite").write_bytes(parts["network"])
    encoded = tflite_scores(parts["preprocess"], inputs, flatten=False)
    return tflite_scores(parts["network"], {"features": encoded.astype(np.float32)})
