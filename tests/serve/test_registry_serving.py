"""``driftd serve`` on the registry (MLflow): it serves the versions the aliases name,
follows the aliases when they move, and routes live traffic to the challenger only while
its experiment is in phase ``ab``."""

from __future__ import annotations

import warnings
from contextlib import ExitStack
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
import yaml

from driftd.cli_serve import build, load_config
from driftd.config_retrain import build_registry
from driftd.demo.data import FEATURES
from driftd.serve.scoring import bucket
from storage.experiment_state import ExperimentStates
from storage.store import Store
from tests.serve.conftest import features

with warnings.catch_warnings():
    warnings.simplefilter("ignore")
    from fastapi.testclient import TestClient

pytestmark = pytest.mark.slow


def ids_of(arm: str, n: int = 3) -> list[str]:
    """Request ids that the hash sends to ``arm`` at a 0.5 share."""
    found = [f"req-{i}" for i in range(200) if (bucket(f"req-{i}") < 0.5) == (arm == "challenger")]
    return found[:n]


def test_the_challenger_serves_only_while_its_experiment_is_in_phase_ab(
    tmp_path: Path, sqlite_url: str, model_files: dict[str, Path]
) -> None:
    config: dict[str, Any] = {
        "model": {"name": "fraud"},
        "sources": {"predictions": [{"paths": ["logs/predictions-*.jsonl"]}]},
        "schema": dict(FEATURES),
        "storage": {"url": sqlite_url},
        "workspace": ".",
        "experiment": {"challenger_share": 0.5},
        "serve": {"reload_interval": "1h"},
    }
    path = tmp_path / "driftd.yaml"
    path.write_text(yaml.safe_dump(config))
    loaded, serve = load_config(path)
    store = Store(loaded.storage_url)
    store.migrate()
    registry = build_registry(loaded, store)
    states = ExperimentStates(store)
    one = registry.register_existing(str(model_files["champion"]), reason="production", by="test")
    now = datetime(2026, 12, 5, tzinfo=UTC)

    with ExitStack() as resources:
        app = build(loaded, serve, resources)
        with TestClient(app) as client:

            def served(arm: str) -> set[tuple[str, str]]:
                answers = [
                    client.post("/predict", json={"id": i, "features": features()}).json()
                    for i in ids_of(arm)
                ]
                return {(a["variant"], a["model_version"]) for a in answers}

            models = app.state.predictor.models
            assert served("challenger") == {("champion", one)}

            two = registry.register_existing(
                str(model_files["challenger"]), reason="retrained", by="test", alias="challenger"
            )
            # a challenger without an experiment, then in shadow: no live traffic
            models.refresh()
            assert served("challenger") == {("champion", one)}
            states.start("fraud", two, champion=one, now=now, reason="new", phase="shadow")
            assert models.refresh() is True  # the phase is in the etag
            assert served("challenger") == {("champion", one)}
            assert client.get("/health").json()["challenger"] is None

            # the A/B test: the configured share of ids goes to the challenger
            states.advance("fraud", two, "ab", expected="shadow", now=now, reason="better")
            assert models.refresh() is True
            assert served("challenger") == {("challenger", two)}
            assert served("champion") == {("champion", one)}

            # stopped (a broken split): back to the champion alone
            states.advance("fraud", two, "stopped", expected="ab", now=now, reason="SRM")
            assert models.refresh() is True
            assert served("challenger") == {("champion", one)}

            registry.promote(two, by="test", reason="won the A/B test")
            assert models.refresh() is True
            assert served("challenger") | served("champion") == {("champion", two)}
    store.dispose()
