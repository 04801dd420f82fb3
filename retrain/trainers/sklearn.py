"""The scikit-learn trainer: a Pipeline of a ColumnTransformer and one estimator.

Numeric and boolean columns are imputed (median, with a missing indicator); categorical
columns are imputed with a constant and one-hot encoded (unknown categories ignored).
The estimator family is the spec's, else the champion's when the champion is a
scikit-learn pipeline, else histogram gradient boosting. For gradient boosting the
validation frame chooses the number of iterations (the staged validation log loss).

Candidates are saved with skops (no pickle); loading trusts only scikit-learn and numpy
types and refuses anything else.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from sklearn.compose import ColumnTransformer
from sklearn.ensemble import HistGradientBoostingClassifier, RandomForestClassifier
from sklearn.impute import SimpleImputer
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import log_loss, roc_auc_score
from sklearn.pipeline import Pipeline, make_pipeline
from sklearn.preprocessing import OneHotEncoder, StandardScaler
from threadpoolctl import threadpool_limits

from retrain.errors import RetrainError
from retrain.trainers.base import Candidate, TrainerSpec, check_frames, write_manifest

logger = logging.getLogger(__name__)

MODEL_FILE = "model.skops"
FAMILIES = {
    "hist_gradient_boosting": HistGradientBoostingClassifier,
    "logistic_regression": LogisticRegression,
    "random_forest": RandomForestClassifier,
}
_DEFAULTS: dict[str, dict[str, Any]] = {
    "hist_gradient_boosting": {"learning_rate": 0.05, "max_iter": 300, "max_leaf_nodes": 15},
    "logistic_regression": {"max_iter": 1000, "C": 1.0},
    "random_forest": {"n_estimators": 200, "min_samples_leaf": 5, "n_jobs": 1},
}
_TRUSTED_PREFIXES = ("sklearn.", "numpy.", "builtins.", "scipy.")


def champion_family(native: Any) -> str | None:
    """The family name of a champion's final estimator, when it is one we train."""
    estimator = native.steps[-1][1] if isinstance(native, Pipeline) else native
    for name, cls in FAMILIES.items():
        if isinstance(estimator, cls):
            return name
    return None


def _as_float(frame: pd.DataFrame) -> pd.DataFrame:
    return frame.apply(pd.to_numeric, errors="coerce").astype(float)


def build_pipeline(spec: TrainerSpec, family: str, params: dict[str, Any]) -> Pipeline:
    numeric = spec.columns("numeric") + spec.columns("boolean")
    categorical = spec.columns("categorical")
    numeric_steps: list[Any] = [SimpleImputer(strategy="median", add_indicator=True)]
    if family == "logistic_regression":
        numeric_steps.append(StandardScaler())
    parts = []
    if numeric:
        parts.append(("numeric", make_pipeline(*numeric_steps), numeric))
    if categorical:
        encoder = OneHotEncoder(handle_unknown="ignore", sparse_output=False)
        parts.append(
            (
                "categorical",
                make_pipeline(SimpleImputer(strategy="constant", fill_value="missing"), encoder),
                categorical,
            )
        )
    estimator = FAMILIES[family](random_state=spec.seed, **params)
    return Pipeline([("preprocess", ColumnTransformer(parts)), ("classifier", estimator)])


def _frame(frame: pd.DataFrame, spec: TrainerSpec) -> pd.DataFrame:
    return coerce(frame, spec.features)


def coerce(frame: pd.DataFrame, features: Mapping[str, str]) -> pd.DataFrame:
    """The feature columns as the pipeline takes them: numeric and boolean columns as
    floats (True 1.0, None NaN), categorical ones as strings (None ``"missing"``)."""
    out = frame[list(features)].copy()
    numeric = [c for c, kind in features.items() if kind != "categorical"]
    if numeric:
        out[numeric] = _as_float(out[numeric])
    for name in (c for c, kind in features.items() if kind == "categorical"):
        out[name] = out[name].astype(object).where(out[name].notna(), "missing").astype(str)
    return out


