"""Multivariate drift sees a broken correlation that no single column shows."""

from __future__ import annotations

import numpy as np

from monitor.drift.methods import METHODS
from monitor.drift.multivariate import Encoder, Reconstruction, domain_classifier
from monitor.records import FeatureType

SCHEMA = {"a": FeatureType.NUMERIC, "b": FeatureType.NUMERIC, "c": FeatureType.CATEGORICAL}


def rows(rng: np.random.Generator, n: int, corr: float) -> dict[str, np.ndarray]:
    a = rng.normal(size=n)
    b = corr * a + np.sqrt(1 - corr**2) * rng.normal(size=n)
    return {"a": a, "b": b, "c": rng.choice(["x", "y", None], size=n).astype(object)}


def test_a_broken_correlation_is_multivariate_drift_but_no_column_drift() -> None:
    rng = np.random.default_rng(3)
    reference = rows(rng, 5000, 0.9)
    encoder = Encoder(reference, SCHEMA)
    reconstruction = Reconstruction(reference, encoder)
    same, broken = rows(rng, 2000, 0.9), rows(rng, 2000, 0.0)

    for name in ("a", "b"):  # the marginals did not move
        score = METHODS["wasserstein"].fn(reference[name], broken[name], column_type="numeric")
        assert score < 0.1

    assert not domain_classifier(reference, same, encoder).drifted
    assert not reconstruction.drift(same).drifted
    classifier = domain_classifier(reference, broken, encoder)
    assert classifier.drifted and classifier.score > 0.7
    pca = reconstruction.drift(broken)
    assert pca.drifted and pca.score > 2 * pca.threshold


def test_too_few_rows_give_no_verdict() -> None:
    rng = np.random.default_rng(4)
    reference = rows(rng, 1000, 0.5)
    encoder = Encoder(reference, SCHEMA)
    few = rows(rng, 20, 0.5)
    result = domain_classifier(reference, few, encoder)
    assert not result.drifted and result.to_dict()["score"] is None
    assert not Reconstruction(reference, encoder).drift(few).drifted


def test_unseen_and_missing_categories_are_encoded_apart() -> None:
    reference = {
        "a": np.array([1.0, 2.0, np.nan]),
        "b": np.array([0.0, 1.0, 2.0]),
        "c": np.array(["x", "y", None], dtype=object),
    }
    encoder = Encoder(reference, SCHEMA)
    matrix = encoder.transform(
        {"a": np.array([np.nan]), "b": np.array([1.0]), "c": np.array(["z"], dtype=object)}
    )
    # a: scaled value + missing flag; b: value + flag; c: x, y, other, missing
    assert matrix.shape == (1, 8)
    assert matrix[0, 1] == 1.0  # a is missing
    assert list(matrix[0, 4:]) == [0.0, 0.0, 1.0, 0.0]  # z is "other"
