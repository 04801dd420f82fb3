"""Predictions: the A/B arm by a hash of the request id, the model's output in the
contract's terms, and the log records written before the answers.

The arm is a pure function of the id and the challenger's share: ``blake2b(id)`` read as
a number in [0, 1), below the share is the challenger. The same id always gets the same
arm (a retry, a user id used as request id), and over many ids the challenger's share is
the configured one.

One thread scores. Requests that arrive while it scores wait for the next batch, which
takes them all (up to ``max_batch``): one model call per arm and one log write and fsync
per batch, so concurrency raises throughput instead of queueing behind the per-call
overhead of a scikit-learn pipeline, and an idle service answers without delay. A row
the model fails on fails alone (the batch is scored again row by row).
"""

from __future__ import annotations

import hashlib
import logging
import math
import queue
import threading
import uuid
from collections.abc import Mapping, Sequence
from concurrent.futures import Future
from dataclasses import dataclass, field
from typing import Any, Literal

import numpy as np

from driftd.serve.log import Clock, PredictionLog, rfc3339, utc_now
from driftd.serve.models import ScoringModel, ServedModels, ServeError
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


@dataclass
class _Request:
    id: str
    features: dict[str, Any]
    answer: Future[dict[str, Any]] = field(default_factory=Future)


class Predictor:
    """Scores validated requests with their arm's model and logs them before answering."""

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
        max_batch: int = 64,
    ) -> None:
        self.schema = dict(schema)
        self.models = models
        self.log = log
        self.challenger_share = challenger_share
        self.task = task
        self.threshold = threshold
        self.clock = clock
        self.max_batch = max_batch
        self._queue: queue.SimpleQueue[_Request | None] = queue.SimpleQueue()
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        self._thread = threading.Thread(target=self._run, name="driftd-serve-scoring")
        self._thread.daemon = True
        self._thread.start()

    def stop(self) -> None:
        """Answer what is queued, then stop the scoring thread."""
        if self._thread is not None:
            self._queue.put(None)
            self._thread.join()
            self._thread = None

    def predict(self, request_id: str | None, features: Mapping[str, Any]) -> dict[str, Any]:
        """The logged record of this prediction (an id is generated when none is given);
        raises ScoringError or LogWriteError when nothing was logged."""
        if self._thread is None:
            raise ServeError("the predictor is not started")
        request = _Request(request_id or uuid.uuid4().hex, dict(features))
        self._queue.put(request)
        return request.answer.result()

    def _run(self) -> None:
        while True:
            first = self._queue.get()
            if first is None:
                return
            batch, stopping = [first], False
            while len(batch) < self.max_batch:
                try:
                    item = self._queue.get_nowait()
                except queue.Empty:
                    break
                if item is None:
                    stopping = True
                    break
                batch.append(item)
            self._serve(batch)
            if stopping:
                return

    def _serve(self, batch: Sequence[_Request]) -> None:
        try:
            done = self._score(batch)
            self.log.write_many([record for _, record in done])
        except BaseException as exc:  # noqa: BLE001 - every waiting request learns why
            for request in batch:
                if not request.answer.done():
                    request.answer.set_exception(exc)
            if not isinstance(exc, DriftdError):
                logger.exception("a batch of %d predictions failed", len(batch))
            return
        for request, record in done:
            request.answer.set_result(record)

    def _score(self, batch: Sequence[_Request]) -> list[tuple[_Request, dict[str, Any]]]:
        """The records of the requests the model scored; the others get their error."""
        loaded = self.models.current
        has_challenger = loaded.challenger is not None
        arms: dict[str, list[_Request]] = {}
        for request in batch:
            variant = assign_variant(
                request.id, self.challenger_share, has_challenger=has_challenger
            )
            arms.setdefault(variant, []).append(request)
        ts = rfc3339(self.clock())
        done = []
        for variant, requests in arms.items():
            model = loaded.challenger if variant == "challenger" else loaded.champion
            assert model is not None  # no challenger: every id is the champion's
            for request, out in self._outputs(model, variant, requests):
                if isinstance(out, ScoringError):
                    request.answer.set_exception(out)
                    continue
                record = {
                    "id": request.id,
                    "ts": ts,
                    "model_version": str(model.version),
                    "variant": variant,
                    "features": request.features,
                    **out,
                }
                done.append((request, record))
        return done

    def _outputs(
        self, model: ScoringModel, variant: str, requests: Sequence[_Request]
    ) -> list[tuple[_Request, dict[str, Any] | ScoringError]]:
        try:
            scores = model.predict_scores(
                feature_frame([r.features for r in requests], self.schema)
            )
            return [
                (r, outputs(self.task, scores[i : i + 1], self.threshold))
                for i, r in enumerate(requests)
            ]
        except Exception as exc:  # noqa: BLE001 - any model failure: a server error
            if len(requests) == 1:
                error = (
                    exc
                    if isinstance(exc, ScoringError)
                    else ScoringError(
                        f"model version {model.version!r} ({variant}) failed to score: {exc}"
                    )
                )
                return [(requests[0], error)]
        out: list[tuple[_Request, dict[str, Any] | ScoringError]] = []
        for request in requests:  # isolate the rows the model fails on
            out += self._outputs(model, variant, [request])
        return out
