"""The team's own training code, plugged in by an entry point.

Config: ``framework: custom`` and ``entry_point: "package.module:function"``. The
function is imported (its package must be importable by the daemon) and called as::

    def train(train: pd.DataFrame, validation: pd.DataFrame, spec: TrainerSpec) -> Result

with the same frames the built-in trainers get (``spec.features`` columns and
``spec.target`` 0/1; ``spec.options`` carries free-form settings from the config), and
returns one of:

- a :class:`~retrain.trainers.base.Candidate` (full control over params and history);
- a fitted scikit-learn estimator or Pipeline with ``predict_proba`` taking the
  feature columns (numeric/boolean as floats, categorical as strings);
- a ``keras.Model`` taking one (n, 1) input per feature column, as the Keras trainer's
  models do (:func:`retrain.trainers.keras.model_inputs`).

The gates, the registry and the exports then treat it like any other candidate.
"""

from __future__ import annotations

import importlib
import logging
import time
from collections.abc import Callable
from typing import Any

import pandas as pd

from retrain.errors import RetrainError
from retrain.trainers.base import Candidate, TrainerSpec, check_frames

logger = logging.getLogger(__name__)


def resolve(entry_point: str) -> Callable[..., Any]:
    """The function named by ``"package.module:function"``."""
    module_name, _, attribute = entry_point.partition(":")
    if not module_name or not attribute:
        raise RetrainError(f"entry point {entry_point!r} must read 'package.module:function'")
    try:
        target: Any = importlib.import_module(module_name)
        for part in attribute.split("."):
            target = getattr(target, part)
    except ImportError as exc:
        raise RetrainError(
            f"cannot import {module_name!r} for entry point {entry_point!r}: {exc}"
        ) from exc
    except AttributeError as exc:
        raise RetrainError(
            f"entry point {entry_point!r}: {module_name!r} has no {attribute!r}"
        ) from exc
    if not callable(target):
        raise RetrainError(
            f"entry point {entry_point!r} is a {type(target).__name__}, not a function"
        )
    return target  # type: ignore[no-any-return]


def _is_keras_model(obj: Any) -> bool:
    return any(
        cls.__module__.startswith("keras") and cls.__name__ == "Model" for cls in type(obj).__mro__
    )


class CustomTrainer:
    """``fit(train, validation, spec) -> Candidate`` through the team's function."""

    def fit(self, train: pd.DataFrame, validation: pd.DataFrame, spec: TrainerSpec) -> Candidate:
        if not spec.entry_point:
            raise RetrainError("the custom trainer needs spec.entry_point")
        function = resolve(spec.entry_point)
        check_frames(train, validation, spec)
        started = time.perf_counter()
        try:
            result = function(train, validation, spec)
        except RetrainError:
            raise
        except Exception as exc:  # the team's code may raise anything: name it and go on
            raise RetrainError(f"entry point {spec.entry_point!r} failed: {exc!r}") from exc
        seconds = round(time.perf_counter() - started, 3)
        logger.info("custom trainer %s finished in %.1f s", spec.entry_point, seconds)
        if isinstance(result, Candidate):
            return result
        history = {"entry_point": spec.entry_point, "seconds": seconds}
        params = {"entry_point": spec.entry_point, **dict(spec.options)}
        if _is_keras_model(result):
            framework = "keras"
        elif callable(getattr(result, "predict_proba", None)):
            framework = "sklearn"
        else:
            raise RetrainError(
                f"entry point {spec.entry_point!r} returned {type(result).__name__}; expected a "
                "Candidate, an estimator with predict_proba, or a keras.Model"
            )
        return Candidate(
            framework=framework,  # type: ignore[arg-type]
            native=result,
            params=params,
            history=history,
            features=dict(spec.features),
            target=spec.target,
        )
