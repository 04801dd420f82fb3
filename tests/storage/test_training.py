"""Contract of :func:`storage.training.training_rows` on SQLite and PostgreSQL."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from storage import schema
from storage.review import DISCARDED, RELABELLED, ReviewRepository
from storage.store import Store
from storage.training import training_rows

T0 = datetime(2026, 11, 28, 10, 0, tzinfo=UTC)
HOUR = timedelta(hours=1)


@dataclass(frozen=True)
class Cand:
    prediction_id: str
    reason: str = "misclassified"
    priority: float = 0.5
    label: Any = None
    details: dict[str, Any] = field(default_factory=dict)


def add(store: Store, rid: str, hour: int, label: Any = None, *, model: str = "m") -> None:
    ts = T0 + hour * HOUR
    with store.transaction() as conn:
        conn.execute(
            schema.predictions.insert(),
            {
                "model": model,
                "id": rid,
                "ts": ts,
                "window_start": ts,
                "model_version": "3",
                "variant": "champion",
                "features": json.dumps({"amount": 10.0 + hour, "country": "DE"}),
                "prediction": json.dumps(1),
                "score": 0.8,
                "probabilities": None,
            },
        )
        if label is not None:
            conn.execute(
                schema.labels.insert(),
                {"model": model, "id": rid, "label": json.dumps(label), "ts": ts + HOUR},
            )


def test_rows_of_the_range_with_labels_reviews_and_provenance(store: Store) -> None:
    add(store, "early", -1, 0)  # before the range
    add(store, "plain", 0, 0)
    add(store, "relabelled", 1, 0)
    add(store, "discarded", 2, 1)
    add(store, "unlabelled", 3)  # no label yet: not training material
    add(store, "reviewed-only", 4)  # no production label, but a reviewer relabelled it
    add(store, "late", 5, 1)  # at the range's end: excluded
    add(store, "other-model", 1, 1, model="n")
    repo = ReviewRepository(store)
    repo.enqueue(
        "m",
        T0,
        [Cand("relabelled"), Cand("discarded"), Cand("reviewed-only")],
        per_window=9,
        now=T0,
    )
    items = {i.prediction_id: i.pk for i in repo.items("m")}
    now = T0 + 6 * HOUR
    repo.review("m", items["relabelled"], RELABELLED, reviewer="ann", new_label=1, now=now)
    repo.review("m", items["discarded"], DISCARDED, reviewer="ann", now=now)
    repo.review("m", items["reviewed-only"], RELABELLED, reviewer="bob", new_label=0, now=now)

    rows = training_rows(store, "m", start=T0, end=T0 + 5 * HOUR)

    assert [r.id for r in rows] == ["plain", "relabelled", "reviewed-only"]
    plain, relabelled, reviewed_only = rows
    assert (plain.label, plain.source, plain.holdout_eligible) == (0, "production", True)
    assert plain.features == {"amount": 10.0, "country": "DE"}
    assert (plain.score, plain.prediction, plain.model_version) == (0.8, 1, "3")
    assert plain.ts == T0
    assert (relabelled.label, relabelled.production_label) == (1, 0)
    assert (relabelled.source, relabelled.reviewer, relabelled.holdout_eligible) == (
        "review",
        "ann",
        False,
    )
    assert relabelled.reviewed_at == now
    assert (reviewed_only.label, reviewed_only.production_label) == (0, None)


def test_an_empty_range_is_refused(store: Store) -> None:
    with pytest.raises(ValueError, match="empty time range"):
        training_rows(store, "m", start=T0, end=T0)
