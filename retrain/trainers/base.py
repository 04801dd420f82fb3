"""The trainer interface: what every trainer takes and what it hands back.

A trainer turns a training and a validation frame into a :class:`Candidate`::

    trainer.fit(train, validation, spec) -> Candidate

``train`` and ``validation`` are pandas frames holding the feature columns named in
``spec.features`` and the target column ``spec.target`` (0/1 for a binary task).
The final-test rows are never given to a trainer: the gates score them.

A :class:`Candidate` is framework-neutral: ``predict_scores(frame)`` gives the
positive-class probability of each row whatever trained it, and :func:`save` /
:func:`load` write and read it as a directory (``candidate.json`` plus the native
model file), which the registry logs as the model's artifacts.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal, Protocol

import numpy as np
import pandas as pd

from retrain.errors import RetrainError

logger = logging.getLogger(__name__)

Framework = Literal["keras", "sklearn"]
KINDS = ("numeric", "categorical", "boolean")
MANIFEST = "candidate.json"


@dataclass(frozen=True)
class KerasGridPoint:
    """One hyperparameter setting the Keras trainer tries."""

    units: tuple[int, ...] = (64, 32)
    dropout: float = 0.1
    l2: float = 1e-4
    learning_rate: float = 1e-3


DEFAULT_GRID = (
    KerasGridPoint(units=(64, 32), dropout=0.1, l2=1e-4, learning_rate=3e-3),
    KerasGridPoint(units=(32,), dropout=0.0, l2=1e-4, learning_rate=3e-3),
    KerasGridPoint(units=(64, 32), dropout=0.3, l2=1e-3, learning_rate=3e-3),
)


@dataclass(frozen=True)
class TrainerSpec:
    """How to train the next candidate (the ``retrain.trainer`` config section).

    ``features`` maps each feature column to its kind (numeric, categorical or boolean),
    as the reference profile does. ``framework`` chooses the trainer; ``entry_point``
    (``"package.module:function"``) names the team's own training function when
    ``framework`` is ``custom``.
    """

    features: Mapping[str, str]
    target: str
    framework: Literal["keras", "sklearn", "custom"] = "keras"
    seed: int = 0
    threads: int | None = 1  # OpenMP threads for scikit-learn (None: the library's default)
    # keras
    grid: tuple[KerasGridPoint, ...] = DEFAULT_GRID
    max_epochs: int = 30
    batch_size: int = 512
    patience: int = 3
    class_weight: Literal["balanced", "none"] = "balanced"
    embedding_above: int = 30  # categories: one-hot up to this many, an embedding above
    # scikit-learn: the estimator family; None takes the champion's when known
    estimator: Literal["hist_gradient_boosting", "logistic_regression", "random_forest"] | None = (
        None
    )
    estimator_params: Mapping[str, Any] = field(default_factory=dict)
    # custom
    entry_point: str | None = None
    options: Mapping[str, Any] = field(default_factory=dict)  # passed to the entry point

    def __post_init__(self) -> None:
        bad = {name: kind for name, kind in self.features.items() if kind not in KINDS}
        if bad:
            raise ValueError(f"feature kinds must be one of {KINDS}, got {bad!r}")
        if not self.features:
            raise ValueError("a trainer needs at least one feature")
        if self.target in self.features:
            raise ValueError(f"target {self.target!r} is also listed as a feature")
        if self.framework == "custom" and not self.entry_point:
            raise ValueError("framework 'custom' needs an entry_point 'package.module:function'")
        if self.max_epochs < 1 or self.batch_size < 1 or self.patience < 0:
            raise ValueError(
                f"max_epochs and batch_size must be >= 1 and patience >= 0, got "
                f"{self.max_epochs!r}, {self.batch_size!r}, {self.patience!r}"
            )
        if not self.grid:
            raise ValueError("the Keras grid needs at least one point")

    def columns(self, kind: str) -> list[str]:
        return [name for name, k in self.features.items() if k == kind]


@dataclass(frozen=True)
class Candidate:
    """A fitted model, ready to be gated, saved and registered."""

    framework: Framework
    native: Any  # scikit-learn Pipeline (with predict_proba), or keras.Model
    params: Mapping[str, Any]  # chosen hyperparameters, JSON-able
    history: Mapping[str, Any]  # per-epoch losses, search results, timings (JSON-able)
    # column -> kind of the model's input; empty for a model built elsewhere (then Keras
    # models are fed by their input names and dtypes, scikit-learn ones the frame as is)
    features: Mapping[str, str] = field(default_factory=dict)
    target: str = ""

    def predict_scores(self, frame: pd.DataFrame) -> np.ndarray:
        """Positive-class probability of each row of ``frame`` (float64, shape (n,))."""
        missing = [c for c in self.features if c not in frame.columns]
        if missing:
            raise RetrainError(f"cannot score: frame lacks the feature columns {missing!r}")
        if self.framework == "keras":
            from retrain.trainers import keras as keras_trainer

            features = self.features or keras_trainer.input_kinds(self.native)
            return keras_trainer.predict_scores(self.native, frame, features)
        if not self.features:
            return np.asarray(self.native.predict_proba(frame)[:, 1], dtype=np.float64)
        from threadpoolctl import threadpool_limits

        from retrain.trainers.sklearn import coerce

        with threadpool_limits(limits=1):  # see retrain.trainers.sklearn
            proba = self.native.predict_proba(coerce(frame, self.features))
        return np.asarray(proba[:, 1], dtype=np.float64)


class Trainer(Protocol):
    """What the retrain job calls; keras, sklearn and custom trainers implement it."""

    def fit(
        self, train: pd.DataFrame, validation: pd.DataFrame, spec: TrainerSpec
    ) -> Candidate: ...


def check_frames(train: pd.DataFrame, validation: pd.DataFrame, spec: TrainerSpec) -> None:
    """Refuse frames a trainer cannot learn from, naming what is wrong."""
    for name, frame in (("train", train), ("validation", validation)):
        missing = [c for c in [*spec.features, spec.target] if c not in frame.columns]
        if missing:
            raise RetrainError(f"the {name} frame lacks the columns {missing!r}")
        labels = set(pd.unique(frame[spec.target]))
        if not labels <= {0, 1}:
            raise RetrainError(
                f"the {name} target {spec.target!r} must be 0/1, found {sorted(map(str, labels))}"
            )
    if train[spec.target].nunique() < 2:
        raise RetrainError(f"the train frame has a single class in {spec.target!r}")


def write_manifest(candidate: Candidate, directory: Path, model_file: str) -> None:
    manifest = {
        "framework": candidate.framework,
        "model_file": model_file,
        "params": dict(candidate.params),
        "history": dict(candidate.history),
        "features": dict(candidate.features),
        "target": candidate.target,
    }
    (directory / MANIFEST).write_text(json.dumps(manifest, indent=2, default=str))


def save(candidate: Candidate, directory: str | Path) -> Path:
    """Write ``candidate`` into ``directory`` (created): the manifest and the model."""
    path = Path(directory)
    path.mkdir(parents=True, exist_ok=True)
    if candidate.framework == "keras":
        from retrain.trainers import keras as keras_trainer

        keras_trainer.save(candidate, path)
    else:
        from retrain.trainers import sklearn as sklearn_trainer

        sklearn_trainer.save(candidate, path)
    return path


def load(directory: str | Path) -> Candidate:
    """Read a candidate written by :func:`save`."""
    path = Path(directory)
    try:
        manifest = json.loads((path / MANIFEST).read_text())
    except (OSError, ValueError) as exc:
        raise RetrainError(f"no readable candidate manifest in {str(path)!r}: {exc}") from exc
    framework = manifest.get("framework")
    if framework == "keras":
        from retrain.trainers import keras as keras_trainer

        native = keras_trainer.load_native(path / manifest["model_file"])
    elif framework == "sklearn":
        from retrain.trainers import sklearn as sklearn_trainer

        native = sklearn_trainer.load_native(path / manifest["model_file"])
    else:
        raise RetrainError(f"candidate in {str(path)!r} has unknown framework {framework!r}")
    return Candidate(
        framework=framework,
        native=native,
        params=manifest["params"],
        history=manifest["history"],
        features=manifest["features"],
        target=manifest["target"],
    )


def jsonable_grid(points: Sequence[KerasGridPoint]) -> list[dict[str, Any]]:
    return [
        {"units": list(p.units), "dropout": p.dropout, "l2": p.l2, "learning_rate": p.learning_rate}
        for p in points
    ]
