"""The shadow job as the daemon runs it, on real parts: the demo's seeded card-fraud
traffic ingested from JSON Lines, scikit-learn models registered in a real MLflow store,
driftd's store on SQLite and PostgreSQL.

After the upstream change, a model trained on the drifted traffic is truly better than
the one trained before it: as challenger it wins in shadow and goes to the A/B test; the
other way round it loses, is rejected and loses its alias in driftd and in MLflow.
Scoring is incremental and survives a restart; no verdict before the labels mature."""

from __future__ import annotations

import json
import pickle
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
import yaml
from typer.testing import CliRunner

from alerts.sinks import ConsoleSink
from driftd import shadowing
from driftd.app import App
from driftd.cli import app as cli
from driftd.config import load
from driftd.demo import data
from driftd.experiments import registry
from driftd.serve.models import SklearnModel
from monitor.records import FeatureType
from retrain.registry import Registry
from storage.experiment import ExperimentRepository, ShadowInput
from storage.experiment_state import AB, REJECTED, SHADOW, ExperimentStates

START = datetime(2026, 11, 2, tzinfo=UTC)
CHALLENGER_AT = START + timedelta(hours=1)  # the challenger alias is set
HOURS, PER_HOUR = 6, 250
LATER = START + timedelta(hours=HOURS + 4)  # every row served more than 3h ago
NUMERIC = [n for n, k in data.FEATURES.items() if k != "categorical"]
CATEGORICAL = [n for n, k in data.FEATURES.items() if k == "categorical"]


def fit(frame: pd.DataFrame, y: np.ndarray, *, unknown: str = "ignore", extra: bool = False) -> Any:
    """A small gradient-boosting pipeline (seconds to fit, unlike the demo's)."""
    from sklearn.compose import ColumnTransformer
    from sklearn.ensemble import HistGradientBoostingClassifier
    from sklearn.pipeline import Pipeline
    from sklearn.preprocessing import OneHotEncoder

    columns = NUMERIC + (["merchant_id"] if extra else [])
    pre = ColumnTransformer(
        [
            ("num", "passthrough", columns),
            ("cat", OneHotEncoder(handle_unknown=unknown, sparse_output=False), CATEGORICAL),
        ]
    )
    clf = HistGradientBoostingClassifier(max_iter=60, max_leaf_nodes=15, random_state=0)
    frame = frame.assign(merchant_id=np.arange(len(frame)) % 7) if extra else frame
    return Pipeline([("pre", pre), ("clf", clf)]).fit(frame[columns + CATEGORICAL], y)


def drifted_training_set() -> pd.DataFrame:
    """Labelled traffic after the upstream change (another seed than the test's)."""
    stream = data.ProductionStream(
        model=_Constant(),
        start=START - timedelta(days=7),
        rows_per_hour=1000,
        drift_at_hour=0,
        seed=77,
        malformed_rate=0.0,
        label_delay_hours=(0, 0),
    )
    predictions, labels = [], {}
    for h in range(6):
        batch = stream.hour(h)
        predictions += batch.predictions
        labels |= {label["id"]: label["label"] for label in batch.labels}
    frame = pd.DataFrame([p["features"] for p in predictions])
    frame[data.TARGET] = [labels.get(p["id"]) for p in predictions]
    return frame.dropna(subset=[data.TARGET])


class _Constant:
    """A stand-in model for drawing traffic whose scores are not used."""

    def predict_proba(self, frame: pd.DataFrame) -> np.ndarray:
        return np.tile([0.9, 0.1], (len(frame), 1))


@dataclass(frozen=True)
class Models:
    before: Any  # trained before the upstream change
    after: Any  # trained on the drifted traffic
    broken: Any  # needs a feature the logs do not carry
    strict: Any  # refuses categories it has not seen (the new country)


