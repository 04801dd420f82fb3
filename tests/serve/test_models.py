"""The A/B split and the models behind it: stable per id, the configured share over many
ids, reloaded when an alias moves, the loaded ones kept when a reload fails."""

from __future__ import annotations

import math
import os
import shutil
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path

import joblib
import pytest

from driftd.serve.models import FileSource, RegistrySource, ServeError, SklearnModel
from driftd.serve.scoring import assign_variant, bucket
from tests.serve.conftest import Service, features


def test_the_arm_of_an_id_is_stable_and_the_share_holds_over_many_ids(
    service: Callable[..., Service], models_dir: dict[str, Path]
) -> None:
    s = service(share=0.3)
    versions = {
        "champion": FileSource(models_dir).load().champion.version,
        "challenger": FileSource(models_dir).load().challenger.version,  # type: ignore[union-attr]
    }
    served = {}
    for i in range(40):
        first = s.post({"id": f"user-{i}", "features": features(i)}).json()
        again = s.post({"id": f"user-{i}", "features": features(i + 1)}).json()
        assert again["variant"] == first["variant"]
        assert first["model_version"] == versions[first["variant"]]
        served[first["id"]] = first["variant"]
    assert set(served.values()) == {"champion", "challenger"}
    for line in s.lines():  # the log says which arm served, as the response did
        assert line["variant"] == served[line["id"]]

    n, share = 20_000, 0.3
    challenger = sum(
        assign_variant(f"r{i}", share, has_challenger=True) == "challenger" for i in range(n)
    )
    assert abs(challenger / n - share) < 4 * math.sqrt(share * (1 - share) / n)


def test_the_buckets_are_uniform_and_the_split_follows_the_share() -> None:
    buckets = [bucket(f"tx-{i}") for i in range(10_000)]
    assert all(0.0 <= b < 1.0 for b in buckets)
    deciles = [sum(int(b * 10) == d for b in buckets) for d in range(10)]
    assert max(abs(c - 1000) for c in deciles) < 4 * math.sqrt(1000 * 0.9)
    assert assign_variant("tx-1", 1.0, has_challenger=True) == "challenger"
    assert assign_variant("tx-1", 0.0, has_challenger=True) == "champion"
    assert assign_variant("tx-1", 1.0, has_challenger=False) == "champion"


def test_without_a_challenger_the_champion_serves_everything(
    service: Callable[..., Service], models_dir: dict[str, Path]
) -> None:
    s = service(share=0.9, source=FileSource({"champion": models_dir["champion"]}))
    variants = {
        s.post({"id": f"u{i}", "features": features(i)}).json()["variant"] for i in range(20)
    }
    assert variants == {"champion"}
    assert s.client.get("/health").json()["challenger"] is None


def test_replacing_a_model_file_moves_the_served_version(
    service: Callable[..., Service], models_dir: dict[str, Path], tmp_path: Path
) -> None:
    s = service(share=0.0)
    before = s.post({"id": "a", "features": features()}).json()["model_version"]
    staged = tmp_path / "staged.joblib"
    shutil.copy(models_dir["challenger"], staged)
    os.replace(staged, models_dir["champion"])  # the champion alias moves

    assert s.predictor.models.refresh() is True
    after = s.post({"id": "b", "features": features()}).json()["model_version"]
    assert after != before
    assert [line["model_version"] for line in s.lines()] == [before, after]
    assert s.predictor.models.refresh() is False  # nothing moved since


def test_the_reload_thread_notices_a_move_by_itself(
    service: Callable[..., Service], models_dir: dict[str, Path], tmp_path: Path
) -> None:
    s = service(share=0.0, reload_interval=timedelta(milliseconds=20))
    before = s.client.get("/health").json()["champion"]
    staged = tmp_path / "staged.joblib"
    shutil.copy(models_dir["challenger"], staged)
    os.replace(staged, models_dir["champion"])

    deadline = time.monotonic() + 20
    while s.client.get("/health").json()["champion"] == before:
        assert time.monotonic() < deadline, "the reload thread never loaded the new champion"
        time.sleep(0.02)


def test_a_model_that_fails_to_load_leaves_the_loaded_one_serving(
    service: Callable[..., Service], models_dir: dict[str, Path], caplog: pytest.LogCaptureFixture
) -> None:
    s = service(share=0.0)
    before = s.post({"id": "a", "features": features()}).json()["model_version"]
    models_dir["champion"].write_bytes(b"not a model")

    assert s.predictor.models.refresh() is False
    assert "could not reload the models" in caplog.text
    response = s.post({"id": "b", "features": features()})
    assert response.status_code == 200 and response.json()["model_version"] == before


def test_a_service_without_a_loadable_champion_does_not_start(tmp_path: Path) -> None:
    with pytest.raises(ServeError, match="no file"):
        FileSource({"champion": tmp_path / "missing.joblib"}).load()
    with pytest.raises(ServeError, match="no champion"):
        FileSource({"challenger": tmp_path / "c.joblib"})


@dataclass
class Registry:
    """The part of retrain's registry the service uses: aliases and load by version."""

    name: str
    files: dict[str, Path]
    aliases_: dict[str, str] = field(default_factory=dict)
    loads: list[str] = field(default_factory=list)

    def aliases(self) -> dict[str, str]:
        return dict(self.aliases_)

    def load(self, ref: str) -> SklearnModel:
        self.loads.append(ref)
        return SklearnModel(joblib.load(self.files[ref]), ref)


def test_registry_aliases_are_served_and_a_move_loads_only_the_moved_version(
    service: Callable[..., Service], models_dir: dict[str, Path]
) -> None:
    registry = Registry(
        "fraud",
        {"1": models_dir["champion"], "2": models_dir["challenger"], "3": models_dir["champion"]},
        {"champion": "1", "challenger": "2", "previous": "0"},
    )
    s = service(share=1.0, source=RegistrySource(registry))
    assert s.post({"id": "a", "features": features()}).json()["model_version"] == "2"

    registry.aliases_ = {
        "champion": "2",
        "challenger": "3",
        "previous": "1",
    }  # promote, new challenger
    assert s.predictor.models.refresh() is True
    assert s.post({"id": "b", "features": features()}).json()["model_version"] == "3"
    assert registry.loads == ["1", "2", "3"]

    registry.aliases_ = {"champion": "2"}  # the challenger is retired: no split any more
    assert s.predictor.models.refresh() is True
    served = s.post({"id": "c", "features": features()}).json()
    assert (served["variant"], served["model_version"]) == ("champion", "2")


def test_a_registry_without_champion_is_refused_by_name(models_dir: dict[str, Path]) -> None:
    registry = Registry("fraud", {"2": models_dir["challenger"]}, {"challenger": "2"})
    with pytest.raises(ServeError, match="registry 'fraud' has no champion"):
        RegistrySource(registry).load()
