"""The stored reference profile: built once with its calibration, then only loaded; a
rebuild happens only for a reason, and says which."""

from __future__ import annotations

import logging

import numpy as np
import orjson
import pytest

from monitor.drift.stored import load_profile
from monitor.records import FeatureType

SCHEMA = {"x": FeatureType.NUMERIC, "c": FeatureType.CATEGORICAL}


class Profiles:
    """The repository's profile methods, in memory."""

    def __init__(self) -> None:
        self.stored: dict[tuple[str, str], str | bytes] = {}

    def profile(self, model: str, version: str) -> str | bytes | None:
        return self.stored.get((model, version))

    def save_profile(self, model: str, version: str, profile: bytes) -> None:
        self.stored[model, version] = profile


def test_built_once_then_loaded_with_its_calibration(caplog: pytest.LogCaptureFixture) -> None:
    repository, reads = Profiles(), []
    g = np.random.default_rng(0)

    def reference() -> tuple[dict[str, np.ndarray], dict[str, FeatureType]]:
        reads.append(1)
        return {"x": g.normal(0, 1, 3000), "c": g.choice(["a", "b"], 3000)}, SCHEMA

    caplog.set_level(logging.INFO, logger="monitor.drift.stored")
    first = load_profile(repository, "m", "1", "size:mtime", reference)
    assert first.calibrated and set(first.nulls) == {"x", "c"}
    assert "no stored profile" in caplog.text
    again = load_profile(repository, "m", "1", "size:mtime", reference)
    assert reads == [1] and again.calibrated
    np.testing.assert_array_equal(
        again.nulls["x"].limits["wasserstein"],
        first.nulls["x"].limits["wasserstein"].astype(np.float32),
    )
    assert again.nulls["c"].categories == 2

    # a profile stored as JSON (by earlier versions) is read as it was stored
    assert isinstance(repository.stored["m", "1"], bytes)
    data = {**again.to_dict(), "source": "size:mtime"}
    repository.stored["m", "1"] = orjson.dumps(data).decode()
    assert load_profile(repository, "m", "1", "size:mtime", reference).calibrated
    assert reads == [1]
    # one stored before calibration was: rebuilt once, and the log says why
    del data["nulls"], data["nulls_version"]
    repository.stored["m", "1"] = orjson.dumps(data).decode()
    caplog.clear()
    assert load_profile(repository, "m", "1", "size:mtime", reference).calibrated
    assert reads == [1, 1] and "has no calibration" in caplog.text
    # the reference file changed; or a rebuild is asked for
    caplog.clear()
    load_profile(repository, "m", "1", "size2:mtime2", reference)
    assert "the reference changed" in caplog.text
    caplog.clear()
    load_profile(repository, "m", "1", "size2:mtime2", reference, rebuild=True)
    assert "asked" in caplog.text and len(reads) == 4
    # the reference file is gone: the stored profile is used whatever it was built from
    load_profile(repository, "m", "1", None, reference)
    assert len(reads) == 4