class SklearnTrainer:
    """``fit(train, validation, spec) -> Candidate`` with a scikit-learn pipeline."""

    def __init__(self, *, champion: Any = None) -> None:
        self.champion = champion

    def family(self, spec: TrainerSpec) -> str:
        if spec.estimator is not None:
            return spec.estimator
        known = champion_family(self.champion) if self.champion is not None else None
        return known or "hist_gradient_boosting"

    def fit(self, train: pd.DataFrame, validation: pd.DataFrame, spec: TrainerSpec) -> Candidate:
        check_frames(train, validation, spec)
        family = self.family(spec)
        params = {**_DEFAULTS[family], **dict(spec.estimator_params)}
        x_train, y_train = _frame(train, spec), train[spec.target].to_numpy(dtype=int)
        x_val, y_val = _frame(validation, spec), validation[spec.target].to_numpy(dtype=int)
        started = time.perf_counter()
        with threadpool_limits(limits=spec.threads):
            pipeline, history, params = self._fit(
                x_train, y_train, x_val, y_val, spec, family, params
            )
        history["seconds"] = round(time.perf_counter() - started, 3)
        with threadpool_limits(limits=spec.threads):
            if len(x_val) and len(set(y_val)) == 2:
                scores = pipeline.predict_proba(x_val)[:, 1]
                history["validation_roc_auc"] = float(roc_auc_score(y_val, scores))
                history["validation_loss"] = float(log_loss(y_val, scores, labels=[0, 1]))
        logger.info("trained scikit-learn %s in %.1f s", family, history["seconds"])
        return Candidate(
            framework="sklearn",
            native=pipeline,
            params={"family": family, **params},
            history=history,
            features=dict(spec.features),
            target=spec.target,
        )

    def _fit(
        self,
        x_train: pd.DataFrame,
        y_train: np.ndarray,
        x_val: pd.DataFrame,
        y_val: np.ndarray,
        spec: TrainerSpec,
        family: str,
        params: dict[str, Any],
    ) -> tuple[Pipeline, dict[str, Any], dict[str, Any]]:
        try:
            pipeline = build_pipeline(spec, family, params).fit(x_train, y_train)
            history: dict[str, Any] = {"family": family}
            if family == "hist_gradient_boosting" and len(x_val) and len(set(y_val)) == 2:
                xv = pipeline[:-1].transform(x_val)
                losses = [
                    log_loss(y_val, p[:, 1], labels=[0, 1])
                    for p in pipeline[-1].staged_predict_proba(xv)
                ]
                best = int(np.argmin(losses)) + 1
                history["validation_log_loss"] = [round(v, 6) for v in losses]
                history["best_iteration"] = best
                if best < params["max_iter"]:
                    params = {**params, "max_iter": best}
                    pipeline = build_pipeline(spec, family, params).fit(x_train, y_train)
        except ValueError as exc:
            raise RetrainError(f"scikit-learn {family} training failed: {exc}") from exc
        return pipeline, history, params


def save(candidate: Candidate, directory: Path) -> None:
    import skops.io

    skops.io.dump(candidate.native, directory / MODEL_FILE)
    write_manifest(candidate, directory, MODEL_FILE)


def load_native(path: Path) -> Pipeline:
    import skops.io

    try:
        untrusted = skops.io.get_untrusted_types(file=path)
        refused = [t for t in untrusted if not t.startswith(_TRUSTED_PREFIXES)]
        if refused:
            raise RetrainError(f"model file {str(path)!r} holds untrusted types {refused!r}")
        native = skops.io.load(path, trusted=untrusted)
    except (OSError, ValueError, TypeError) as exc:
        raise RetrainError(f"cannot load the scikit-learn model {str(path)!r}: {exc}") from exc
    if not isinstance(native, Pipeline):
        raise RetrainError(
            f"model file {str(path)!r} holds {type(native).__name__}, not a Pipeline"
        )
    return native
