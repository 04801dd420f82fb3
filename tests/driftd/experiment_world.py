"""A champion and a challenger on live traffic, for the experiment job's tests.

Two real scikit-learn pipelines on a seeded binary task (tests/retrain's): a weak
champion (so strongly regularised it predicts little more than the base rate) and a
proper challenger, registered in a real MLflow store in the workspace. Traffic is
written as prediction and label logs in driftd's contract, each request's arm chosen by
``driftd serve``'s own hash of its id, and ingested by the ingest job.
"""

from __future__ import annotations

import functools
import pickle
import tempfile
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import numpy as np
import yaml

from alerts.sinks import ConsoleSink
from driftd.app import App
from driftd.config import load
from driftd.config_retrain import build_registry
from driftd.demo.data import write_jsonl
from driftd.serve.scoring import assign_variant
from retrain.flavors import import_mlflow
from retrain.registry import Registry
from storage.experiment_state import AB, Experiment, ExperimentStates
from tests.retrain.conftest import sklearn_pipeline, task

START = datetime(2026, 11, 2, tzinfo=UTC)
SCHEMA = {"amount": "numeric", "age": "numeric", "country": "categorical"}


class Clock:
    def __init__(self, now: datetime) -> None:
        self.now = now

    def __call__(self) -> datetime:
        return self.now


@dataclass
class World:
    root: Path
    config: Path
    models: dict[str, Any]
    clock: Clock
    lines: list[str] = field(default_factory=list)
    written: int = 0

    def app(self) -> App:
        return App(load(self.config), sink=ConsoleSink(write=self.lines.append), clock=self.clock)

    def serve(
        self,
        app: App,
        start: datetime,
        hours: int,
        per_hour: int,
        *,
        arms: Mapping[str, str],
        share: float | None = 0.5,
        seed: int = 0,
        flip_labels: bool = False,
    ) -> None:
        """``hours`` of traffic from ``start``: request ids hashed into arms with
        ``share`` (None: every row to the champion's arm); ``arms`` names the model that
        serves each arm; labels follow the task (inverted with ``flip_labels``)."""
        rows = hours * per_hour
        frame, y = task(rows, seed=seed)
        if flip_labels:
            y = 1 - y
        ids = [f"r{seed}-{self.written + i}" for i in range(rows)]
        self.written += rows
        variants = [
            "champion" if share is None else assign_variant(i, share, has_challenger=True)
            for i in ids
        ]
        scores: dict[str, np.ndarray] = {
            arm: self.models[name].predict_proba(frame)[:, 1] for arm, name in arms.items()
        }
        predictions, labels = [], []
        step = timedelta(hours=1) / per_hour
        for k, (rid, variant) in enumerate(zip(ids, variants, strict=True)):
            ts = (start + k * step).isoformat().replace("+00:00", "Z")
            score = float(scores[variant][k])
            predictions.append(
                {
                    "id": rid,
                    "ts": ts,
                    "model_version": variant,
                    "variant": variant,
                    "features": {
                        "amount": float(frame["amount"].iloc[k]),
                        "age": float(frame["age"].iloc[k]),
                        "country": str(frame["country"].iloc[k]),
                    },
                    "prediction": int(score >= 0.5),
                    "score": score,
                }
            )
            labels.append({"id": rid, "label": int(y[k]), "ts": ts})
        write_jsonl(self.root / "logs" / "predictions.jsonl", predictions)
        write_jsonl(self.root / "logs" / "labels.jsonl", labels)
        app.daemon().run_once(["ingest"])

    def registry(self, app: App) -> Registry:
        return build_registry(app.config, app.store)

    def ab(self, app: App, challenger: str, champion: str, at: datetime) -> Experiment:
        """The experiment of ``challenger`` in its A/B phase since ``at`` (as the shadow
        job leaves it after a better verdict)."""
        return ExperimentStates(app.store).start(
            app.model,
            challenger,
            champion=champion,
            now=at,
            reason="shadow verdict better (test)",
            phase=AB,
        )


@functools.cache
def empty_mlflow_store() -> bytes:
    """An MLflow SQLite store with its tables made, as the registry's first call leaves
    it: MLflow's migrations take a second or more, so they run once and each world
    starts from a copy."""
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "mlflow.db"
        import_mlflow().MlflowClient(tracking_uri=f"sqlite:///{path}").search_experiments()
        return path.read_bytes()


def make_world(tmp_path: Path, db_url: str, experiment: Mapping[str, Any]) -> World:
    frame, y = task(4000, seed=1)
    models = {
        "weak": sklearn_pipeline(frame, y, c=1e-5),
        "good": sklearn_pipeline(frame, y, c=1.0),
    }
    for name, model in models.items():
        with open(tmp_path / f"{name}.pkl", "wb") as fh:
            pickle.dump(model, fh)
    reference = frame.assign(y=y, score=models["good"].predict_proba(frame)[:, 1])
    reference["prediction"] = (reference["score"] >= 0.5).astype(int)
    reference.to_csv(tmp_path / "reference.csv", index=False)
    (tmp_path / "logs").mkdir()
    (tmp_path / "mlflow.db").write_bytes(empty_mlflow_store())  # the registry's default
    config = {
        "model": {"name": "fraud"},
        "schema": SCHEMA,
        "reference": {
            "path": "reference.csv",
            "target": "y",
            "score_column": "score",
            "prediction_column": "prediction",
        },
        "sources": {
            "predictions": [{"paths": ["logs/predictions*.jsonl"]}],
            "labels": [{"paths": ["logs/labels*.jsonl"]}],
        },
        "windows": {"size": "1h"},
        "storage": {"url": db_url},
        "workspace": ".",
        "alerts": {"min_interval": 0},  # no pacing between console lines: nothing to wait for
        "performance": {"label_delay": "1h", "metrics": ["accuracy"]},
        "experiment": dict(experiment),
    }
    (tmp_path / "driftd.yaml").write_text(yaml.safe_dump(config))
    return World(tmp_path, tmp_path / "driftd.yaml", models, Clock(START))


def register(world: World, app: App) -> tuple[str, str]:
    """The weak model as champion, the good one as challenger."""
    reg = world.registry(app)
    one = reg.register_existing(str(world.root / "weak.pkl"), reason="production", by="test")
    two = reg.register_existing(
        str(world.root / "good.pkl"), reason="retrained", by="test", alias="challenger"
    )
    return one, two


def incidents(app: App, rule: str) -> list[tuple[str, str]]:
    return [
        (i.scope, i.summary)
        for i in app.alert_repository.incidents(model="fraud")
        if i.rule == rule
    ]
