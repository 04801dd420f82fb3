"""What a client of ``driftd serve`` sees: answers logged in the contract, refusals that
name the field and log nothing."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from datetime import datetime
from pathlib import Path

import pytest
from sklearn.dummy import DummyRegressor

from driftd.serve.models import FileSource
from tests.serve.conftest import Service, features


def test_a_prediction_is_answered_and_logged_in_the_contract(
    service: Callable[..., Service],
) -> None:
    s = service()
    response = s.post({"id": "req-1", "features": features(1)})

    assert response.status_code == 200
    body = response.json()
    assert body["id"] == "req-1"
    assert body["variant"] in ("champion", "challenger")
    assert 0.0 <= body["score"] <= 1.0
    assert body["prediction"] == int(body["score"] >= 0.5)
    [line] = s.lines()
    assert line == {**body, "ts": "2026-12-05T03:00:00.000Z", "features": features(1)}
    assert datetime.fromisoformat(line["ts"].replace("Z", "+00:00"))


def test_a_request_without_id_gets_one_and_it_is_logged(service: Callable[..., Service]) -> None:
    s = service()
    first = s.post({"features": features(2)}).json()
    second = s.post({"features": features(2)}).json()

    assert first["id"] and second["id"] and first["id"] != second["id"]
    assert [line["id"] for line in s.lines()] == [first["id"], second["id"]]


def _big_stream(size: int) -> Iterator[bytes]:
    chunk = b" " * 1024
    for _ in range(size // len(chunk)):
        yield chunk


MALFORMED = {
    "wrong type": ({"id": "a", "features": {**features(), "amount": "12.5"}}, "amount"),
    "bool as number": ({"id": "a", "features": {**features(), "n_tx_24h": True}}, "n_tx_24h"),
    "number as category": ({"id": "a", "features": {**features(), "country": 49}}, "country"),
    "text as boolean": (
        {"id": "a", "features": {**features(), "card_present": "yes"}},
        "card_present",
    ),
    "missing feature": (
        {"id": "a", "features": {k: v for k, v in features().items() if k != "hour"}},
        "hour",
    ),
    "unknown feature": ({"id": "a", "features": {**features(), "colour": "red"}}, "colour"),
    "unknown field": ({"id": "a", "features": features(), "user": "x"}, "user"),
    "no features": ({"id": "a"}, "features"),
    "id too long": ({"id": "x" * 201, "features": features()}, "id"),
    "id not text": ({"id": 7, "features": features()}, "id"),
    "integer beyond 64 bits": (
        {"id": "a", "features": {**features(), "n_tx_24h": 2**64}},
        "n_tx_24h",
    ),
}


@pytest.mark.parametrize("case", list(MALFORMED))
def test_a_malformed_request_is_refused_naming_the_field_and_not_logged(
    service: Callable[..., Service], case: str
) -> None:
    s = service()
    body, field = MALFORMED[case]
    response = s.post(body)

    assert response.status_code == 422
    named = [error["loc"][-1] for error in response.json()["detail"]]
    assert field in named, response.json()
    assert s.lines() == [] and s.log.written == 0


@pytest.mark.parametrize(
    "content, status, says",
    [
        (b'{"id": "a", "features": {', 422, "JSON decode error"),
        (b"[1, 2]", 422, "valid dictionary"),
        (
            json.dumps({"id": "a", "features": features()}).replace("20.0", "NaN").encode(),
            422,
            "finite number",
        ),
        (b"{" + b" " * 5000 + b"}", 413, "larger than 4096 bytes"),
    ],
    ids=["bad json", "not an object", "NaN", "oversized"],
)
def test_a_body_that_is_not_a_request_is_refused_and_not_logged(
    service: Callable[..., Service], content: bytes, status: int, says: str
) -> None:
    s = service()
    response = s.client.post(
        "/predict", content=content, headers={"Content-Type": "application/json"}
    )

    assert response.status_code == status
    assert says in response.text
    assert s.lines() == []


def test_an_oversized_streamed_body_is_refused_before_it_is_read_whole(
    service: Callable[..., Service],
) -> None:
    s = service()
    response = s.client.post(
        "/predict", content=_big_stream(64 << 10), headers={"Content-Type": "application/json"}
    )

    assert response.status_code == 413
    assert s.lines() == []


def test_when_the_log_cannot_be_written_the_prediction_is_not_served(
    service: Callable[..., Service], tmp_path: Path
) -> None:
    (tmp_path / "logs").write_text("a file where the log directory should be")
    s = service()
    response = s.post({"id": "a", "features": features()})

    assert response.status_code == 503
    assert "log" in response.json()["detail"]


def test_a_model_output_the_contract_cannot_hold_is_a_server_error_not_a_log_line(
    service: Callable[..., Service], tmp_path: Path
) -> None:
    import joblib
    import numpy as np
    import pandas as pd

    bad = DummyRegressor(strategy="constant", constant=1.5)  # a "score" that is no probability
    bad.fit(pd.DataFrame({"amount": [1.0]}), np.array([1.5]))
    joblib.dump(bad, tmp_path / "bad.joblib")
    s = service(source=FileSource({"champion": tmp_path / "bad.joblib"}))
    response = s.post({"id": "a", "features": features()})

    assert response.status_code == 500
    assert "1.5" in response.json()["detail"]
    assert s.lines() == []


def test_health_names_the_versions_that_serve(
    service: Callable[..., Service], models_dir: dict[str, Path]
) -> None:
    s = service(share=0.25)
    health = s.client.get("/health").json()

    assert health["status"] == "ok"
    assert health["challenger_share"] == 0.25
    assert {health["champion"], health["challenger"]} == {
        FileSource(models_dir).load().champion.version,
        FileSource(models_dir).load().challenger.version,  # type: ignore[union-attr]
    }


def test_missing_values_are_served_and_logged_as_null(service: Callable[..., Service]) -> None:
    s = service()
    nulls = dict.fromkeys(features(), None)
    response = s.post({"id": "empty", "features": nulls})

    assert response.status_code == 200, response.text
    assert 0.0 <= response.json()["score"] <= 1.0
    assert s.lines()[0]["features"] == nulls
