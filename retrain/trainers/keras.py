"""The Keras trainer (TensorFlow on CPU): preprocessing inside the model.

The model takes one input per feature column, shape (batch, 1): float32 for numeric and
boolean columns (NaN where missing), string for categorical ones (``"missing"`` where
missing). Inside the model:

- numeric/boolean: :class:`FillMissing` replaces NaN by the training median, takes
  ``log(1 + x)`` of skewed non-negative columns, and adds a missing indicator; a
  ``Normalization`` layer per column, adapted on the training split, scales it (per
  column, not after a concatenation: int8 quantization gives every tensor one scale,
  and one scale for amounts, hours and flags together erased the small ones; the int8
  export then scored a constant);
- categorical: ``StringLookup`` with the training vocabulary (one out-of-vocabulary
  bucket), one-hot up to ``spec.embedding_above`` categories, an ``Embedding`` above;
- dense ReLU layers with L2 and dropout, one sigmoid output.

Training: a fixed grid of hyperparameters (``spec.grid``), each point trained with
early stopping on the validation loss (best weights restored) and class weights for
imbalance (on the validation loss too, so it measures what training minimises); the point with the lowest validation loss wins. Seeded and deterministic:
``keras.utils.set_random_seed`` before every point and TensorFlow op determinism, so two
runs give the same weights (:func:`weights_digest`).

TensorFlow and Keras are imported only here (and in :mod:`retrain.export`).
"""

from __future__ import annotations

import hashlib
import logging
import math
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import keras
import numpy as np
import pandas as pd
import tensorflow as tf
from keras import layers, ops

from retrain.errors import RetrainError
from retrain.trainers.base import (
    Candidate,
    KerasGridPoint,
    TrainerSpec,
    check_frames,
    write_manifest,
)

logger = logging.getLogger(__name__)

MODEL_FILE = "model.keras"
MISSING = "missing"  # the categorical value standing for a missing one
SKEWED = 2.0  # non-negative numeric columns skewed beyond this get log(1 + x)


@keras.saving.register_keras_serializable(package="driftd")
class FillMissing(layers.Layer):  # type: ignore[misc]
    """(batch, 1) floats -> the value with NaN replaced by ``fill`` (then
    ``log(1 + max(x, 0))`` when ``log``), and with ``indicator`` a 0/1 missing flag as a
    second column. NaN is found as ``x != x``, a TFLite builtin."""

    def __init__(
        self, fill: float = 0.0, log: bool = False, indicator: bool = True, **kwargs: Any
    ) -> None:
        super().__init__(**kwargs)
        self.fill = float(fill)
        self.log = bool(log)
        self.indicator = bool(indicator)

    def call(self, x: Any) -> Any:
        missing = ops.not_equal(x, x)
        filled = ops.where(missing, ops.full_like(x, self.fill), x)
        if self.log:
            filled = ops.log(ops.maximum(filled, 0.0) + 1.0)
        if not self.indicator:
            return filled
        return ops.concatenate([filled, ops.cast(missing, x.dtype)], axis=-1)

    def compute_output_shape(self, input_shape: tuple[int | None, ...]) -> tuple[int | None, ...]:
        width = input_shape[-1] or 1
        return (*input_shape[:-1], 2 * width if self.indicator else width)

    def get_config(self) -> dict[str, Any]:
        config = {"fill": self.fill, "log": self.log, "indicator": self.indicator}
        return {**super().get_config(), **config}


def model_inputs(frame: pd.DataFrame, features: Mapping[str, str]) -> dict[str, Any]:
    """The model's inputs from a frame: one (n, 1) tensor per feature column."""
    out: dict[str, Any] = {}
    for name, kind in features.items():
        column = frame[name]
        if kind == "categorical":
            text = column.astype(object).where(column.notna(), MISSING).astype(str)
            out[name] = tf.constant(text.to_numpy(dtype=str).reshape(-1, 1))
        else:
            values = pd.to_numeric(column.astype(object), errors="coerce").astype("float32")
            out[name] = tf.constant(values.to_numpy().reshape(-1, 1))
    return out


