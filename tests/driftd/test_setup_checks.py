"""A new user's setup mistakes are caught at start, naming the key and the value: the
model's own columns are never features, a broken reference is refused, a path that
matches nothing is said out loud."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
import yaml
from typer.testing import CliRunner

from driftd.app import App
from driftd.cli import app
from driftd.config import load
from monitor.records import FeatureType

runner = CliRunner()


def reference(rows: int = 400, seed: int = 0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    proba = rng.uniform(size=rows)
    return pd.DataFrame(
        {
            "x1": rng.normal(size=rows),
            "x2": rng.normal(10, 2, size=rows),
            "segment": rng.choice(["a", "b", "c"], size=rows),
            "y_pred_proba": proba,
            "pred": (proba >= 0.5).astype(int),
            "is_fraud": (rng.uniform(size=rows) < proba).astype(int),
        }
    )


def setup(tmp_path: Path, frame: pd.DataFrame | None = None, **changes: Any) -> Path:
    (tmp_path / "logs").mkdir(exist_ok=True)
    if frame is None:
        frame = reference()
    frame.to_csv(tmp_path / "reference.csv", index=False)
    config: dict[str, Any] = {
        "model": {"name": "own"},
        "reference": {
            "path": "reference.csv",
            "target": "is_fraud",
            "score_column": "y_pred_proba",
            "prediction_column": "pred",
        },
        "sources": {"predictions": [{"paths": ["logs/pred-*.jsonl"]}]},
        "storage": {"url": f"sqlite:///{tmp_path / 'driftd.db'}"},
    }
    for key, value in changes.items():
        section, _, name = key.partition("__")
        if name:
            config[section] = {**config[section], name: value}
        else:
            config[section] = value
    path = tmp_path / "driftd.yaml"
    path.write_text(yaml.safe_dump(config))
    return path


def test_configured_score_and_prediction_columns_are_not_features(tmp_path: Path) -> None:
    with App(load(setup(tmp_path))) as application:
        assert application.reference.schema == {
            "x1": FeatureType.NUMERIC,
            "x2": FeatureType.NUMERIC,
            "segment": FeatureType.CATEGORICAL,
        }


@pytest.mark.parametrize(
    ("changes", "expected"),
    [
        ({"reference__path": "missing.csv"}, "reference.path: no file"),
        ({"reference__target": "is_frud"}, "reference.target: no column 'is_frud'"),
        ({"reference__score_column": "proba"}, "reference.score_column: no column 'proba'"),
        ({"reference__prediction_column": "y"}, "reference.prediction_column: no column 'y'"),
        ({"reference__score_column": "x2"}, "reference.score_column: 'x2' has 400 values"),
        ({"schema": {"x1": "numeric", "amount": "numeric"}}, "schema: no column 'amount'"),
    ],
)
@pytest.mark.parametrize("command", ["check", "once", "run"])
def test_a_broken_reference_is_refused_at_start(
    tmp_path: Path, changes: dict[str, Any], expected: str, command: str
) -> None:
    result = runner.invoke(app, [command, "-c", str(setup(tmp_path, **changes))])
    assert result.exit_code == 2, result.output
    assert expected in result.output
    assert "Traceback" not in result.output


def test_mixed_and_empty_reference_columns_are_warned_about_and_handled(tmp_path: Path) -> None:
    frame = reference()
    mixed = frame["x2"].round(2).astype(object)
    mixed.iloc[::25] = "unknown"  # 4% text in a numeric column, as exports write it
    frame["x2"] = mixed
    frame["empty"] = np.nan
    cfg = setup(tmp_path, frame)
    lines = [
        json.dumps(
            {
                "id": f"r{i}",
                "ts": f"2026-11-02T10:{i % 60:02d}:00Z",
                "features": {"x1": 0.1, "x2": 10.5 + i / 10, "segment": "a", "empty": None},
                "prediction": 0,
                "score": 0.2,
            }
        )
        for i in range(50)
    ]
    (tmp_path / "logs" / "pred-1.jsonl").write_text("\n".join(lines) + "\n")
    check = runner.invoke(app, ["check", "-c", str(cfg)])
    assert "warning: reference column 'x2' mixes numbers and text (96% numbers" in check.output
    assert "treated as numeric, its text values as missing" in check.output
    assert "warning: reference column 'empty' has no value in the reference" in check.output
    once = runner.invoke(app, ["once", "--json", "-c", str(cfg)])
    assert once.exit_code == 0, once.output
    summary = json.loads(once.stdout[once.stdout.index("{") :])
    ingested = summary["ingest"]["summary"]["sources"]["predictions"]
    assert ingested["rows"] == 50 and ingested["quarantined"] == {}  # x2 is numeric


def test_a_path_that_matches_nothing_is_unhealthy_and_alerted(tmp_path: Path) -> None:
    cfg = setup(tmp_path, sources={"predictions": [{"paths": ["log/pred-*.jsonl"]}]})
    once = runner.invoke(app, ["once", "--json", "-c", str(cfg)])
    assert once.exit_code == 0, once.output
    summary = json.loads(once.stdout[once.stdout.index("{") :])
    assert summary["ingest"]["summary"]["sources"]["predictions"]["matched"] == 0
    check = runner.invoke(app, ["check", "-c", str(cfg)])
    assert check.exit_code == 1
    assert f"source predictions: no file matches {tmp_path}/log/pred-*.jsonl" in check.output
    with App(load(cfg)) as application:
        incidents = application.alert_repository.incidents(model="own", state="open")
        assert [(i.rule, i.scope) for i in incidents] == [("source", "predictions")]
