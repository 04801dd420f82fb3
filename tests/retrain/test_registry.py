"""The registry on MLflow: runs with their lineage, versions, aliases, digest checks."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import numpy as np
import pytest

from retrain.errors import RetrainError
from retrain.registry import DIGEST_TAG, Registry, TrainingRun

from .conftest import Candidate, sklearn_pipeline, task

WINDOW = (datetime(2026, 11, 1, tzinfo=UTC), datetime(2026, 11, 29, tzinfo=UTC))


def training(parent: str | None = None, trigger: str = "drift") -> TrainingRun:
    return TrainingRun(
        trigger=trigger,
        reason="dataset drift in each of the last 3 windows",
        params={"kind": "sklearn", "seed": 7},
        metrics={"roc_auc": 0.81, "log_loss": 0.52},
        gates={"beats_champion": {"passed": True, "value": 0.013}, "slices": {"passed": True}},
        window=WINDOW,
        rows={"train": 280, "validation": 60, "test": 60},
        parent=parent,
    )


def test_a_training_is_an_mlflow_run_with_its_lineage_and_a_registered_version(
    registry: Registry,
) -> None:
    frame, y = task()
    candidate = Candidate("sklearn", sklearn_pipeline(frame, y))

    version = registry.log_training(candidate, training(parent="3"))

    assert version == "1"
    record = registry.repository.version(registry.name, "1")
    assert record is not None and record.digest is not None and len(record.digest) == 64
    assert record.parent_version == "3" and record.framework == "sklearn"
    assert record.details["rows"] == {"train": 280, "validation": 60, "test": 60}
    mv = registry.client.get_model_version(registry.name, "1")
    assert mv.tags[DIGEST_TAG] == record.digest
    run = registry.client.get_run(mv.run_id)
    assert run.data.params["trainer.seed"] == "7"
    assert run.data.params["rows.train"] == "280"
    assert run.data.params["window.start"] == WINDOW[0].isoformat()
    assert run.data.metrics["roc_auc"] == pytest.approx(0.81)
    assert run.data.metrics["gate.beats_champion"] == pytest.approx(0.013)
    assert run.data.tags["driftd.trigger"] == "drift"
    assert run.data.tags["driftd.parent_version"] == "3"
    assert run.data.tags["driftd.gate.slices"] == "passed"
    assert run.data.tags[DIGEST_TAG] == record.digest
    assert run.data.tags["driftd.version"]
    # serialized with skops, not pickle
    mlmodel = registry.client.download_artifacts(mv.run_id, "gates.json")
    assert Path(mlmodel).read_text().startswith("{")


def test_a_loaded_version_scores_as_the_candidate_did(registry: Registry) -> None:
    frame, y = task()
    candidate = Candidate("sklearn", sklearn_pipeline(frame, y))
    version = registry.log_training(candidate, training())
    registry.move({"champion": version}, by="alice", reason="first model")

    loaded = registry.load("champion")

    assert (loaded.version, loaded.framework) == (version, "sklearn")
    np.testing.assert_allclose(loaded.predict_scores(frame), candidate.predict_scores(frame))
    # the columns a pipeline was fitted on are selected: extra columns do no harm
    np.testing.assert_allclose(
        loaded.predict_scores(frame.assign(extra=1.0)), candidate.predict_scores(frame)
    )
    assert str(registry.client.get_model_version_by_alias(registry.name, "champion").version) == "1"


def test_a_tampered_artifact_is_refused_on_load(registry: Registry) -> None:
    frame, y = task()
    version = registry.log_training(Candidate("sklearn", sklearn_pipeline(frame, y)), training())
    assert version is not None
    source = registry.client.get_model_version_download_uri(registry.name, version)
    artifact = Path(source.removeprefix("file://")) / "model.skops"
    assert artifact.is_file()
    # someone swaps in another, perfectly loadable model in the artifact store
    import skops.io

    artifact.write_bytes(skops.io.dumps(sklearn_pipeline(frame, 1 - y)))

    with pytest.raises(RetrainError, match=r"version '1' .* was altered.*refusing to load"):
        registry.load(version)


def test_promote_and_rollback_move_aliases_as_recorded_decisions(registry: Registry) -> None:
    frame, y = task()
    v1 = registry.log_training(Candidate("sklearn", sklearn_pipeline(frame, y)), training())
    v2 = registry.log_training(
        Candidate("sklearn", sklearn_pipeline(frame, y, c=0.1)), training(parent=v1)
    )
    registry.move({"champion": v1}, by="import", reason="what production serves")
    registry.move({"challenger": v2}, by="retrain", reason="passed the gates")

    registry.promote(by="bob", reason="won the A/B test")

    assert registry.aliases() == {"champion": "2", "previous": "1"}
    mlflow_aliases = registry.client.get_registered_model(registry.name).aliases
    assert {k: str(v) for k, v in mlflow_aliases.items()} == {"champion": "2", "previous": "1"}
    history = registry.repository.alias_history(registry.name)
    promotion = [m for m in history if m.reason == "won the A/B test"]
    assert len({m.move for m in promotion}) == 1  # one decision
    assert {(m.alias, m.from_version, m.to_version) for m in promotion} == {
        ("champion", "1", "2"),
        ("previous", None, "1"),
        ("challenger", "2", None),
    }
    assert {m.moved_by for m in promotion} == {"bob"}

    registry.rollback(by="carol", reason="guardrail: fnr up 4 points")

    assert registry.aliases() == {"champion": "1"}
    mlflow_aliases = registry.client.get_registered_model(registry.name).aliases
    assert {k: str(v) for k, v in mlflow_aliases.items()} == {"champion": "1"}
    with pytest.raises(RetrainError, match="no previous version to roll back to"):
        registry.rollback(by="carol", reason="again")
    assert len(registry.repository.alias_history(registry.name)) == len(history) + 2


def test_driftd_record_wins_over_a_hand_edit_in_mlflow(registry: Registry) -> None:
    frame, y = task()
    v1 = registry.log_training(Candidate("sklearn", sklearn_pipeline(frame, y)), training())
    v2 = registry.log_training(Candidate("sklearn", sklearn_pipeline(frame, 1 - y)), training())
    assert v1 and v2
    registry.move({"champion": v1}, by="alice", reason="first model")
    registry.client.set_registered_model_alias(registry.name, "champion", v2)  # by hand

    assert registry.load("champion").version == v1
    registry.sync_aliases()
    assert str(registry.client.get_model_version_by_alias(registry.name, "champion").version) == v1


def test_unknown_versions_and_aliases_are_refused_by_name(registry: Registry) -> None:
    with pytest.raises(RetrainError, match=r"no model version '9' in registry 'fraud-"):
        registry.load("9")
    with pytest.raises(RetrainError, match=r"alias 'champion' is not set"):
        registry.load("champion")
    with pytest.raises(RetrainError, match=r"unknown alias\(es\) \['prod'\]"):
        registry.move({"prod": "1"}, by="x", reason="y")