def input_kinds(model: Any) -> dict[str, str]:
    """Feature kinds read from a Keras model's inputs: string inputs are categorical,
    the others numeric."""
    return {
        t.name.split(":")[0]: "categorical" if "string" in str(t.dtype) else "numeric"
        for t in model.inputs
    }


def predict_scores(model: Any, frame: pd.DataFrame, features: Mapping[str, str]) -> np.ndarray:
    if len(frame) == 0:
        return np.zeros(0)
    scores = model.predict(model_inputs(frame, features), batch_size=4096, verbose=0)
    return np.asarray(scores, dtype=np.float64).reshape(-1)


def weights_digest(model: Any) -> str:
    """SHA-256 of every weight, in order: equal for two identical trainings."""
    digest = hashlib.sha256()
    for w in model.get_weights():
        digest.update(np.ascontiguousarray(w).tobytes())
    return digest.hexdigest()


def _normalization(name: str, train: np.ndarray) -> Any:
    """A ``Normalization`` adapted on the training values of one column (one layer per
    column: each gets its own int8 scale when quantized). A constant column keeps
    variance 1: Keras would divide by 1e-7, and int8 quantization of that constant
    next to the real 1/std erased the column."""
    norm = layers.Normalization(name=f"normalize_{name}")
    if np.all(train.var(axis=0) > 0):
        norm.adapt(train)
        return norm
    variance = np.where(train.var(axis=0) > 0, train.var(axis=0), 1.0)
    return layers.Normalization(
        name=f"normalize_{name}", mean=train.mean(axis=0), variance=variance
    )


def build_model(train: pd.DataFrame, spec: TrainerSpec, point: KerasGridPoint) -> Any:
    """The network for ``point``, its preprocessing fitted on ``train``."""
    inputs: dict[str, Any] = {}
    encoded = []
    for name in spec.columns("numeric") + spec.columns("boolean"):
        values = pd.to_numeric(train[name].astype(object), errors="coerce").astype("float64")
        fill = float(values.median()) if values.notna().any() else 0.0
        # heavy right tails (amounts, distances) are learnt, and quantized, on a log scale
        log = bool(values.min() >= 0 and values.skew() > SKEWED)
        filled = values.fillna(fill)
        filled = np.log1p(filled.clip(lower=0)) if log else filled
        indicator = bool(values.isna().any())  # a constant flag would only add noise
        columns = [filled.to_numpy(), values.isna().to_numpy()] if indicator else [filled]
        inputs[name] = keras.Input(shape=(1,), name=name, dtype="float32")
        prepared = FillMissing(fill, log, indicator, name=f"fill_{name}")(inputs[name])
        encoded.append(_normalization(name, np.c_[tuple(columns)].astype("float32"))(prepared))
    for name in spec.columns("categorical"):
        column = train[name].astype(object).where(train[name].notna(), MISSING).astype(str)
        vocabulary = sorted(set(column))
        inputs[name] = keras.Input(shape=(1,), name=name, dtype="string")
        if len(vocabulary) <= spec.embedding_above:
            lookup = layers.StringLookup(
                vocabulary=vocabulary, output_mode="one_hot", name=f"lookup_{name}"
            )
            encoded.append(lookup(inputs[name]))
        else:
            lookup = layers.StringLookup(vocabulary=vocabulary, name=f"lookup_{name}")
            dim = min(16, math.ceil(math.sqrt(len(vocabulary) + 1)))
            embedded = layers.Embedding(len(vocabulary) + 1, dim, name=f"embed_{name}")(
                lookup(inputs[name])
            )
            encoded.append(layers.Reshape((dim,))(embedded))
    joined = (
        layers.Concatenate(name="features")
        if len(encoded) > 1
        else layers.Identity(name="features")
    )
    x = joined(encoded) if len(encoded) > 1 else joined(encoded[0])
    for i, units in enumerate(point.units):
        x = layers.Dense(
            units,
            activation="relu",
            kernel_regularizer=keras.regularizers.L2(point.l2),
            name=f"dense_{i}",
        )(x)
        if point.dropout > 0:
            x = layers.Dropout(point.dropout, seed=spec.seed + i)(x)
    output = layers.Dense(1, activation="sigmoid", name="score")(x)
    return keras.Model(inputs, output)


