"""Requests that arrive while the model scores are scored together: each still gets its
own answer, logged once, and a row the model fails on fails alone."""

from __future__ import annotations

import threading
import time
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import joblib
import numpy as np
import pandas as pd
import pytest

from driftd.serve.log import PredictionLog
from driftd.serve.models import Loaded, ServedModels, SklearnModel
from driftd.serve.scoring import Predictor, ScoringError
from tests.serve.conftest import SCHEMA, features, logged


@dataclass
class GatedModel:
    """The demo model; its first call waits for ``release``, and it refuses an amount of
    13.0 (a row a real model might fail on)."""

    inner: SklearnModel
    release: threading.Event = field(default_factory=threading.Event)
    calls: list[int] = field(default_factory=list)

    @property
    def version(self) -> str:
        return self.inner.version

    def predict_scores(self, frame: pd.DataFrame) -> np.ndarray:
        self.calls.append(len(frame))
        assert self.release.wait(30)
        if (frame["amount"] == 13.0).any():
            raise ValueError("amount 13.0 brings bad luck")
        return self.inner.predict_scores(frame)


class Source:
    def __init__(self, model: GatedModel) -> None:
        self.model = model

    def etag(self) -> str:
        return "one"

    def load(self) -> Loaded:
        return Loaded("one", self.model)


def queued(predictor: Predictor, n: int) -> None:
    deadline = time.monotonic() + 30
    while predictor._queue.qsize() < n:
        assert time.monotonic() < deadline, "the requests never queued"
        time.sleep(0.005)


@pytest.fixture
def gated(tmp_path: Path, model_files: dict[str, Path]) -> Any:
    model = GatedModel(SklearnModel(joblib.load(model_files["champion"]), "7"))
    predictor = Predictor(
        schema=SCHEMA,
        models=ServedModels(Source(model)),
        log=PredictionLog(tmp_path / "p.jsonl"),
        challenger_share=0.0,
    )
    predictor.start()
    yield model, predictor
    model.release.set()
    predictor.stop()


def test_requests_queued_behind_a_call_are_scored_in_one_call_and_answered_each(
    gated: tuple[GatedModel, Predictor],
) -> None:
    model, predictor = gated
    with ThreadPoolExecutor(12) as pool:
        first = pool.submit(predictor.predict, "r0", features(0))
        while not model.calls:  # the scoring thread is inside the model
            time.sleep(0.005)
        rest = [pool.submit(predictor.predict, f"r{i}", features(i)) for i in range(1, 11)]
        queued(predictor, 10)
        model.release.set()
        answers: list[Future[dict[str, Any]]] = [first, *rest]
        records = [a.result(timeout=30) for a in answers]

    assert model.calls == [1, 10]
    alone = model.inner.predict_scores(
        pd.DataFrame([features(i) for i in range(11)]).astype({"customer_age": float})
    )
    for i, record in enumerate(records):
        assert record["id"] == f"r{i}" and record["features"] == features(i)
        assert record["score"] == pytest.approx(alone[i], abs=1e-12)
    assert logged(predictor.log) == records


def test_a_row_the_model_fails_on_fails_alone(gated: tuple[GatedModel, Predictor]) -> None:
    model, predictor = gated
    with ThreadPoolExecutor(4) as pool:
        first = pool.submit(predictor.predict, "a", features(0))
        while not model.calls:
            time.sleep(0.005)
        bad = pool.submit(predictor.predict, "b", {**features(1), "amount": 13.0})
        good = pool.submit(predictor.predict, "c", features(2))
        queued(predictor, 2)
        model.release.set()
        assert first.result(timeout=30)["id"] == "a"
        assert good.result(timeout=30)["id"] == "c"
        with pytest.raises(ScoringError, match="bad luck"):
            bad.result(timeout=30)

    assert [r["id"] for r in logged(predictor.log)] == ["a", "c"]
