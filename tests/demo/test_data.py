"""Tests for the seeded demo domain (reference table, baseline, production stream)."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
from sklearn.metrics import recall_score, roc_auc_score

from driftd.demo.data import (
    DRIFTED_FEATURES,
    FEATURES,
    TARGET,
    ProductionStream,
    make_reference,
    score,
    train_baseline,
    write_jsonl,
)

START = datetime(2026, 11, 2, tzinfo=UTC)
DRIFT_AT = 48
HOURS = 120
PREDICTION_KEYS = {"id", "ts", "model_version", "variant", "features", "prediction", "score"}


def contract_violation(line: bytes) -> str | None:
    """Why ``line`` is not a valid prediction record, or None if it is."""
    try:
        text = line.decode("utf-8")
    except UnicodeDecodeError:
        return "utf-8"

    def reject_constant(name: str) -> None:
        raise ValueError(name)

    try:
        record = json.loads(text, parse_constant=reject_constant)
    except json.JSONDecodeError:
        return "json"
    except ValueError:
        return "nan"
    if not isinstance(record, dict) or set(record) != PREDICTION_KEYS:
        return "keys"
    try:
        ts = datetime.fromisoformat(record["ts"])
    except (TypeError, ValueError):
        return "ts"
    if ts.tzinfo is None:
        return "ts"
    number = (int, float)
    valid = (
        isinstance(record["id"], str)
        and record["id"] != ""
        and isinstance(record["model_version"], str)
        and isinstance(record["variant"], str)
        and isinstance(record["features"], dict)
        and all(
            isinstance(v, (*number, str, bool, type(None))) for v in record["features"].values()
        )
        and type(record["prediction"]) is int
        and record["prediction"] in (0, 1)
        and isinstance(record["score"], number)
        and not isinstance(record["score"], bool)
        and 0.0 <= record["score"] <= 1.0
    )
    return None if valid else "types"


@pytest.fixture(scope="module")
def reference() -> pd.DataFrame:
    return make_reference(20_000, seed=0)


@pytest.fixture(scope="module")
def model(reference: pd.DataFrame) -> Any:
    return train_baseline(reference.iloc[:15_000], seed=0)


@pytest.fixture(scope="module")
def batches(model: Any) -> list:
    stream = ProductionStream(model=model, start=START, drift_at_hour=DRIFT_AT, seed=7)
    return [stream.hour(h) for h in range(HOURS)]


@pytest.fixture(scope="module")
def joined(batches: list) -> pd.DataFrame:
    """Predictions of all hours with the labels that arrived before the last hour ended."""
    rows = [
        {
            "id": p["id"],
            "batch_hour": b.hour,
            "score": p["score"],
            "prediction": p["prediction"],
            **p["features"],
        }
        for b in batches
        for p in b.predictions
    ]
    labels = pd.DataFrame([lab for b in batches for lab in b.labels])
    return pd.DataFrame(rows).merge(labels[["id", "label"]], on="id", how="left")


def test_reference_is_seeded_with_five_percent_fraud(reference: pd.DataFrame) -> None:
    pd.testing.assert_frame_equal(make_reference(2_000, seed=3), make_reference(2_000, seed=3))
    assert not make_reference(2_000, seed=3).equals(make_reference(2_000, seed=4))
    assert list(reference.columns) == [*FEATURES, TARGET]
    assert set(reference[TARGET].unique()) == {0, 1}
    assert 0.04 <= reference[TARGET].mean() <= 0.06
    assert 0.01 <= reference["customer_age"].isna().mean() <= 0.03
    assert reference.drop(columns="customer_age").notna().all().all()
    assert (reference["amount"] > 0).all()
    assert reference["hour"].between(0, 23).all()
    assert set(reference["merchant_category"]) == {
        "grocery",
        "electronics",
        "travel",
        "fuel",
        "online",
        "restaurant",
    }
    assert set(reference["country"]) == {"DE", "FR", "GB", "NL", "US", "ES", "IT"}


def test_baseline_ranks_held_out_reference(reference: pd.DataFrame, model: Any) -> None:
    held_out = reference.iloc[15_000:]
    scores = score(model, held_out)
    assert scores.shape == (len(held_out),)
    assert roc_auc_score(held_out[TARGET], scores) >= 0.85


def test_stream_is_deterministic_whatever_the_call_order(model: Any) -> None:
    def stream(seed: int = 0) -> ProductionStream:
        return ProductionStream(model=model, start=START, rows_per_hour=50, seed=seed)

    forward, backward = stream(), stream()
    ahead = [forward.hour(h) for h in range(60)]
    behind = [backward.hour(h) for h in reversed(range(60))][::-1]
    assert ahead == behind
    assert stream(seed=1).hour(10).predictions != ahead[10].predictions
    assert ahead[10].predictions != ahead[11].predictions


def test_ids_are_unique_across_hours(batches: list) -> None:
    ids = [p["id"] for b in batches for p in b.predictions]
    assert len(ids) == HOURS * 500
    assert len(set(ids)) == len(ids)


def test_predictions_follow_the_contract(batches: list, model: Any, tmp_path: Path) -> None:
    for b in batches[:: HOURS // 6]:
        window_start = START + timedelta(hours=b.hour)
        for p in b.predictions:
            line = json.dumps(p, separators=(",", ":")).encode()
            assert contract_violation(line) is None, p
            assert set(p["features"]) == set(FEATURES)
            for name, kind in FEATURES.items():
                value = p["features"][name]
                if kind == "numeric":
                    assert value is None or (type(value) in (int, float) and np.isfinite(value)), p
                elif kind == "categorical":
                    assert type(value) is str, p
                else:
                    assert type(value) is bool, p
            assert p["ts"].endswith("Z")
            assert (
                window_start <= datetime.fromisoformat(p["ts"]) < window_start + timedelta(hours=1)
            )
            assert p["prediction"] == int(p["score"] >= 0.5)
            assert (p["model_version"], p["variant"]) == ("1", "champion")

    # The logged score is what the model gives for the logged features, after a JSON round trip.
    path = tmp_path / "predictions.jsonl"
    write_jsonl(path, batches[0].predictions)
    logged = [json.loads(line) for line in path.read_text().splitlines()]
    rescored = score(model, pd.DataFrame([r["features"] for r in logged]))
    np.testing.assert_allclose(rescored, [r["score"] for r in logged], rtol=0, atol=1e-12)


def test_labels_arrive_late_within_the_delay_range(batches: list) -> None:
    predicted_at = {
        p["id"]: datetime.fromisoformat(p["ts"]) for b in batches for p in b.predictions
    }
    seen: set[str] = set()
    for b in batches:
        window_start = START + timedelta(hours=b.hour)
        for label in b.labels:
            arrived = datetime.fromisoformat(label["ts"])
            assert window_start <= arrived < window_start + timedelta(hours=1)
            delay = arrived - predicted_at[label["id"]]
            assert timedelta(hours=6) <= delay <= timedelta(hours=48), label
            assert label["label"] in (0, 1)
            assert label["id"] not in seen
            seen.add(label["id"])
    # Every prediction old enough has exactly one label by now; none of the last 6 hours has.
    matured = {p["id"] for b in batches[: HOURS - 49] for p in b.predictions}
    assert matured <= seen
    assert not seen & {p["id"] for b in batches[-6:] for p in b.predictions}


def test_baseline_degrades_after_the_drift(joined: pd.DataFrame) -> None:
    labelled = joined.dropna(subset=["label"])
    before = labelled[labelled["batch_hour"] < DRIFT_AT]
    after = labelled[labelled["batch_hour"] >= DRIFT_AT]
    assert len(after) > 10_000
    auc_before = roc_auc_score(before["label"], before["score"])
    auc_after = roc_auc_score(after["label"], after["score"])
    assert auc_before >= 0.85
    assert auc_before - auc_after >= 0.1
    assert (
        recall_score(before["label"], before["prediction"])
        - recall_score(after["label"], after["prediction"])
        >= 0.1
    )
    assert 0.03 <= before["label"].mean() <= 0.07


def test_drifted_features_shift_and_the_others_do_not(joined: pd.DataFrame) -> None:
    before = joined[joined["batch_hour"] < DRIFT_AT]
    after = joined[joined["batch_hour"] >= DRIFT_AT]
    assert set(DRIFTED_FEATURES) <= set(FEATURES)
    assert after["amount"].mean() / before["amount"].mean() > 1.3
    online_before = (before["merchant_category"] == "online").mean()
    online_after = (after["merchant_category"] == "online").mean()
    assert online_after - online_before > 0.15
    assert (before["country"] == "BR").sum() == 0
    assert 0.03 <= (after["country"] == "BR").mean() <= 0.07
    assert before["card_present"].mean() - after["card_present"].mean() > 0.1
    for name, kind in FEATURES.items():
        if name in DRIFTED_FEATURES or kind == "categorical":
            continue
        mean_before, mean_after = (
            before[name].astype(float).mean(),
            after[name].astype(float).mean(),
        )
        assert abs(mean_after / mean_before - 1) < 0.05, name


def test_malformed_lines_break_the_contract(batches: list) -> None:
    malformed = [line for b in batches for line in b.malformed]
    expected = HOURS * 500 * 0.002
    assert 0.5 * expected <= len(malformed) <= 1.5 * expected
    assert all(isinstance(line, bytes) and b"\n" not in line for line in malformed)
    reasons = [contract_violation(line) for line in malformed]
    assert None not in reasons
    assert set(reasons) == {"utf-8", "json", "nan", "keys", "ts", "types"}


def test_write_jsonl_appends_one_line_per_record(tmp_path: Path) -> None:
    path = tmp_path / "log.jsonl"
    assert write_jsonl(path, [{"id": "a", "x": 1.5}, b'{"id": tru']) == 2
    assert write_jsonl(path, iter([{"id": "b", "x": None}])) == 1
    assert path.read_bytes() == b'{"id":"a","x":1.5}\n{"id": tru\n{"id":"b","x":null}\n'
    write_jsonl(path, [{"id": "c"}], append=False)
    assert path.read_bytes() == b'{"id":"c"}\n'
    with pytest.raises(ValueError, match="newline"):
        write_jsonl(path, [b"two\nlines"])


def test_stream_rejects_naive_start_and_negative_hours(model: Any) -> None:
    with pytest.raises(ValueError, match="UTC"):
        ProductionStream(model=model, start=datetime(2026, 11, 2))
    with pytest.raises(ValueError, match="hour"):
        ProductionStream(model=model, start=START).hour(-1)