def _dataset(frame: pd.DataFrame, spec: TrainerSpec, weights: Mapping[int, float]) -> Any:
    y = frame[spec.target].to_numpy(dtype="float32").reshape(-1, 1)
    w = np.where(y[:, 0] == 1, weights[1], weights[0]).astype("float32")
    return tf.data.Dataset.from_tensor_slices((model_inputs(frame, spec.features), y, w))


def class_weights(y: np.ndarray, how: str) -> dict[int, float]:
    """Balanced: each class weighs half of the total (n / (2 n_class))."""
    if how == "none":
        return {0: 1.0, 1: 1.0}
    n, positives = len(y), int(np.sum(y == 1))
    return {0: n / (2.0 * (n - positives)), 1: n / (2.0 * positives)}


class KerasTrainer:
    """``fit(train, validation, spec) -> Candidate`` with a small Keras network."""

    def fit(self, train: pd.DataFrame, validation: pd.DataFrame, spec: TrainerSpec) -> Candidate:
        check_frames(train, validation, spec)
        if validation[spec.target].nunique() < 2:
            raise RetrainError("the validation frame needs both classes for early stopping")
        tf.config.experimental.enable_op_determinism()
        weights = class_weights(train[spec.target].to_numpy(), spec.class_weight)
        train_ds = _dataset(train, spec, weights).cache()
        val_ds = _dataset(validation, spec, weights).batch(4096).cache()
        best: tuple[float, Any, KerasGridPoint, dict[str, Any]] | None = None
        search = []
        started = time.perf_counter()
        for point in spec.grid:
            keras.utils.set_random_seed(spec.seed)
            shuffled = train_ds.shuffle(len(train), seed=spec.seed).batch(spec.batch_size)
            try:
                model = build_model(train, spec, point)
                model.compile(
                    optimizer=keras.optimizers.Adam(point.learning_rate),
                    loss="binary_crossentropy",
                )
                stop = keras.callbacks.EarlyStopping(
                    monitor="val_loss", patience=spec.patience, restore_best_weights=True
                )
                fitted = model.fit(
                    shuffled,
                    validation_data=val_ds,
                    epochs=spec.max_epochs,
                    callbacks=[stop],
                    shuffle=False,  # the dataset is shuffled, seeded
                    verbose=0,
                )
            except (tf.errors.OpError, ValueError) as exc:
                raise RetrainError(f"Keras training failed for {point!r}: {exc}") from exc
            losses = {k: [round(float(v), 6) for v in vs] for k, vs in fitted.history.items()}
            val_loss = float(min(losses["val_loss"]))
            search.append({**_point(point), "val_loss": val_loss, "epochs": len(losses["loss"])})
            logger.info("keras point %s: validation loss %.5f", _point(point), val_loss)
            if best is None or val_loss < best[0]:
                best = (val_loss, model, point, losses)
        assert best is not None  # the spec refuses an empty grid
        val_loss, model, point, losses = best
        history = {
            "search": search,
            "epochs": losses,
            "validation_loss": val_loss,
            "class_weight": weights,
            "seconds": round(time.perf_counter() - started, 3),
            "weights_sha256": weights_digest(model),
        }
        return Candidate(
            framework="keras",
            native=model,
            params={**_point(point), "seed": spec.seed, "batch_size": spec.batch_size},
            history=history,
            features=dict(spec.features),
            target=spec.target,
        )


def _point(point: KerasGridPoint) -> dict[str, Any]:
    return {
        "units": list(point.units),
        "dropout": point.dropout,
        "l2": point.l2,
        "learning_rate": point.learning_rate,
    }


def save(candidate: Candidate, directory: Path) -> None:
    candidate.native.save(directory / MODEL_FILE)
    write_manifest(candidate, directory, MODEL_FILE)


def load_native(path: Path) -> Any:
    try:
        return keras.models.load_model(path)
    except (OSError, ValueError) as exc:
        raise RetrainError(f"cannot load the Keras model {str(path)!r}: {exc}") from exc
