"""Contract of :class:`storage.review.ReviewRepository` on SQLite and PostgreSQL."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from monitor import review as selection
from monitor.review import ReviewQueue, ReviewSettings
from storage import review, schema
from storage.errors import InvalidOperationError
from storage.review import ReviewRepository
from storage.store import Store

T0 = datetime(2026, 11, 28, 10, 0, tzinfo=UTC)
HOUR = timedelta(hours=1)
NOW = T0 + 3 * HOUR
SETTINGS = ReviewSettings(cost_fn=100.0, cost_fp=10.0, per_window=3, margin=0.1)


@dataclass(frozen=True)
class Cand:
    prediction_id: str
    reason: str = "low_confidence"
    priority: float = 0.5
    label: Any = None
    details: dict[str, Any] = field(default_factory=lambda: {"summary": "doubtful"})


def add_predictions(store: Store, *rows: tuple[str, float], window: int = 0, model: str = "m"):
    start = T0 + window * HOUR
    with store.transaction() as conn:
        conn.execute(
            schema.predictions.insert(),
            [
                {
                    "model": model,
                    "id": rid,
                    "ts": start + timedelta(minutes=i),
                    "window_start": start,
                    "model_version": "1",
                    "variant": "champion",
                    "features": json.dumps({"amount": 10.0 + i, "country": "DE"}),
                    "prediction": json.dumps(int(score >= 0.5)),
                    "score": score,
                    "probabilities": None,
                }
                for i, (rid, score) in enumerate(rows)
            ],
        )


def add_labels(store: Store, *labels: tuple[str, Any], model: str = "m") -> None:
    with store.transaction() as conn:
        conn.execute(
            schema.labels.insert(),
            [
                {"model": model, "id": rid, "label": json.dumps(value), "ts": NOW}
                for rid, value in labels
            ],
        )


@pytest.fixture
def repo(store: Store) -> ReviewRepository:
    return ReviewRepository(store)


def ids(items: list[review.ReviewItem]) -> list[str]:
    return [i.prediction_id for i in items]


def test_reasons_agree_with_the_selection() -> None:
    assert review.REASONS == selection.REASONS


def test_window_rows_join_their_labels(store: Store, repo: ReviewRepository) -> None:
    add_predictions(store, ("b", 0.7), ("a", 0.2))
    add_predictions(store, ("c", 0.9), window=1)
    add_predictions(store, ("a", 0.9), model="other")
    add_labels(store, ("a", 1))
    add_labels(store, ("a", 0), model="other")
    rows = repo.window_rows("m", T0)
    assert [r.id for r in rows] == ["a", "b"]
    a, b = rows
    assert (a.prediction, a.score, a.label) == (0, 0.2, 1)
    assert a.features == {"amount": 11.0, "country": "DE"}
    assert a.ts == T0 + timedelta(minutes=1)
    assert b.label is None
    assert repo.window_rows("m", T0 + 5 * HOUR) == []


def test_enqueue_is_idempotent(repo: ReviewRepository) -> None:
    batch = [Cand("a", priority=0.9), Cand("b", priority=0.4)]
    first = repo.enqueue("m", T0, batch, per_window=10, now=NOW)
    assert first == {"added": 2, "upgraded": 0, "over_cap": 0}
    again = repo.enqueue("m", T0, batch, per_window=10, now=NOW + HOUR)
    assert again == {"added": 0, "upgraded": 0, "over_cap": 0}
    items = repo.items("m")
    assert ids(items) == ["a", "b"]
    assert items[0].state == review.PENDING and items[0].created_at == NOW
    assert items[0].why == {"summary": "doubtful"}
    assert items[0].history == [
        {"at": NOW.isoformat(), "event": "queued", "reason": "low_confidence"}
    ]


def test_the_cap_counts_what_the_window_already_has(repo: ReviewRepository) -> None:
    assert repo.enqueue("m", T0, [Cand("a"), Cand("b")], per_window=3, now=NOW)["added"] == 2
    second = repo.enqueue(
        "m",
        T0,
        [Cand("c", priority=0.9), Cand("a"), Cand("d", priority=0.8), Cand("e", priority=0.1)],
        per_window=3,
        now=NOW,
    )
    assert second == {"added": 1, "upgraded": 0, "over_cap": 2}
    assert sorted(ids(repo.items("m"))) == ["a", "b", "c"]  # the first new one in order
    # another window and another model have their own caps
    assert repo.enqueue("m", T0 + HOUR, [Cand("x")], per_window=3, now=NOW)["added"] == 1
    assert repo.enqueue("n", T0, [Cand("a")], per_window=3, now=NOW)["added"] == 1
    assert repo.enqueue("m", T0, [Cand("f")], per_window=3, now=NOW)["added"] == 0
    assert repo.enqueue("m", T0, [Cand("f")], per_window=0, now=NOW)["over_cap"] == 1


def test_a_label_that_shows_an_error_upgrades_a_pending_item(
    store: Store, repo: ReviewRepository
) -> None:
    add_predictions(store, ("a", 0.55), ("b", 0.45), ("c", 0.52), ("d", 0.9))
    queue = ReviewQueue(repo, SETTINGS)
    first = queue.refresh("m", T0, now=NOW)
    assert first["added"] == 3 and first["candidates"] == {"low_confidence": 3}
    assert {i.reason for i in repo.items("m")} == {"low_confidence"}
    # b is discarded by a reviewer; then labels arrive: a, b and d were wrong
    b = repo.item("m", "b")
    assert b is not None
    repo.review("m", b.item.pk, review.DISCARDED, reviewer="ann", now=NOW)
    add_labels(store, ("a", 0), ("b", 1), ("d", 0), ("c", 1))
    second = queue.refresh("m", T0, now=NOW + HOUR)
    # a is upgraded in place; b was reviewed and stays as it is; d is new but the
    # window is full; c was right, so it stays a low-confidence item
    assert (second["added"], second["upgraded"], second["over_cap"]) == (0, 1, 1)
    items = {i.prediction_id: i for i in repo.items("m")}
    assert sorted(items) == ["a", "b", "c"]
    a = items["a"]
    assert (a.reason, a.state, a.label) == ("misclassified", "pending", 0)
    assert a.priority > 2
    assert a.why["error"] == "false_positive"
    assert [h["event"] for h in a.history] == ["queued", "upgraded"]
    assert a.history[1]["from"] == "low_confidence" and a.history[1]["to"] == "misclassified"
    assert a.history[1]["was"] == "score 0.55 within 0.1 of the threshold 0.5"
    assert (items["b"].reason, items["b"].state) == ("low_confidence", "discarded")
    assert items["c"].reason == "low_confidence"
    third = queue.refresh("m", T0, now=NOW + 2 * HOUR)
    assert (third["added"], third["upgraded"]) == (0, 0)


def test_items_filter_and_order(repo: ReviewRepository) -> None:
    repo.enqueue(
        "m",
        T0,
        [
            Cand("a", priority=0.2),
            Cand("b", "misclassified", 2.5, label=1),
            Cand("c", priority=0.2),
        ],
        per_window=10,
        now=NOW,
    )
    repo.enqueue("m", T0 + HOUR, [Cand("d", "out_of_distribution", 1.3)], per_window=10, now=NOW)
    assert ids(repo.items("m")) == ["b", "d", "a", "c"]
    assert ids(repo.items("m", reason="low_confidence")) == ["a", "c"]
    assert ids(repo.items("m", window=T0 + HOUR)) == ["d"]
    assert ids(repo.items("m", limit=2)) == ["b", "d"]
    pk = repo.items("m", reason="misclassified")[0].pk
    repo.review("m", pk, review.RELABELLED, new_label=0, reviewer="ann", now=NOW)
    assert ids(repo.items("m", state="pending")) == ["d", "a", "c"]
    assert ids(repo.items("m", state="relabelled")) == ["b"]
    assert repo.items("other") == []


def test_item_joins_the_prediction_and_its_production_label(
    store: Store, repo: ReviewRepository
) -> None:
    add_predictions(store, ("a", 0.8), ("7", 0.3))
    add_labels(store, ("a", 0))
    repo.enqueue(
        "m", T0, [Cand("a", "misclassified", 2.4, label=0), Cand("7")], per_window=9, now=NOW
    )
    view = repo.item("m", "a")
    assert view is not None
    assert view.features == {"amount": 10.0, "country": "DE"}
    assert (view.prediction, view.score, view.production_label) == (1, 0.8, 0)
    assert view.ts == T0
    assert view.item.reason == "misclassified" and view.item.label == 0
    by_pk = repo.item("m", view.item.pk)
    assert by_pk is not None and by_pk.item == view.item
    assert repo.item("m", str(view.item.pk)) == by_pk  # an all-digit key: the item number
    seven = repo.item("m", "7")  # ... unless a prediction has that id
    assert seven is not None and seven.item.prediction_id == "7"
    assert seven.production_label is None
    assert repo.item("m", "zzz") is None
    assert repo.item("other", view.item.pk) is None
    assert repo.views("m") == [view, seven]  # by priority, as items() orders them
    assert repo.views("m", reason="low_confidence") == [seven]


def test_review_transitions_keep_the_latest_and_the_history(
    store: Store, repo: ReviewRepository
) -> None:
    add_predictions(store, ("a", 0.8), ("b", 0.55))
    add_labels(store, ("a", 0))
    repo.enqueue("m", T0, [Cand("a", "misclassified", 2.4, 0), Cand("b")], per_window=9, now=NOW)
    a = repo.item("m", "a")
    b = repo.item("m", "b")
    assert a is not None and b is not None
    pk = a.item.pk

    confirmed = repo.review("m", pk, review.CONFIRMED, reviewer="ann", now=NOW)
    assert confirmed is not None
    assert (confirmed.state, confirmed.new_label, confirmed.reviewer) == ("confirmed", 0, "ann")
    assert confirmed.reviewed_at == NOW

    later = NOW + HOUR
    relabelled = repo.review(
        "m", pk, review.RELABELLED, new_label=1, reviewer="bob", now=later, note={"task": 12}
    )
    assert relabelled is not None
    assert (relabelled.state, relabelled.new_label, relabelled.reviewer) == ("relabelled", 1, "bob")
    assert relabelled.reviewed_at == later
    assert relabelled.why == a.item.why
    events = relabelled.history
    assert [e["event"] for e in events] == ["queued", "confirmed", "relabelled"]
    assert events[2]["replaces"] == {"state": "confirmed", "label": 0, "by": "ann"}
    assert events[2]["note"] == {"task": 12} and events[2]["label"] == 1

    discarded = repo.review("m", pk, review.DISCARDED, reviewer="cy", now=later)
    assert discarded is not None and discarded.new_label is None

    # no production label yet: confirming confirms the prediction
    on_b = repo.review("m", b.item.pk, review.CONFIRMED, reviewer="ann", now=NOW)
    assert on_b is not None and on_b.new_label == 1

    with pytest.raises(InvalidOperationError, match="needs the new label"):
        repo.review("m", pk, review.RELABELLED, reviewer="ann", now=NOW)
    with pytest.raises(InvalidOperationError, match="takes no new label"):
        repo.review("m", pk, review.CONFIRMED, new_label=1, reviewer="ann", now=NOW)
    with pytest.raises(InvalidOperationError, match="cannot review into state 'pending'"):
        repo.review("m", pk, review.PENDING, reviewer="ann", now=NOW)
    assert repo.review("m", 10_000, review.DISCARDED, reviewer="ann", now=NOW) is None
    assert repo.review("other", pk, review.DISCARDED, reviewer="ann", now=NOW) is None


def test_counts_per_state_and_window(repo: ReviewRepository) -> None:
    repo.enqueue("m", T0, [Cand("a"), Cand("b"), Cand("c")], per_window=9, now=NOW)
    repo.enqueue("m", T0 + HOUR, [Cand("d")], per_window=9, now=NOW)
    repo.enqueue("other", T0, [Cand("a")], per_window=9, now=NOW)
    first = repo.items("m", window=T0)[0]
    repo.review("m", first.pk, review.DISCARDED, reviewer="ann", now=NOW)
    counts = repo.counts("m")
    assert counts["states"] == {"pending": 3, "confirmed": 0, "relabelled": 0, "discarded": 1}
    assert counts["windows"] == {
        T0: {"pending": 2, "confirmed": 0, "relabelled": 0, "discarded": 1},
        T0 + HOUR: {"pending": 1, "confirmed": 0, "relabelled": 0, "discarded": 0},
    }
    assert repo.counts("none") == {
        "states": {"pending": 0, "confirmed": 0, "relabelled": 0, "discarded": 0},
        "windows": {},
    }


def test_training_labels_take_reviews_over_production_labels(
    store: Store, repo: ReviewRepository
) -> None:
    add_predictions(
        store,
        ("keep", 0.2),
        ("fixed", 0.8),
        ("ok", 0.9),
        ("junk", 0.7),
        ("new", 0.6),
        ("none", 0.1),
    )
    add_predictions(store, ("keep", 0.5), model="other")
    add_labels(store, ("keep", 0), ("fixed", 0), ("ok", 1), ("junk", 1))
    add_labels(store, ("keep", 1), model="other")
    repo.enqueue(
        "m", T0, [Cand(i) for i in ("fixed", "ok", "junk", "new", "none")], per_window=9, now=NOW
    )
    pk = {i.prediction_id: i.pk for i in repo.items("m")}
    repo.review("m", pk["fixed"], review.RELABELLED, new_label=1, reviewer="ann", now=NOW)
    repo.review("m", pk["ok"], review.CONFIRMED, reviewer="bob", now=NOW + HOUR)
    repo.review("m", pk["junk"], review.DISCARDED, reviewer="ann", now=NOW)
    repo.review("m", pk["new"], review.RELABELLED, new_label=0, reviewer="cy", now=NOW)
    # "none" stays pending without a label: nothing to train on

    rows = {r.id: r for r in repo.training_labels("m")}
    assert list(rows) == ["keep", "fixed", "ok", "new"]  # by time
    keep, fixed, ok, new = rows.values()
    assert (keep.label, keep.source, keep.holdout_eligible) == (0, "production", True)
    assert (keep.review_state, keep.reviewer, keep.reviewed_at) == (None, None, None)
    assert keep.features == {"amount": 10.0, "country": "DE"}
    assert (fixed.label, fixed.source, fixed.review_state) == (1, "review", "relabelled")
    assert (fixed.reviewer, fixed.reviewed_at, fixed.holdout_eligible) == ("ann", NOW, False)
    assert (ok.label, ok.source, ok.review_state, ok.reviewer) == (1, "review", "confirmed", "bob")
    assert ok.reviewed_at == NOW + HOUR and not ok.holdout_eligible
    assert (new.label, new.source, new.holdout_eligible) == (0, "review", False)

    # reviewing again changes the training set: the latest review counts
    repo.review("m", pk["fixed"], review.DISCARDED, reviewer="bob", now=NOW + HOUR)
    assert [r.id for r in repo.training_labels("m")] == ["keep", "ok", "new"]
    assert [r.label for r in repo.training_labels("other")] == [1]


def test_windows_rows_read_several_windows_at_once(store: Store, repo: ReviewRepository) -> None:
    add_predictions(store, ("b", 0.7), ("a", 0.2))
    add_predictions(store, ("d", 0.9), ("c", 0.1), window=1)
    add_predictions(store, ("e", 0.9), window=2)
    add_labels(store, ("c", 1))
    starts = [T0 + HOUR, T0, T0 + 7 * HOUR]
    rows = repo.windows_rows("m", starts)
    assert {start: [r.id for r in found] for start, found in rows.items()} == {
        T0: ["a", "b"],
        T0 + HOUR: ["c", "d"],
    }
    for start in starts:  # the same rows as one window at a time
        assert rows.get(start, []) == repo.window_rows("m", start)


def test_enqueue_windows_keeps_each_windows_cap_as_enqueue_does(repo: ReviewRepository) -> None:
    first = {T0: [Cand("a"), Cand("b")], T0 + HOUR: [Cand("x", priority=0.9)]}
    second = {
        T0: [Cand("c", priority=0.9), Cand("a"), Cand("d", priority=0.8), Cand("e")],
        T0 + HOUR: [Cand("y"), Cand("x", reason="misclassified", priority=2.5, label=1)],
        T0 + 2 * HOUR: [],
    }
    batched = [repo.enqueue_windows("m", w, per_window=3, now=NOW) for w in (first, second)]
    one_by_one = [
        {s: repo.enqueue("n", s, c, per_window=3, now=NOW) for s, c in w.items()}
        for w in (first, second)
    ]
    assert batched == one_by_one
    assert batched[1] == {
        T0: {"added": 1, "upgraded": 0, "over_cap": 2},
        T0 + HOUR: {"added": 1, "upgraded": 1, "over_cap": 0},
        T0 + 2 * HOUR: {"added": 0, "upgraded": 0, "over_cap": 0},
    }

    def queued(model: str) -> list[tuple[Any, ...]]:
        items = repo.items(model)
        return sorted((i.prediction_id, i.window_start, i.reason, i.priority) for i in items)

    assert queued("m") == queued("n")


def test_refresh_windows_queues_as_refresh_does_per_window(
    store: Store, repo: ReviewRepository
) -> None:
    add_predictions(store, ("a", 0.55), ("b", 0.45), ("c", 0.9), ("d", 0.1))
    add_predictions(store, ("e", 0.52), ("f", 0.2), window=1)
    add_predictions(store, ("a", 0.55), ("b", 0.45), ("c", 0.9), ("d", 0.1), model="n")
    add_predictions(store, ("e", 0.52), ("f", 0.2), window=1, model="n")
    add_labels(store, ("c", 0), ("f", 1), ("d", 0))
    add_labels(store, ("c", 0), ("f", 1), ("d", 0), model="n")
    queue = ReviewQueue(repo, SETTINGS)
    starts = [T0, T0 + HOUR, T0 + 2 * HOUR]
    batched = queue.refresh_windows("m", starts, now=NOW)
    one_by_one = [queue.refresh("n", start, now=NOW) for start in starts]
    assert batched == one_by_one
    assert [s["added"] for s in batched] == [3, 2, 0]
    assert [(i.prediction_id, i.reason, i.priority) for i in repo.items("m")] == [
        (i.prediction_id, i.reason, i.priority) for i in repo.items("n")
    ]
