"""One retraining attempt end to end on demo rows: blocked, rejected, passed."""

from __future__ import annotations

import json
import subprocess
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pandas as pd
import pytest
from threadpoolctl import threadpool_limits

from driftd.demo.data import FEATURES, TARGET, make_reference, train_baseline
from retrain.dataset import DatasetSpec
from retrain.gates import GateSpec
from retrain.pipeline import attempt
from retrain.trainers import Candidate, TrainerSpec

NOW = datetime(2026, 12, 1, tzinfo=UTC)
DATASET = DatasetSpec(
    features=FEATURES,
    target=TARGET,
    lookback=timedelta(days=8),
    test_window=timedelta(days=2),
    min_train_rows=500,
    min_validation_rows=200,
    min_test_rows=200,
)
TRAINER = TrainerSpec(features=FEATURES, target=TARGET, framework="sklearn")
GATES = GateSpec(cost_fn=20.0, cost_fp=1.0, resamples=200, slices=("country",))


def production(rows: int = 4000, seed: int = 5) -> pd.DataFrame:
    frame = make_reference(rows, seed=seed)
    step = timedelta(days=8) / rows
    frame["ts"] = [NOW - timedelta(days=8) + i * step for i in range(rows)]
    frame["id"] = [f"r{i}" for i in range(rows)]
    frame["source"], frame["holdout_eligible"], frame["review_state"] = "production", True, None
    return frame


def test_without_a_champion_a_sound_candidate_passes() -> None:
    result = attempt(
        make_reference(3000, seed=0),
        production(),
        dataset=DATASET,
        trainer=TRAINER,
        gates=GATES,
        now=NOW,
    )
    assert result.status == "passed", result.reason
    assert result.candidate is not None and result.gates is not None
    names = {g.name for g in result.gates.results}
    assert "baseline:roc_auc" in names and not any(n.startswith("champion") for n in names)
    stored = json.loads(json.dumps(result.to_dict()))
    assert stored["rows"]["test"] == 1000 and stored["data_validation"]["passed"]


def test_a_stronger_champion_rejects_the_candidate() -> None:
    reference = make_reference(3000, seed=0)
    with threadpool_limits(limits=1):
        champion_model = train_baseline(make_reference(20000, seed=9), seed=0)
    champion = Candidate("sklearn", champion_model, {}, {}, dict(FEATURES), TARGET)
    weak = TrainerSpec(
        features={k: v for k, v in FEATURES.items() if k != "is_new_device"},
        target=TARGET,
        framework="sklearn",
    )
    result = attempt(
        reference,
        production(),
        dataset=DATASET,
        trainer=weak,
        gates=GATES,
        now=NOW,
        champion=champion,
    )
    assert result.status == "rejected"
    assert "champion" in result.reason


def test_a_broken_column_blocks_before_any_training() -> None:
    rows = production()
    rows["amount"] = "n/a"
    result = attempt(
        make_reference(3000, seed=0),
        rows,
        dataset=DATASET,
        trainer=TRAINER,
        gates=GATES,
        now=NOW,
    )
    assert result.status == "blocked" and result.candidate is None
    assert "'amount'" in result.reason


@pytest.mark.parametrize("module", ["retrain.pipeline", "retrain.trainers.sklearn"])
def test_the_light_modules_do_not_load_tensorflow(module: str) -> None:
    root = Path(__file__).resolve().parents[2]
    script = f"import sys; sys.path.insert(0, {str(root)!r}); import {module}; print('tensorflow' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"
