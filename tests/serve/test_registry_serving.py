"""``driftd serve`` on the registry (MLflow): it serves the versions the aliases name and
follows the aliases when they move."""

from __future__ import annotations

import warnings
from contextlib import ExitStack
from pathlib import Path
from typing import Any

import pytest
import yaml

from driftd.cli_serve import build, load_config
from driftd.config_retrain import build_registry
from driftd.demo.data import FEATURES
from storage.store import Store
from tests.serve.conftest import features

with warnings.catch_warnings():
    warnings.simplefilter("ignore")
    from fastapi.testclient import TestClient

pytestmark = pytest.mark.slow


def test_the_registry_aliases_serve_and_a_promotion_moves_the_traffic(
    tmp_path: Path, sqlite_url: str, model_files: dict[str, Path]
) -> None:
    config: dict[str, Any] = {
        "model": {"name": "fraud"},
        "sources": {"predictions": [{"paths": ["logs/predictions-*.jsonl"]}]},
        "schema": dict(FEATURES),
        "storage": {"url": sqlite_url},
        "workspace": ".",
        "serve": {"challenger_share": 1.0, "reload_interval": "1h"},
    }
    path = tmp_path / "driftd.yaml"
    path.write_text(yaml.safe_dump(config))
    loaded, serve = load_config(path)
    store = Store(loaded.storage_url)
    store.migrate()
    registry = build_registry(loaded, store)
    one = registry.register_existing(str(model_files["champion"]), reason="production", by="test")

    with ExitStack() as resources:
        app = build(loaded, serve, resources)
        with TestClient(app) as client:
            first = client.post("/predict", json={"id": "a", "features": features()}).json()
            assert (first["variant"], first["model_version"]) == ("champion", one)

            two = registry.register_existing(
                str(model_files["challenger"]), reason="retrained", by="test", alias="challenger"
            )
            models = app.state.predictor.models
            assert models.refresh() is True
            second = client.post("/predict", json={"id": "b", "features": features()}).json()
            assert (second["variant"], second["model_version"]) == ("challenger", two)

            registry.promote(by="test", reason="won the A/B test")
            assert models.refresh() is True
            third = client.post("/predict", json={"id": "c", "features": features()}).json()
            assert (third["variant"], third["model_version"]) == ("champion", two)
    store.dispose()