@pytest.fixture(scope="module")
def models() -> Models:
    from threadpoolctl import threadpool_limits

    reference = data.make_reference(6000, seed=5)
    drifted = drifted_training_set()
    y_ref, y_drift = reference[data.TARGET].to_numpy(), drifted[data.TARGET].astype(int).to_numpy()
    with threadpool_limits(1):  # OpenMP threads only wait for each other on a busy machine
        return Models(
            before=fit(reference, y_ref),
            after=fit(drifted, y_drift),
            broken=fit(reference, y_ref, extra=True),
            strict=fit(reference, y_ref, unknown="error"),
        )


@pytest.fixture(scope="module")
def mlflow_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("mlflow")


def write_logs(path: Path, model: Any, hours: range) -> None:
    """The champion's predictions (after the change) and their labels, 0-2h later."""
    stream = data.ProductionStream(
        model=model,
        start=START,
        rows_per_hour=PER_HOUR,
        drift_at_hour=0,
        seed=5,
        malformed_rate=0.0,
        label_delay_hours=(0, 2),
    )
    predictions, labels = [], []
    for h in hours:
        batch = stream.hour(h)
        predictions += batch.predictions
        labels += batch.labels
    data.write_jsonl(path / f"predictions-{hours.start}.jsonl", predictions)
    data.write_jsonl(path / f"labels-{hours.start}.jsonl", labels)


def workspace(tmp_path: Path, db_url: str, mlflow_dir: Path, **shadow: Any) -> Path:
    data.make_reference(2000, seed=1005).to_csv(tmp_path / "reference.csv", index=False)
    (tmp_path / "logs").mkdir()
    config = {
        "model": {"name": "card-fraud"},
        "reference": {"path": "reference.csv", "target": data.TARGET},
        "sources": {
            "predictions": [{"paths": ["logs/predictions*.jsonl"]}],
            "labels": [{"paths": ["logs/labels*.jsonl"]}],
        },
        "windows": {"size": "6h"},
        "storage": {"url": db_url},
        "workspace": ".",
        "performance": {"label_delay": "3h"},
        "registry": {
            "tracking_uri": f"sqlite:///{mlflow_dir / 'mlflow.db'}",
            "name": f"card-fraud-{uuid.uuid4().hex[:8]}",
        },
        "shadow": {"min_sample": 600, "batch_size": 500, **shadow},
    }
    (tmp_path / "driftd.yaml").write_text(yaml.safe_dump(config))
    return tmp_path / "driftd.yaml"


class Clock:
    def __init__(self, now: datetime) -> None:
        self.now = now

    def __call__(self) -> datetime:
        return self.now


def register(app: App, tmp_path: Path, champion: Any, challenger: Any) -> Registry:
    """The champion in production since START, the challenger set at CHALLENGER_AT."""
    reg = registry(app)
    for name, model in (("champion", champion), ("challenger", challenger)):
        with open(tmp_path / f"{name}.pkl", "wb") as fh:
            pickle.dump(model, fh)
        reg.clock = lambda: START if name == "champion" else CHALLENGER_AT  # noqa: B023
        reg.register_existing(str(tmp_path / f"{name}.pkl"), reason=name, by="test", alias=name)
    return reg


@pytest.fixture
def lines() -> list[str]:
    return []


@pytest.fixture
def clock() -> Clock:
    return Clock(LATER)


def run(app: App) -> dict[str, Any]:
    from threadpoolctl import threadpool_limits

    with threadpool_limits(1):  # as in `models`: faster on a busy machine
        results = app.daemon().run_once(["ingest", "shadow"])
    outcome, summary = results["shadow"]
    assert outcome == "ok", summary
    return dict(summary)


@pytest.fixture
def build(
    tmp_path: Path, db_url: str, mlflow_dir: Path, lines: list[str], clock: Clock
) -> Iterator[Any]:
    apps: list[App] = []

    def make(champion: Any, challenger: Any, **shadow: Any) -> tuple[App, Registry]:
        cfg = workspace(tmp_path, db_url, mlflow_dir, **shadow)
        write_logs(tmp_path / "logs", champion, range(HOURS))
        app = App(load(cfg), sink=ConsoleSink(write=lines.append), clock=clock).open()
        apps.append(app)
        return app, register(app, tmp_path, champion, challenger)

    yield make
    for app in apps:
        app.close()


