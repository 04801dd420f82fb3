"""Shared by the serving tests: the demo's baseline model and a second version of it,
as files; a service around them (FastAPI's TestClient) with an injected clock."""

from __future__ import annotations

import os

# as `driftd serve` does: one-row predictions in OpenMP teams spin on a busy machine
# (read when scikit-learn first loads, so before the imports below)
os.environ.setdefault("OMP_NUM_THREADS", "1")

import shutil  # noqa: E402
import warnings
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import joblib
import orjson
import pytest
from threadpoolctl import threadpool_limits

from driftd.demo.data import FEATURES, make_reference, train_baseline
from driftd.serve.app import create_app
from driftd.serve.log import PredictionLog
from driftd.serve.models import FileSource, ModelSource, ServedModels
from driftd.serve.scoring import Predictor
from monitor.records import FeatureType

with warnings.catch_warnings():  # starlette 1.x would rather have httpx2; httpx works
    warnings.simplefilter("ignore")
    from fastapi.testclient import TestClient

SCHEMA = {name: FeatureType(kind) for name, kind in FEATURES.items()}


def features(i: int = 0) -> dict[str, Any]:
    """A valid feature object (varied by ``i``)."""
    return {
        "amount": 20.0 + i,
        "hour": i % 24,
        "account_age_days": 400.5,
        "n_tx_24h": 2,
        "distance_km": 3.2,
        "customer_age": None if i % 7 == 0 else 40,
        "merchant_category": ("grocery", "online", "fuel")[i % 3],
        "country": "DE",
        "card_present": i % 2 == 0,
        "is_new_device": False,
    }


@pytest.fixture(scope="session")
def model_files(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """Two versions of the demo's baseline, trained on different draws, as joblib files."""
    root = tmp_path_factory.mktemp("models")
    files = {}
    for alias, seed in (("champion", 0), ("challenger", 1)):
        with threadpool_limits(1):  # OpenMP threads on a busy machine spin for seconds
            model = train_baseline(make_reference(2000, seed=seed), seed=seed)
        files[alias] = root / f"{alias}.joblib"
        joblib.dump(model, files[alias])
    return files


@pytest.fixture
def models_dir(tmp_path: Path, model_files: dict[str, Path]) -> dict[str, Path]:
    """Copies of the model files this test may replace."""
    out = {}
    for alias, path in model_files.items():
        out[alias] = tmp_path / "models" / path.name
        out[alias].parent.mkdir(exist_ok=True)
        shutil.copy(path, out[alias])
    return out


class Clock:
    """A clock the test moves."""

    def __init__(self, start: datetime) -> None:
        self.now = start

    def __call__(self) -> datetime:
        return self.now

    def advance(self, delta: timedelta) -> None:
        self.now += delta


@dataclass
class Service:
    client: TestClient
    predictor: Predictor
    log: PredictionLog

    def lines(self) -> list[dict[str, Any]]:
        return logged(self.log)

    def post(self, body: Any) -> Any:
        return self.client.post("/predict", json=body)


def logged(log: PredictionLog) -> list[dict[str, Any]]:
    """Every record in the files of ``log``, oldest file first."""
    files = sorted(log.path.parent.glob(Path(log.glob).name))
    return [orjson.loads(line) for f in files for line in f.read_bytes().splitlines()]


@pytest.fixture
def clock() -> Clock:
    return Clock(datetime(2026, 12, 5, 3, 0, tzinfo=UTC))


@pytest.fixture
def service(
    tmp_path: Path, models_dir: dict[str, Path], clock: Clock
) -> Iterator[Callable[..., Service]]:
    """``service(share=..., source=..., **log options)``: a running app (lifespan on)."""
    clients: list[TestClient] = []

    def start(
        *,
        share: float = 0.3,
        source: ModelSource | None = None,
        max_body_bytes: int = 4096,
        reload_interval: timedelta = timedelta(hours=1),
        **log_options: Any,
    ) -> Service:
        log = PredictionLog(tmp_path / "logs" / "predictions.jsonl", clock=clock, **log_options)
        predictor = Predictor(
            schema=SCHEMA,
            models=ServedModels(source or FileSource(models_dir)),
            log=log,
            challenger_share=share,
            clock=clock,
        )
        app = create_app(predictor, max_body_bytes=max_body_bytes, reload_interval=reload_interval)
        client = TestClient(app, raise_server_exceptions=False)
        client.__enter__()
        clients.append(client)
        return Service(client, predictor, log)

    yield start
    for client in clients:
        client.__exit__(None, None, None)
