"""Read a model that is already in production, so the loop can start from it.

:func:`read_model` accepts a scikit-learn model saved with skops (``.skops``) or pickle
(``.pkl``, ``.pickle``, ``.joblib``), a Keras ``.keras`` file, or an MLflow model URI
(``models:/...``, ``runs:/...``, or any URI MLflow downloads), and returns its framework
and the fitted native object. Pickle and the types a skops file declares are trusted:
the user names a file they serve already; from then on the registry's digest guards it.
"""

from __future__ import annotations

import logging
import tempfile
from pathlib import Path
from typing import Any

import yaml

from retrain.errors import RetrainError

logger = logging.getLogger(__name__)

PICKLES = (".pkl", ".pickle", ".joblib")


def read_model(
    source: str, *, tracking_uri: str | None = None, scratch: str | None = None
) -> tuple[str, Any]:
    """``(framework, native)`` of the model at ``source`` (a path, or an MLflow URI
    resolved against ``tracking_uri``)."""
    path = Path(source)
    uri = "://" in source or source.startswith(("models:", "runs:"))
    if uri and not path.exists():
        return _from_mlflow(source, tracking_uri, scratch)
    if not path.is_file():
        raise RetrainError(f"no model file at {source!r}")
    suffix = path.suffix.lower()
    try:
        if suffix == ".keras":
            import keras

            return _checked("keras", keras.saving.load_model(path), source)
        if suffix == ".skops":
            import skops.io

            trusted = skops.io.get_untrusted_types(file=path)
            if trusted:
                logger.info("trusting the types %s declared by %s", trusted, source)
            return _checked("sklearn", skops.io.load(path, trusted=trusted), source)
        if suffix in PICKLES:
            import joblib

            return _checked("sklearn", joblib.load(path), source)
    except RetrainError:
        raise
    except Exception as exc:  # noqa: BLE001 - each format fails its own way: translate
        raise RetrainError(f"cannot read the model in {source!r}: {exc}") from exc
    raise RetrainError(
        f"model file {source!r}: unknown format {suffix!r}; expected .skops, "
        f"{', '.join(PICKLES)}, .keras or an MLflow model URI"
    )


def _checked(framework: str, native: Any, source: str) -> tuple[str, Any]:
    if framework == "sklearn" and not hasattr(native, "predict_proba"):
        raise RetrainError(
            f"the model in {source!r} ({type(native).__name__}) has no predict_proba:"
            " driftd scores with the positive-class probability"
        )
    return framework, native


def _from_mlflow(uri: str, tracking_uri: str | None, scratch: str | None) -> tuple[str, Any]:
    from retrain.flavors import import_mlflow

    mlflow = import_mlflow()
    try:
        with tempfile.TemporaryDirectory(dir=scratch) as tmp:
            local = Path(
                mlflow.artifacts.download_artifacts(uri, dst_path=tmp, tracking_uri=tracking_uri)
            )
            flavors = yaml.safe_load((local / "MLmodel").read_text())["flavors"]
            if "keras" in flavors:
                import mlflow.keras

                return _checked("keras", mlflow.keras.load_model(str(local)), uri)
            if "sklearn" in flavors:
                import mlflow.sklearn

                return _checked("sklearn", mlflow.sklearn.load_model(str(local)), uri)
    except RetrainError:
        raise
    except Exception as exc:  # noqa: BLE001 - MLflow raises many kinds: translate
        raise RetrainError(f"cannot read the MLflow model {uri!r}: {exc}") from exc
    raise RetrainError(
        f"MLflow model {uri!r} has flavors {sorted(flavors)}; driftd imports sklearn or keras"
    )