def driftd(*args: str) -> str:
    result = CliRunner().invoke(cli, list(args), catch_exceptions=False)
    assert result.exit_code == 0, result.output
    return result.output


def test_a_truly_better_challenger_wins_in_shadow_and_goes_to_ab(
    build: Any, models: Models, lines: list[str], tmp_path: Path
) -> None:
    app, reg = build(models.before, models.after)
    summary = run(app)
    served_since = (HOURS - 1) * PER_HOUR  # the champion's rows after the alias move
    assert summary["scored"] == served_since and summary["failed"] == 0
    shadow = summary["shadow"]
    assert shadow["verdict"] == "better" and shadow["final"], shadow["reason"]
    assert shadow["n"] == 600 and shadow["labelled"] > 600
    accuracy, cost = shadow["comparisons"]
    assert (accuracy["metric"], cost["metric"]) == ("accuracy", "cost")
    assert accuracy["challenger"] > accuracy["champion"] and accuracy["p_better"] < 0.025
    assert cost["verdict"] != "worse"

    exp = ExperimentStates(app.store).get(reg.name, "2")
    assert exp is not None and exp.phase == AB
    assert (exp.reason or "").startswith("shadow verdict better: challenger better on accuracy")
    assert exp.details["shadow"]["verdict"] == "better"
    assert reg.aliases() == {"champion": "1", "challenger": "2"}  # on to the A/B test

    told = [line for line in lines if "shadow verdict better" in line]
    assert len(told) == 1 and "McNemar" in told[0] and "next: the A/B test" in told[0]
    incidents = [
        i for i in app.alert_repository.incidents(model="card-fraud") if i.rule == "experiment"
    ]
    assert [(i.scope, i.state) for i in incidents] == [("shadow", "resolved")]

    status = app.status()["experiment"]
    assert status["challenger"] == "2" and status["phase"] == AB
    assert status["shadow"]["rows"] == served_since
    assert status["shadow"]["verdict"] == "better" and status["shadow"]["n"] == 600

    again = run(app)  # no longer in shadow: nothing is scored again
    assert again["experiment"]["phase"] == AB and "scored" not in again

    config = str(tmp_path / "driftd.yaml")
    shown = json.loads(driftd("models", "show", "2", "--json", "-c", config))
    assert shown["experiment"]["phase"] == AB
    assert shown["experiment"]["shadow"]["verdict"] == "better"
    assert shown["experiment"]["shadow"]["comparisons"][0]["metric"] == "accuracy"
    assert json.loads(driftd("models", "show", "1", "--json", "-c", config))["experiment"] is None
    text = driftd("status", "-c", config)
    assert "experiment: challenger v2 vs v1: ab since" in text
    assert f"shadow: {served_since} rows scored (0 failed)" in text
    assert "verdict better (final) on 600 rows" in text


def test_a_worse_challenger_is_rejected_and_loses_its_alias(
    build: Any, models: Models, lines: list[str], tmp_path: Path
) -> None:
    app, reg = build(models.after, models.before)
    summary = run(app)
    assert summary["shadow"]["verdict"] == "worse" and summary["shadow"]["final"]
    assert summary["cleared"] == "2"
    exp = ExperimentStates(app.store).get(reg.name, "2")
    assert exp is not None and exp.phase == REJECTED and exp.finished_at == app.clock()
    assert "challenger worse on accuracy" in (exp.reason or "")

    assert reg.aliases() == {"champion": "1"}
    last = reg.repository.alias_history(reg.name)[-1]
    assert (last.alias, last.from_version, last.to_version) == ("challenger", "2", None)
    assert last.moved_by == "driftd shadow" and "shadow verdict worse" in last.reason
    mlflow_aliases = reg.client.get_registered_model(reg.name).aliases
    assert {alias: str(v) for alias, v in mlflow_aliases.items()} == {"champion": "1"}
    assert any("shadow verdict worse" in line and "rejected" in line for line in lines)
    shown = driftd("models", "show", "2", "-c", str(tmp_path / "driftd.yaml"))
    assert "experiment: challenger v2 vs v1: rejected since" in shown
    assert f"shadow: {(HOURS - 1) * PER_HOUR} rows scored (0 failed)" in shown
    assert "accuracy: champion" in shown and "McNemar" in shown


