"""Shared by the retrain tests: a seeded binary task, an MLflow store per module, and
small seeded demo data for the trainer, gate and export tests."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest

from driftd.demo.data import FEATURES, TARGET, make_reference
from retrain.registry import Registry
from retrain.trainers.base import KerasGridPoint, TrainerSpec
from storage.models import ModelRepository
from storage.store import Store


def task(n: int = 400, seed: int = 0) -> tuple[pd.DataFrame, np.ndarray]:
    rng = np.random.default_rng(seed)
    frame = pd.DataFrame(
        {
            "amount": rng.gamma(2.0, 50.0, n),
            "age": rng.integers(18, 80, n).astype(float),
            "country": rng.choice(["DE", "FR", "IT"], n),
        }
    )
    logit = 0.02 * (frame["amount"] - 100) - 0.03 * (frame["age"] - 45) + (frame["country"] == "IT")
    y = (rng.random(n) < 1 / (1 + np.exp(-logit))).astype(int).to_numpy()
    return frame, y


def sklearn_pipeline(frame: pd.DataFrame, y: np.ndarray, c: float = 1.0) -> Any:
    from sklearn.compose import ColumnTransformer
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import Pipeline
    from sklearn.preprocessing import OneHotEncoder, StandardScaler

    pre = ColumnTransformer(
        [("num", StandardScaler(), ["amount", "age"]), ("cat", OneHotEncoder(), ["country"])]
    )
    return Pipeline([("pre", pre), ("clf", LogisticRegression(C=c))]).fit(frame, y)


@dataclass(frozen=True)
class Candidate:
    """The train helper's candidate contract: framework, native, predict_scores."""

    framework: str
    native: Any

    def predict_scores(self, frame: pd.DataFrame) -> np.ndarray:
        if self.framework == "keras":
            inputs = {c: frame[c].to_numpy() for c in ("amount", "age")}
            return np.asarray(self.native.predict(inputs, verbose=0)).ravel()
        return np.asarray(self.native.predict_proba(frame))[:, 1]


@pytest.fixture(scope="module")
def mlflow_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One MLflow store per test module (creating its tables takes seconds)."""
    return tmp_path_factory.mktemp("mlflow")


@pytest.fixture
def registry(mlflow_dir: Path, tmp_path: Path) -> Iterator[Registry]:
    store = Store(f"sqlite:///{tmp_path / 'driftd.db'}")
    store.migrate()
    try:
        yield Registry(
            name=f"fraud-{uuid.uuid4().hex[:8]}",
            tracking_uri=f"sqlite:///{mlflow_dir / 'mlflow.db'}",
            repository=ModelRepository(store),
            artifact_location=(mlflow_dir / "artifacts").as_uri(),
            scratch=tmp_path / "scratch",
        )
    finally:
        store.dispose()


@pytest.fixture(scope="session")
def demo_splits() -> tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame]:
    """Train / validation / final test drawn from the demo's card-fraud reference."""
    rows = make_reference(6000, seed=3)
    return rows.iloc[:3600], rows.iloc[3600:4800], rows.iloc[4800:].reset_index(drop=True)


@pytest.fixture(scope="session")
def small_keras_spec() -> TrainerSpec:
    return TrainerSpec(
        features=FEATURES,
        target=TARGET,
        framework="keras",
        seed=7,
        grid=(KerasGridPoint(units=(32, 16), dropout=0.1, l2=1e-4, learning_rate=3e-3),),
        max_epochs=6,
        batch_size=256,
        patience=2,
    )
