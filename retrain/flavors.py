"""Model artifacts: MLflow flavors, their digest, and scoring with a loaded model.

A model is logged with the flavor of its framework: ``mlflow.sklearn`` serialized with
skops (not pickle) or ``mlflow.keras``. :func:`directory_digest` is the SHA-256 the
registry records and checks; :class:`LoadedModel` scores frames like a trainer's
candidate does. mlflow is imported only inside functions, with telemetry disabled.
"""

from __future__ import annotations

import hashlib
import os
from dataclasses import dataclass
from importlib.metadata import PackageNotFoundError
from importlib.metadata import version as package_version
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from retrain.errors import RetrainError


def import_mlflow() -> Any:
    os.environ.setdefault("MLFLOW_DISABLE_TELEMETRY", "true")
    os.environ.setdefault("MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR", "false")
    import mlflow

    return mlflow


def directory_digest(path: Path) -> str:
    """SHA-256 over a model directory: every file's relative path and content, in order."""
    total = hashlib.sha256()
    for file in sorted(p for p in path.rglob("*") if p.is_file()):
        total.update(file.relative_to(path).as_posix().encode() + b"\0")
        total.update(hashlib.sha256(file.read_bytes()).digest())
    return total.hexdigest()


def driftd_version() -> str:
    try:
        return package_version("driftd")
    except PackageNotFoundError:
        return "unknown"


def feature_names(framework: str, native: Any) -> list[str] | None:
    """The input columns a native model declares (None when it does not say)."""
    if framework == "keras":
        return [t.name for t in native.inputs]
    names = getattr(native, "feature_names_in_", None)
    return None if names is None else [str(n) for n in names]


def scores(framework: str, native: Any, frame: pd.DataFrame) -> np.ndarray:
    """The positive-class score per row (a probability matrix for multiclass)."""
    columns = feature_names(framework, native)
    if framework == "keras":
        out = np.asarray(native.predict({c: frame[c].to_numpy() for c in columns or []}, verbose=0))
        return out.ravel() if out.ndim == 2 and out.shape[1] == 1 else out
    proba = np.asarray(native.predict_proba(frame[columns] if columns else frame))
    return proba[:, 1] if proba.ndim == 2 and proba.shape[1] == 2 else proba


@dataclass(frozen=True)
class LoadedModel:
    """A registered version loaded back, its digest checked."""

    framework: str  # sklearn or keras
    native: Any
    version: str
    digest: str

    def predict_scores(self, frame: pd.DataFrame) -> np.ndarray:
        return scores(self.framework, self.native, frame)


def _requirements(*packages: str) -> list[str]:
    """Pinned requirements of the environment (MLflow's inference takes seconds)."""
    out = []
    for name in packages:
        try:
            out.append(f"{name}=={package_version(name)}")
        except PackageNotFoundError:
            continue
    return out


def log_model(mlflow: Any, framework: str, native: Any) -> Any:
    if framework == "sklearn":
        import mlflow.sklearn
        import skops.io

        # the types skops does not trust by default (custom transformers): this model
        # was trained in this process, and the artifact's digest guards it from now on
        trusted = skops.io.get_untrusted_types(data=skops.io.dumps(native))
        return mlflow.sklearn.log_model(
            native,
            name="model",
            serialization_format="skops",
            skops_trusted_types=trusted or None,
            pip_requirements=_requirements("scikit-learn", "skops", "pandas", "numpy"),
        )
    if framework == "keras":
        import mlflow.keras

        return mlflow.keras.log_model(
            native,
            name="model",
            pip_requirements=_requirements("keras", "tensorflow-cpu", "tensorflow"),
        )
    raise RetrainError(f"unknown model framework {framework!r}: expected sklearn or keras")


def load_model(mlflow: Any, framework: str, path: str) -> Any:
    if framework == "keras":
        import mlflow.keras

        return mlflow.keras.load_model(path)
    import mlflow.sklearn

    return mlflow.sklearn.load_model(path)