def test_no_verdict_before_labels_mature_and_scoring_is_incremental(
    build: Any, models: Models, clock: Clock, tmp_path: Path
) -> None:
    clock.now = START + timedelta(hours=HOURS)  # rows before 3h matured: < 1200 of them
    app, reg = build(models.before, models.after, min_sample=1200)
    first = run(app)
    assert first["scored"] == (HOURS - 1) * PER_HOUR
    shadow = first["shadow"]
    assert shadow["verdict"] == "no evidence" and not shadow["final"]
    assert 0 < shadow["labelled"] < 1200
    assert "the verdict is taken on 1200" in shadow["reason"]
    exp = ExperimentStates(app.store).get(reg.name, "2")
    assert exp is not None and exp.phase == SHADOW
    assert exp.details["shadow"]["rows"] == (HOURS - 1) * PER_HOUR  # noted each run

    assert run(app)["scored"] == 0  # nothing new
    write_logs(tmp_path / "logs", models.before, range(HOURS, HOURS + 2))
    assert run(app)["scored"] == 2 * PER_HOUR  # only the new rows

    shadowing._models.clear()  # a restart: a new process, nothing loaded
    restarted = App(load(tmp_path / "driftd.yaml"), clock=clock).open()
    try:
        again = run(restarted)
        assert again["scored"] == 0 and not shadowing._models  # no load when nothing to score
        clock.now = LATER + timedelta(hours=2)  # now the labels have matured
        final = run(restarted)
        assert final["scored"] == 0 and final["shadow"]["final"]
        assert final["experiment"]["phase"] == AB
    finally:
        restarted.close()
    total, failed = ExperimentRepository(app.store).shadow_counts("card-fraud", "2")
    assert (total, failed) == ((HOURS + 1) * PER_HOUR, 0)  # each row scored once


def test_a_challenger_that_fails_on_most_rows_is_rejected(
    build: Any, models: Models, db_url: str
) -> None:
    if not db_url.startswith("sqlite"):
        pytest.skip("the failure path is the job's, not the store's: one backend is enough")
    app, reg = build(models.before, models.broken)
    summary = run(app)
    assert summary["failed"] == summary["scored"] == (HOURS - 1) * PER_HOUR
    assert summary["shadow"]["verdict"] == "worse" and summary["shadow"]["final"]
    exp = ExperimentStates(app.store).get(reg.name, "2")
    assert exp is not None and exp.phase == REJECTED
    rows = (HOURS - 1) * PER_HOUR
    assert f"the challenger failed on {rows} of the {rows} rows" in (exp.reason or "")
    assert "merchant_id" in (exp.reason or "")
    assert "challenger" not in reg.aliases()


def test_rows_a_model_fails_on_fail_alone(models: Models) -> None:
    """The strict model refuses the new country (5% of the drifted rows): those rows
    are counted, the others of the batch are scored."""
    stream = data.ProductionStream(
        model=models.before, start=START, rows_per_hour=100, drift_at_hour=0, seed=9,
        malformed_rate=0.0,
    )  # fmt: skip
    predictions = stream.hour(0).predictions
    rows = [ShadowInput(i, p["id"], START, p["features"]) for i, p in enumerate(predictions)]
    schema = {name: FeatureType(kind) for name, kind in data.FEATURES.items()}
    from threadpoolctl import threadpool_limits

    scorer = shadowing.Scorer(SklearnModel(models.strict, "3"), schema, 0.5)
    with threadpool_limits(1):
        scores = scorer.score(rows)
    new_country = [p["features"]["country"] == data.NEW_COUNTRY for p in predictions]
    assert scorer.failed == sum(new_country) > 0 and scorer.ok == len(rows) - scorer.failed
    assert "unknown categories" in (scorer.first_error or "")
    assert [s.score is None for s in scores] == new_country
    assert all(0 <= (s.score or 0) <= 1 for s in scores)
