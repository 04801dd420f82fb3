"""The ``retrain:`` and ``registry:`` config sections: defaults, durations, refusals."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import pytest

from driftd.config import parse
from driftd.config_retrain import tracking_uri
from driftd.errors import ConfigError

BASE = {"model": {"name": "fraud"}, "sources": {"predictions": [{"paths": ["logs/*.jsonl"]}]}}


def test_a_new_install_suggests_and_keeps_mlflow_in_the_workspace(tmp_path: Path) -> None:
    config = parse({**BASE, "workspace": "ws"}, base=tmp_path)

    assert config.retrain.mode == "suggest"
    assert config.retrain.policy().min_new_labels == 1000
    assert tracking_uri(config) == f"sqlite:///{tmp_path / 'ws' / 'mlflow.db'}"
    assert config.registry.name is None  # model.name


def test_the_policy_follows_the_file(tmp_path: Path) -> None:
    retrain = {
        "mode": "auto",
        "cooldown": "6h",
        "min_new_labels": 50,
        "triggers": {
            "drift_windows": 2,
            "realized_below": {"roc_auc": 0.8},
            "estimated_below": {"fnr": 0.3},
            "confirm_estimates": True,
            "detections": True,
            "schedule": "0 3 * * 1",
        },
        "trainer": {"kind": "custom", "entry_point": "team.models:train", "seed": 3},
        "gates": {"metric": "recall", "min_delta": 0.01, "slices": ["country"]},
    }
    config = parse({**BASE, "retrain": retrain, "registry": {"name": "fraud-eu"}}, base=tmp_path)

    policy = config.retrain.policy()
    assert (policy.mode, policy.cooldown, policy.min_new_labels) == ("auto", timedelta(hours=6), 50)
    assert (policy.drift_windows, policy.schedule) == (2, "0 3 * * 1")
    assert policy.realized_below == {"roc_auc": 0.8} and policy.estimated_below == {"fnr": 0.3}
    assert policy.confirm_estimates and policy.detections
    assert config.retrain.trainer.entry_point == "team.models:train"
    assert config.registry.name == "fraud-eu"


@pytest.mark.parametrize(
    ("retrain", "message"),
    [
        ({"mode": "always"}, "retrain.mode: Input should be 'suggest' or 'auto'"),
        ({"cooldown": "soon"}, "retrain.cooldown: 'soon' is not a duration"),
        ({"triggers": {"realized_below": {"auc": 0.8}}}, "unknown metric 'auc'"),
        ({"triggers": {"schedule": "every monday"}}, "retrain.triggers.schedule: cron"),
        ({"triggers": {"drift_windows": 0}}, "retrain.triggers.drift_windows"),
        ({"trainer": {"kind": "custom"}}, "kind custom needs entry_point"),
        ({"trainer": {"entry_point": "a:b"}}, "entry_point is only for kind custom"),
        (
            {"gates": {"metric": "average_precision"}},
            "retrain.gates.metric: Input should be 'roc_auc', 'accuracy' or 'recall'",
        ),
        ({"gate": {}}, "retrain.gate: Extra inputs are not permitted"),
    ],
)
def test_bad_values_are_refused_by_key(tmp_path: Path, retrain: dict, message: str) -> None:
    with pytest.raises(ConfigError, match="invalid configuration") as caught:
        parse({**BASE, "retrain": retrain}, base=tmp_path)
    assert message in str(caught.value)
