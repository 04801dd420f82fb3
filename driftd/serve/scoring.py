"""One prediction: the A/B arm by a hash of the request id, the model's output in the
contract's terms, and the log record written before the answer.

The arm is a pure function of the id and the challenger's share: ``blake2b(id)`` read as
a number in [0, 1), below the share is the challenger. The same id always gets the same
arm (a retry, a user id used as request id), and over many ids the challenger's share is
the configured one.
"""

from __future__ import annotations

import hashlib
import logging
import math
import uuid
from collections.abc import Mapping
from typing import Any, Literal

import numpy as np

from driftd.serve.log import Clock, PredictionLog, rfc3339, utc_now
from driftd.serve.models import ScoringModel, ServedModels
from driftd.serve.schema import feature_frame
from monitor.records import FeatureType
from storage.errors import DriftdError

logger = logging.getLogger(__name__)

Task = Literal["binary", "multiclass", "regression"]
_SCALE = float(2**64)


class ScoringError(DriftdError):
    """The model failed on valid input or returned what the contract cannot hold."""


def bucket(request_id: str) -> float:
    """A uniform number in [0, 1) that only depends on ``request_id``."""
    digest = hashlib.blake2b(request_id.encode(), digest_size=8).digest()
    return int.from_bytes(digest, "big") / _SCALE


def assign_variant(request_id: str, challenger_share: float, *, has_challenger: bool) -> str:
    """``challenger`` for the ids whose bucket falls under the share, else ``champion``."""
    if has_challenger and bucket(request_id) < challenger_share:
        return "challenger"
    return "champion"


def outputs(task: Task, scores: np.ndarray, threshold: float) -> dict[str, Any]:
    """``prediction`` and ``score`` (or ``probabilities``) of one row, as logged."""
    if task == "regression":
        value = float(np.ravel(scores)[0])
        if not math.isfinite(value):
            raise ScoringError(f"the model predicted {value!r}")
        return {"prediction": value}
    if task == "multiclass":
        row = np.asarray(scores, dtype=float).reshape(1, -1)[0]
        if not (np.isfinite(row).all() and (row >= 0).all() and (row <= 1).all()):
            raise ScoringError(f"the model's probabilities are not probabilities: {row.tolist()}")
        return {
            "prediction": int(np.argmax(row)),
            "probabilities": {str(k): float(p) for k, p in enumerate(row)},
        }
    score = float(np.ravel(scores)[0])
    if not 0.0 <= score <= 1.0:  # NaN fails too
        raise ScoringError(f"the model's score {score!r} is not a probability in [0, 1]")
    return {"prediction": int(score >= threshold), "score": score}


class Predictor:
    """Scores a validated request with the arm's model and logs it before returning."""

    def __init__(
        self,
        *,
        schema: Mapping[str, FeatureType],
        models: ServedModels,
        log: PredictionLog,
        challenger_share: float,
        task: Task = "binary",
        threshold: float = 0.5,
        clock: Clock = utc_now,
    ) -> None:
        self.schema = dict(schema)
        self.models = models
        self.log = log
        self.challenger_share = challenger_share
        self.task = task
        self.threshold = threshold
        self.clock = clock

    def predict(self, request_id: str | None, features: Mapping[str, Any]) -> dict[str, Any]:
        """The logged record of this prediction (an id is generated when none is given)."""
        rid = request_id or uuid.uuid4().hex
        loaded = self.models.current
        variant = assign_variant(
            rid, self.challenger_share, has_challenger=loaded.challenger is not None
        )
        model: ScoringModel = (
            loaded.challenger
            if variant == "challenger" and loaded.challenger is not None
            else loaded.champion
        )
        try:
            scores = model.predict_scores(feature_frame([features], self.schema))
        except Exception as exc:  # noqa: BLE001 - any model failure: a server error
            raise ScoringError(
                f"model version {model.version!r} ({variant}) failed to score: {exc}"
            ) from exc
        record = {
            "id": rid,
            "ts": rfc3339(self.clock()),
            "model_version": str(model.version),
            "variant": variant,
            "features": dict(features),
            **outputs(self.task, scores, self.threshold),
        }
        self.log.write(record)
        return record
