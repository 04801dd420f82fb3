"""A new user's own model, end to end as they would run it: a scikit-learn model on a
dataset that ships with scikit-learn, their own column names, a config written from the
`driftd init` template, `check`, `once` as the scheduler would run it, `status --json`.

The stream starts mid-hour (a partly filled first window), runs stationary for twelve
hours, then two inputs shift; labels arrive hours late. driftd must stay quiet on the
stationary part and find the shift after it.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import yaml
from sklearn.datasets import load_breast_cancer
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler
from typer.testing import CliRunner

from driftd.app import App
from driftd.cli import app
from driftd.config import load

runner = CliRunner()
START = datetime(2026, 11, 2, 9, 41, tzinfo=UTC)  # mid-hour: the first window is partial
STATIONARY_HOURS, DRIFT_HOURS, PER_HOUR = 12, 6, 150
SHIFTED = ("mean radius", "mean texture")


def invoke(*args: str) -> Any:
    result = runner.invoke(app, list(args))
    return result


@pytest.fixture
def own_model(tmp_path: Path, db_url: str) -> Iterator[Path]:
    data = load_breast_cancer(as_frame=True)
    frame, target = data.data, data.target
    rng = np.random.default_rng(7)
    order = rng.permutation(len(frame))
    train, held = order[:300], order[300:]
    model = make_pipeline(StandardScaler(), LogisticRegression(max_iter=2000))
    features = list(frame.columns[:8])  # the user's own names, with spaces
    model.fit(frame.iloc[train][features], target.iloc[train])

    reference = frame.iloc[held][features].copy()
    reference["y_pred_proba"] = model.predict_proba(reference[features])[:, 1]
    reference["pred"] = (reference["y_pred_proba"] >= 0.5).astype(int)
    reference["diagnosis"] = target.iloc[held].to_numpy()
    reference.to_csv(tmp_path / "training_reference.csv", index=False)

    logs = tmp_path / "serving"
    logs.mkdir()
    predictions, labels = [], []
    spread = reference[features].std()
    t = START
    n = 0
    for hour in range(STATIONARY_HOURS + DRIFT_HOURS):
        rows = PER_HOUR if hour else 9  # nine requests before the first full hour
        picked = rng.integers(0, len(reference), size=rows)
        batch = reference.iloc[picked][features].copy()

        if hour >= STATIONARY_HOURS:
            for name in SHIFTED:
                batch[name] += 1.0 * spread[name]
        proba = model.predict_proba(batch)[:, 1]
        for i in range(rows):
            ts = t + timedelta(seconds=int(i * (60 if hour == 0 else 3600 / rows)))
            n += 1
            predictions.append(
                {
                    "request_id": f"r{n}",
                    "event_time": ts.isoformat(),
                    "inputs": {k: float(v) for k, v in batch.iloc[i].items()},
                    "pred": int(proba[i] >= 0.5),
                    "y_pred_proba": float(proba[i]),
                }
            )
            truth = int(reference["diagnosis"].iloc[picked[i]])
            labels.append(
                {
                    "request_id": f"r{n}",
                    "diagnosis": truth,
                    "event_time": (ts + timedelta(hours=6)).isoformat(),
                }
            )
        t = (t + timedelta(hours=1)).replace(minute=0) if hour == 0 else t + timedelta(hours=1)
    (logs / "predictions.jsonl").write_text("\n".join(map(json.dumps, predictions)) + "\n")
    (logs / "labels.jsonl").write_text("\n".join(map(json.dumps, labels)) + "\n")

    assert invoke("init", str(tmp_path)).exit_code == 0
    config = yaml.safe_load((tmp_path / "driftd.yaml").read_text())
    config["model"] = {
        "name": "tumour",
        "task": "binary",
        "fields": {
            "id": "request_id",
            "ts": "event_time",
            "features": "inputs",
            "prediction": "pred",
            "score": "y_pred_proba",
            "label": "diagnosis",
        },
    }
    config["reference"] = {
        "path": "training_reference.csv",
        "target": "diagnosis",
        "score_column": "y_pred_proba",
        "prediction_column": "pred",
    }
    config["sources"] = {
        "predictions": [{"paths": ["serving/predictions*.jsonl"]}],
        "labels": [{"paths": ["serving/labels*.jsonl"]}],
    }
    config["storage"] = {"url": db_url}
    config["workspace"] = "."
    config["performance"] = {**config.get("performance", {}), "label_delay": "12h"}
    config.pop("alerts", None)  # console alerts: no Slack token in a test
    (tmp_path / "driftd.yaml").write_text(yaml.safe_dump(config))
    yield tmp_path / "driftd.yaml"


def test_own_model_quiet_when_stationary_and_finds_the_shift(own_model: Path) -> None:
    cfg = str(own_model)
    before = invoke("check", "-c", cfg)
    assert before.exit_code in (0, 1), before.output
    assert "Traceback" not in before.output
    once = invoke("once", "--json", "-c", cfg)
    assert once.exit_code == 0, once.output
    status = json.loads(invoke("status", "--json", "-c", cfg).stdout)

    windows = {datetime.fromisoformat(w["start"]): w for w in status["windows"]}
    assert len(windows) == STATIONARY_HOURS + DRIFT_HOURS
    drift_from = (START + timedelta(hours=STATIONARY_HOURS)).replace(minute=0)
    for start, window in windows.items():
        stats = window["statistics"]
        if start < drift_from:  # the partial first window included
            assert not stats["dataset_drift"], (start, stats)
            assert not stats["drifted_columns"], (start, stats)
            assert not stats["quality_failed"], (start, stats)
        else:
            drifted = {c["column"] for c in stats["drifted_columns"]}
            assert set(SHIFTED) <= drifted, (start, stats)
    assert list(windows)[0] == START.replace(minute=0)
    assert windows[START.replace(minute=0)]["predictions"] == 9

    open_rules = {a["rule"] for a in status["alerts"]["open"]}
    assert "column_drift" in open_rules
    assert not open_rules & {"ingestion", "source", "job_failed"}, open_rules
    with App(load(own_model)) as application:  # what alerted, alerted on the shift
        for incident in application.alert_repository.incidents(model="tumour"):
            if incident.last_window is not None:
                assert incident.last_window >= drift_from, incident
    realized = [
        w["performance"]
        for start, w in windows.items()
        if start < drift_from and w["performance"] and w["performance"]["realized"]
    ]
    assert realized, "labels matured for the stationary windows"
