"""``driftd models``, as a user types it: import the production model, list, show,
promote and roll back, each move kept in the alias log with who and why."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import joblib
import numpy as np
import pytest
import yaml
from typer.testing import CliRunner, Result

from driftd.cli import app
from driftd.config import load
from driftd.config_retrain import build_registry
from storage.store import Store

from ..retrain.conftest import sklearn_pipeline, task

runner = CliRunner()
ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture
def config(tmp_path: Path, db_url: str) -> str:
    data = {
        "model": {"name": "fraud"},
        "sources": {"predictions": [{"paths": ["logs/*.jsonl"]}]},
        "storage": {"url": db_url},
        "workspace": "ws",
    }
    path = tmp_path / "driftd.yaml"
    path.write_text(yaml.safe_dump(data))
    return str(path)


def driftd(*args: str) -> Result:
    return runner.invoke(app, list(args), catch_exceptions=False)


def test_import_list_promote_show_and_roll_back(config: str, tmp_path: Path) -> None:
    import skops.io

    frame, y = task()
    production, retrained = sklearn_pipeline(frame, y), sklearn_pipeline(frame, y, c=0.05)
    skops.io.dump(production, tmp_path / "model.skops")
    joblib.dump(retrained, tmp_path / "retrained.pkl")

    first = driftd("models", "register", str(tmp_path / "model.skops"), "-c", config)
    assert first.exit_code == 0, first.output
    assert "registered fraud v1" in first.output and "champion: v1" in first.output
    second = driftd(
        "models", "register", str(tmp_path / "retrained.pkl"), "--alias", "challenger",
        "--reason", "retrained offline", "--by", "alice", "-c", config,
    )  # fmt: skip
    assert second.exit_code == 0, second.output

    listed = driftd("models", "list", "-c", config)
    assert listed.output.splitlines()[0].startswith("v2 [challenger] sklearn")
    assert listed.output.splitlines()[1].startswith("v1 [champion] sklearn")

    promoted = driftd(
        "models", "promote", "--reason", "won the A/B test", "--by", "bob", "-c", config
    )
    assert promoted.exit_code == 0, promoted.output
    assert "champion: v1 -> v2" in promoted.output and "previous: v- -> v1" in promoted.output

    shown = json.loads(driftd("models", "show", "champion", "--json", "-c", config).output)
    assert shown["version"] == "2" and shown["aliases"] == ["champion"]
    assert len(shown["sha256"]) == 64 and shown["trigger"] == "import"
    assert [(m["alias"], m["by"], m["reason"]) for m in shown["alias_history"]] == [
        ("challenger", "alice", "retrained offline"),
        ("champion", "bob", "won the A/B test"),
        ("challenger", "bob", "won the A/B test"),
    ]

    rolled = driftd("models", "rollback", "--reason", "fnr guardrail", "-c", config)
    assert rolled.exit_code == 0, rolled.output
    assert "champion: v2 -> v1" in rolled.output

    # what driftd now serves is the production model, byte for byte the same scores
    loaded = load(config)
    store = Store(loaded.storage_url)
    try:
        champion = build_registry(loaded, store).load("champion")
    finally:
        store.dispose()
    assert champion.version == "1"
    np.testing.assert_allclose(
        champion.predict_scores(frame), production.predict_proba(frame)[:, 1]
    )
    assert (Path(loaded.workspace) / "mlflow.db").is_file()
    assert (Path(loaded.workspace) / "mlartifacts").is_dir()


def test_refusals_name_what_is_missing(config: str, tmp_path: Path) -> None:
    promote = driftd("models", "promote", "--reason", "r", "-c", config)
    assert promote.exit_code == 1
    assert "no challenger to promote in registry 'fraud'" in promote.output
    rollback = driftd("models", "rollback", "--reason", "r", "-c", config)
    assert "no previous version to roll back to" in rollback.output
    show = driftd("models", "show", "7", "-c", config)
    assert show.exit_code == 1 and "no model version '7' in registry 'fraud'" in show.output
    missing = driftd("models", "register", str(tmp_path / "nope.skops"), "-c", config)
    assert missing.exit_code == 1 and "no model file at" in missing.output
    (tmp_path / "model.onnx").write_bytes(b"x")
    unknown = driftd("models", "register", str(tmp_path / "model.onnx"), "-c", config)
    assert "unknown format '.onnx'" in unknown.output
    assert "no versions of 'fraud' yet" in driftd("models", "list", "-c", config).output


@pytest.mark.parametrize("db_url", ["sqlite"], indirect=True)
def test_register_from_an_mlflow_uri(config: str, tmp_path: Path) -> None:
    import skops.io

    frame, y = task()
    skops.io.dump(sklearn_pipeline(frame, y), tmp_path / "model.skops")
    assert driftd("models", "register", str(tmp_path / "model.skops"), "-c", config).exit_code == 0

    # a fresh process: the URI resolves against the configured registry, not ./mlruns
    again = python(
        "-c", "from driftd.cli import main; main()",
        "models", "register", "models:/fraud/1", "--alias", "none", "-c", config,
    )  # fmt: skip

    assert again.startswith("registered fraud v2")
    assert not (ROOT / "mlruns").exists() and not (tmp_path / "mlruns").exists()
    loaded = load(config)
    store = Store(loaded.storage_url)
    try:
        registry = build_registry(loaded, store)
        copy, original = registry.load("2"), registry.load("1")
        assert registry.aliases() == {"champion": "1"}
    finally:
        store.dispose()
    np.testing.assert_allclose(copy.predict_scores(frame), original.predict_scores(frame))


# TensorFlow runs in subprocesses: absl's log handler keeps the sys.stderr of the time it
# was imported and closes it when a later logging.dictConfig (every CLI command) replaces
# it, which would close pytest's capture stream under CliRunner.
KERAS_MODEL = """
import json, sys
import keras
sys.path.insert(0, sys.argv[2])
from tests.retrain.conftest import task
keras.utils.set_random_seed(0)
inputs = {c: keras.Input(shape=(1,), name=c) for c in ("amount", "age")}
joined = keras.layers.Concatenate()(list(inputs.values()))
model = keras.Model(inputs, keras.layers.Dense(1, activation="sigmoid")(joined))
model.save(sys.argv[1])
frame, _ = task()
print(json.dumps(model.predict({c: frame[c].to_numpy() for c in inputs}, verbose=0).ravel().tolist()))
"""

LOAD = """
import json, sys
from driftd.config import load
from driftd.config_retrain import build_registry
from storage.store import Store
from tests.retrain.conftest import task
config = load(sys.argv[1])
model = build_registry(config, Store(config.storage_url)).load(sys.argv[2])
frame, _ = task()
print(json.dumps({"version": model.version, "framework": model.framework,
                  "scores": model.predict_scores(frame).tolist()}))
"""


def python(*args: str) -> str:
    done = subprocess.run(
        [sys.executable, *args], capture_output=True, text=True, check=False, cwd=ROOT
    )
    assert done.returncode == 0, done.stderr[-3000:]
    return done.stdout


@pytest.mark.slow
@pytest.mark.parametrize("db_url", ["sqlite"], indirect=True)
def test_register_a_keras_file_as_challenger(config: str, tmp_path: Path) -> None:
    path = tmp_path / "model.keras"
    expected = json.loads(python("-c", KERAS_MODEL, str(path), str(ROOT)).splitlines()[-1])

    out = python(
        "-c", "from driftd.cli import main; main()",
        "models", "register", str(path), "--alias", "challenger", "-c", config,
    )  # fmt: skip

    assert "registered fraud v1" in out and "challenger: v1" in out
    loaded = json.loads(python("-c", LOAD, config, "challenger").splitlines()[-1])
    assert (loaded["version"], loaded["framework"]) == ("1", "keras")
    np.testing.assert_allclose(loaded["scores"], expected, rtol=1e-6)
