"""The retrain job on stored signals, as the daemon runs it: suggest mode alerts and
trains nothing; a training (by hand or by a trigger in auto mode) builds the training set
from the store, gates the candidate against the registered champion, logs it in MLflow
and points `challenger` at it; the cooldown holds the next one back."""

from __future__ import annotations

import pickle
import shutil
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import yaml

from alerts.sinks import ConsoleSink
from driftd.app import App
from driftd.config import load
from driftd.config_retrain import build_registry
from driftd.demo import data
from driftd.retraining import retrain
from storage.experiment_state import ExperimentStates
from storage.models import ModelRepository

START = datetime(2026, 11, 2, tzinfo=UTC)
HOURS, DRIFT_AT, PER_HOUR = 48, 12, 400
NOW = START + timedelta(hours=HOURS + 1)


@pytest.fixture(scope="module")
def seeded(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The baseline model, the reference and 48 hours of its logs, made once per module
    (training the baseline and scoring the traffic take seconds): each test copies them."""
    root = tmp_path_factory.mktemp("seeded")
    model = data.train_baseline(data.make_reference(6000, seed=5), seed=5)
    with open(root / "baseline.pkl", "wb") as fh:
        pickle.dump(model, fh)
    reference = data.make_reference(4000, seed=1005)
    reference["score"] = data.score(model, reference)
    reference["prediction"] = (reference["score"] >= 0.5).astype(int)
    reference.to_csv(root / "reference.csv", index=False)
    stream = data.ProductionStream(
        model=model,
        start=START,
        rows_per_hour=PER_HOUR,
        drift_at_hour=DRIFT_AT,
        seed=5,
        malformed_rate=0.0,
        label_delay_hours=(0, 2),
    )
    (root / "logs").mkdir()
    predictions: list[Any] = []
    labels: list[Any] = []
    for h in range(HOURS):
        batch = stream.hour(h)
        predictions += batch.predictions
        labels += batch.labels
    data.write_jsonl(root / "logs" / "predictions.jsonl", predictions)
    data.write_jsonl(root / "logs" / "labels.jsonl", labels)
    return root


def workspace(seeded: Path, tmp_path: Path, db_url: str, retrain_section: dict[str, Any]) -> Path:
    shutil.copytree(seeded, tmp_path, dirs_exist_ok=True)
    config = {
        "model": {"name": "card-fraud"},
        "reference": {
            "path": "reference.csv",
            "target": data.TARGET,
            "score_column": "score",
            "prediction_column": "prediction",
        },
        "sources": {
            "predictions": [{"paths": ["logs/predictions*.jsonl"]}],
            "labels": [{"paths": ["logs/labels*.jsonl"]}],
        },
        "windows": {"size": "6h"},
        "storage": {"url": db_url},
        "workspace": ".",
        "alerts": {"min_interval": 0},  # no pacing between console lines: nothing to wait for
        "performance": {
            "label_delay": "3h",
            "metrics": ["roc_auc"],
            "cost": {"fn": 120, "fp": 4, "currency": "EUR"},
        },
        "retrain": {
            "lookback": "7d",
            "test_window": "12h",
            "min_new_labels": 1000,
            "trainer": {"kind": "sklearn"},
            **retrain_section,
        },
    }
    (tmp_path / "driftd.yaml").write_text(yaml.safe_dump(config))
    return tmp_path / "driftd.yaml"


@pytest.fixture
def lines() -> list[str]:
    return []


def opened(application: App) -> list[tuple[str, str]]:
    return sorted(
        (i.rule, i.scope)
        for i in application.alert_repository.incidents(model="card-fraud")
        if i.rule in ("retraining", "training")
    )


@pytest.fixture
def suggest(seeded: Path, tmp_path: Path, db_url: str, lines: list[str]) -> Iterator[App]:
    cfg = workspace(seeded, tmp_path, db_url, {"triggers": {"realized_below": {"roc_auc": 0.8}}})
    sink = ConsoleSink(write=lines.append)
    with App(load(cfg), sink=sink, clock=lambda: NOW) as application:
        yield application


def test_suggest_mode_alerts_and_trains_nothing(suggest: App, lines: list[str]) -> None:
    results = suggest.daemon().run_once()
    outcome, summary = results["retrain"]
    assert outcome == "ok" and summary is not None
    assert summary["decision"] == "suggest", summary
    assert [f["trigger"] for f in summary["fired"]] == ["realized"]
    assert ("retraining", "model") in opened(suggest)
    assert any("retraining suggested" in line for line in lines)
    assert ModelRepository(suggest.store).trainings("card-fraud", limit=10) == []
    assert not (suggest.config.workspace / "mlflow.db").exists()


def test_no_retraining_while_a_challenger_is_on_trial(suggest: App, lines: list[str]) -> None:
    # a challenger in shadow: the trigger fires, but a new candidate would cut the trial
    # short, so nothing is suggested or trained until the trial ends
    states = ExperimentStates(suggest.store)
    states.start("card-fraud", "2", champion="1", now=START, reason="became challenger")
    # the trial is staged without aliases: the shadow and experiment jobs, which follow
    # the aliases, would call it superseded; this test is about the retrain job
    cycle = [job.name for job in suggest.jobs() if job.name not in ("shadow", "experiment")]
    summary = suggest.daemon().run_once(cycle)["retrain"][1]
    assert summary is not None and summary["decision"] == "blocked", summary
    assert summary["blocked"] == "challenger v2 is on trial (shadow)"
    assert [f["trigger"] for f in summary["fired"]] == ["realized"]
    assert ("retraining", "model") not in opened(suggest)
    # the trial over, the triggers speak again
    states.advance("card-fraud", "2", "rejected", expected="shadow", now=NOW, reason="worse")
    assert suggest.daemon().run_once(cycle)["retrain"][1]["decision"] == "suggest"


def test_a_new_champion_is_not_judged_by_its_predecessors_windows(
    tmp_path: Path, suggest: App
) -> None:
    registry = build_registry(suggest.config, suggest.store)
    baseline = str(tmp_path / "baseline.pkl")
    registry.register_existing(baseline, reason="in production", by="test", alias="champion")
    assert suggest.daemon().run_once()["retrain"][1]["decision"] == "suggest"
    # the same file as a new version, promoted now: the drifted windows were served by
    # version 1, so they no longer call for retraining version 2
    registry.register_existing(baseline, reason="retrained", by="test", alias="challenger")
    registry.promote(by="test", reason="won the A/B test")
    summary = suggest.daemon().run_once()["retrain"][1]
    assert summary is not None and summary["decision"] == "none", summary


def test_a_training_is_gated_registered_as_challenger_and_cooled_down(
    seeded: Path, tmp_path: Path, db_url: str, lines: list[str]
) -> None:
    cfg = workspace(
        seeded,
        tmp_path,
        db_url,
        {
            "mode": "auto",
            "cooldown": "1d",
            "triggers": {"realized_below": {"roc_auc": 0.8}},
            "trainer": {"kind": "keras", "max_epochs": 10},  # as the demo trains
        },
    )
    sink = ConsoleSink(write=lines.append)
    with App(load(cfg), sink=sink, clock=lambda: NOW) as application:
        registry = build_registry(application.config, application.store)
        champion = registry.register_existing(
            str(tmp_path / "baseline.pkl"), reason="in production", by="test", alias="champion"
        )
        results = application.daemon().run_once()
        outcome, summary = results["retrain"]
        assert outcome == "ok" and summary is not None, results["retrain"]
        assert summary["outcome"] == "registered", summary["attempt"]["gates"]["reason"]
        attempt = summary["attempt"]
        assert attempt["data_validation"]["passed"]
        gates = {g["name"]: g for g in attempt["gates"]["gates"]}
        assert gates and all(g["passed"] for g in gates.values())
        assert any(name.startswith("champion:") for name in gates)
        # the final test is the latest matured window, after the drift: the champion fails
        # there, the candidate trained on drifted rows does better on the same rows
        champion_gate = gates["champion:roc_auc"]
        assert champion_gate["candidate"] > champion_gate["reference"]

        version = summary["version"]
        assert registry.aliases() == {"champion": champion, "challenger": version}
        record = registry.record(version)
        assert record.digest and len(record.digest) == 64
        move = registry.repository.alias_history(registry.name)[-1]
        assert (move.alias, move.to_version, move.moved_by) == (
            "challenger",
            version,
            "driftd retrain",
        )
        assert "realized" in move.reason
        loaded = registry.load("challenger")  # digest checked on load
        assert loaded.version == version

        # the events were told once each and closed; nothing waits to resolve
        assert ("training", "started") in opened(application)
        assert ("training", "challenger") in opened(application)
        assert not [
            i
            for i in application.alert_repository.incidents(model="card-fraud", state="open")
            if i.rule == "training"
        ]
        assert any("registered as challenger" in line for line in lines)

        again = application.daemon().run_once()["retrain"][1]
        assert again is not None and again["decision"] == "blocked", again
        assert again["blocked"].startswith("cooldown until")
        trainings = ModelRepository(application.store).trainings("card-fraud", limit=10)
        assert [t.outcome for t in trainings] == ["registered"]


def test_a_manual_training_needs_no_trigger_and_reports_a_rejection(
    seeded: Path, tmp_path: Path, db_url: str
) -> None:
    cfg = workspace(
        seeded,
        tmp_path,
        db_url,
        {"gates": {"metric": "roc_auc", "min_value": 0.999}},  # out of reach: rejected
    )
    with App(load(cfg), clock=lambda: NOW) as application:
        application.daemon().run_once()
        result = retrain(application, manual_reason="drill")
        summary = dict(result.summary)
        assert summary["decision"] == "train" and summary["outcome"] == "rejected", summary
        assert summary["version"] is None
        failed = [g for g in summary["attempt"]["gates"]["gates"] if not g["passed"]]
        assert [g["kind"] for g in failed] == ["value"], failed
        assert build_registry(application.config, application.store).aliases() == {}
        event = result.evaluations[0].signals[0]
        assert (event.rule, event.scope) == ("training", "gates")
