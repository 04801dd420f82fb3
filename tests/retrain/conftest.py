"""Small seeded demo data for the trainer, gate and export tests."""

from __future__ import annotations

import pandas as pd
import pytest

from driftd.demo.data import FEATURES, TARGET, make_reference
from retrain.trainers.base import KerasGridPoint, TrainerSpec


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
