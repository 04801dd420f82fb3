"""Choosing what a person should review: reasons, priorities, dedupe, cap, determinism."""

from __future__ import annotations

import math
import random
from collections.abc import Mapping, Sequence
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from typing import Any

import numpy as np
import pytest

from monitor.drift.profile import fit_profile
from monitor.records import FeatureType
from monitor.review import (
    LOW_CONFIDENCE,
    MISCLASSIFIED,
    OUT_OF_DISTRIBUTION,
    Candidate,
    ReviewQueue,
    ReviewRow,
    ReviewSettings,
    binary_entropy,
    candidates,
    normalized_entropy,
    select,
)

T0 = datetime(2026, 11, 28, 10, 0, tzinfo=UTC)
NOW = T0 + timedelta(hours=1)
SETTINGS = ReviewSettings(cost_fn=100.0, cost_fp=10.0, per_window=50, margin=0.1)


def row(rid: str, score: float | None = 0.9, label: Any = None, **kw: Any) -> ReviewRow:
    prediction = kw.pop("prediction", None if score is None else int(score >= 0.5))
    return ReviewRow(
        id=rid,
        ts=kw.pop("ts", T0),
        features=kw.pop("features", {"amount": 50.0, "country": "DE"}),
        prediction=prediction,
        score=score,
        label=label,
        **kw,
    )


@pytest.fixture(scope="module")
def profile() -> Any:
    rng = np.random.default_rng(0)
    n = 500
    columns = {
        "amount": np.linspace(0.0, 100.0, n),
        "country": np.array(rng.choice(["DE", "FR", "NL"], n), dtype=object),
        "is_new": np.array([i % 2 == 0 for i in range(n)], dtype=object),
        "version": np.full(n, 3.0),
        "@score": rng.uniform(size=n),
    }
    schema = {
        "amount": FeatureType.NUMERIC,
        "country": FeatureType.CATEGORICAL,
        "is_new": FeatureType.BOOLEAN,
        "version": FeatureType.NUMERIC,
        "@score": FeatureType.NUMERIC,
    }
    return fit_profile(columns, schema, model_version="1")


def by_id(found: list[Candidate]) -> dict[str, Candidate]:
    return {c.prediction_id: c for c in found}


# -- misclassified ----------------------------------------------------------------------


def test_errors_are_priced_by_their_type() -> None:
    found = by_id(
        candidates(
            [
                row("fn", score=0.2, label=1),  # missed positive: costs 100
                row("fp", score=0.8, label=0),  # false alarm: costs 10
                row("ok", score=0.8, label=1),  # right: not queued
            ],
            SETTINGS,
            now=NOW,
        )
    )
    assert set(found) == {"fn", "fp"}
    fn, fp = found["fn"], found["fp"]
    assert fn.reason == fp.reason == MISCLASSIFIED
    assert fn.details["error"] == "false_negative" and fn.details["cost"] == 100.0
    assert fp.details["error"] == "false_positive" and fp.details["cost"] == 10.0
    assert fn.priority > fp.priority
    assert fn.label == 1
    assert fn.details["summary"] == (
        "false negative: predicted 0, label 1 (score 0.2, threshold 0.5); costs 100 USD"
    )


def test_the_priority_formula() -> None:
    # a false positive at score 0.8, 30 minutes old, half-life 7 days:
    # impact 10/100, uncertainty 1 - 0.3/0.5, recency 0.5 ** (0.5 h / 168 h)
    [c] = candidates(
        [row("fp", score=0.8, label=0, ts=NOW - timedelta(minutes=30))], SETTINGS, now=NOW
    )
    recency = 0.5 ** (0.5 / 168)
    expected = 2 + 0.6 * 0.1 + 0.3 * 0.4 + 0.1 * recency
    assert c.priority == pytest.approx(expected, abs=1e-9)
    assert c.details["priority"] == {
        "impact": 0.1,
        "uncertainty": 0.4,
        "recency": round(recency, 6),
    }


def test_uncertain_and_recent_errors_come_first_among_equal_costs() -> None:
    found = candidates(
        [
            row("sure", score=0.99, label=0),
            row("unsure", score=0.55, label=0),
            row("old", score=0.55, label=0, ts=NOW - timedelta(days=14)),
        ],
        SETTINGS,
        now=NOW,
    )
    assert [c.prediction_id for c in found] == ["unsure", "old", "sure"]


def test_no_cost_configured_weighs_every_error_alike() -> None:
    settings = ReviewSettings()
    found = by_id(candidates([row("fn", 0.3, 1), row("fp", 0.7, 0)], settings, now=T0))
    assert found["fn"].priority == found["fp"].priority
    assert found["fn"].details["priority"]["impact"] == 1.0


def test_the_prediction_falls_back_to_the_score_and_labels_compare_as_values() -> None:
    rows = [
        row("derived", score=0.7, label=0, prediction=None),  # served 1 (0.7 >= 0.5)
        row("text", score=0.7, label="1", prediction=1),  # "1" is the label 1: right
        row("bool", score=0.3, label=True, prediction=0),  # True is positive: a miss
        row("no-output", score=None, label=1, prediction=None),
    ]
    found = by_id(candidates(rows, SETTINGS, now=NOW))
    assert set(found) == {"derived", "bool"}
    assert found["derived"].details["error"] == "false_positive"
    assert found["derived"].details["prediction"] == 1
    assert found["bool"].details["error"] == "false_negative"


# -- before labels: low confidence --------------------------------------------------------


def test_low_confidence_is_a_score_within_the_margin_of_the_threshold() -> None:
    settings = replace(SETTINGS, threshold=0.3, margin=0.1)
    rows = [row(f"s{s}", score=s) for s in (0.15, 0.21, 0.3, 0.39, 0.45, 0.9)]
    found = by_id(candidates(rows, settings, now=NOW))
    assert set(found) == {"s0.21", "s0.3", "s0.39"}
    assert all(c.reason == LOW_CONFIDENCE for c in found.values())
    assert found["s0.3"].details["priority"]["uncertainty"] == 1.0
    # uncertainty is relative to the room on each side: 0.39 is 0.09 into 0.7 of room
    # above the threshold, 0.21 is 0.09 into 0.3 below it
    assert found["s0.3"].priority > found["s0.39"].priority > found["s0.21"].priority
    assert found["s0.3"].details["summary"] == "score 0.3 within 0.1 of the threshold 0.3"
    # a labelled row is judged by its label, not its score
    assert candidates([row("x", score=0.31, label=0)], settings, now=NOW) == []


def test_multiclass_low_confidence_is_high_entropy() -> None:
    settings = replace(SETTINGS, task="multiclass", margin=0.1)
    cutoff = binary_entropy(0.6)  # 0.971 bits
    assert cutoff == pytest.approx(0.970950594, abs=1e-9)
    spread = {"a": 0.4, "b": 0.35, "c": 0.25}
    peaked = {"a": 0.9, "b": 0.05, "c": 0.05}
    rows = [
        row("spread", score=None, prediction="a", probabilities=spread),
        row("peaked", score=None, prediction="a", probabilities=peaked),
        row("wrong", score=None, prediction="a", probabilities=peaked, label="b"),
    ]
    found = by_id(candidates(rows, settings, now=NOW))
    assert set(found) == {"spread", "wrong"}
    h = -sum(p * math.log(p) for p in spread.values()) / math.log(3)
    assert found["spread"].details["priority"]["uncertainty"] == pytest.approx(h, abs=1e-6)
    assert h > cutoff
    assert found["wrong"].details["error"] == "wrong_class"
    assert found["wrong"].details["priority"]["impact"] == 1.0


def test_normalized_entropy() -> None:
    assert normalized_entropy([0.5, 0.5]) == pytest.approx(1.0)
    assert normalized_entropy([1.0, 0.0, 0.0]) == 0.0
    assert normalized_entropy([0.25] * 4) == pytest.approx(1.0)
    assert normalized_entropy([1.0]) is None
    # for two classes the multiclass rule is the binary rule at threshold 0.5
    settings = replace(SETTINGS, task="multiclass", margin=0.1)
    for p in (0.55, 0.59, 0.61, 0.7):
        found = candidates(
            [row("r", score=None, prediction="a", probabilities={"a": p, "b": 1 - p})],
            settings,
            now=NOW,
        )
        assert bool(found) == (abs(p - 0.5) < 0.1), p


# -- before labels: out of distribution ---------------------------------------------------


def test_out_of_distribution_rules(profile: Any) -> None:
    # reference amount is 0..100 (range 100): values beyond [-25, 125] are far out
    rows = {
        "unseen": {"amount": 50.0, "country": "XX"},
        "above": {"amount": 125.5, "country": "DE"},
        "edge": {"amount": 125.0, "country": "DE"},
        "below": {"amount": -30.0, "country": "FR"},
        "inside": {"amount": 110.0, "country": "NL"},
        "bool": {"amount": 1.0, "is_new": True, "country": "DE"},
        "constant": {"amount": 1.0, "version": 4, "country": "DE"},
        "missing": {"amount": None, "country": None},
        "wrong-type": {"amount": "lots", "country": "DE"},
        "unprofiled": {"amount": 1.0, "country": "DE", "new_column": "zz"},
    }
    found = by_id(
        candidates(
            [row(rid, score=0.95, features=f) for rid, f in rows.items()],
            SETTINGS,
            now=NOW,
            profile=profile,
        )
    )
    assert set(found) == {"unseen", "above", "below", "constant"}
    assert all(c.reason == OUT_OF_DISTRIBUTION for c in found.values())
    assert found["unseen"].details["features"] == [
        {"column": "country", "value": "XX", "rule": "unseen_category"}
    ]
    assert found["above"].details["features"] == [
        {
            "column": "amount",
            "value": 125.5,
            "rule": "above_range",
            "reference_min": 0.0,
            "reference_max": 100.0,
            "limit": 125.0,
        }
    ]
    assert found["below"].details["summary"] == (
        "amount=-30 far below the reference range [0, 100]"
    )
    assert found["constant"].details["features"][0]["rule"] == "above_range"


def test_more_features_out_weigh_more_and_the_check_can_be_switched_off(profile: Any) -> None:
    one = row("one", score=0.95, features={"amount": 500.0, "country": "DE"})
    two = row("two", score=0.95, features={"amount": 500.0, "country": "XX"})
    found = by_id(candidates([one, two], SETTINGS, now=NOW, profile=profile))
    assert found["one"].details["priority"]["impact"] == 0.5
    assert found["two"].details["priority"]["impact"] == 0.75
    assert found["two"].priority > found["one"].priority
    off = replace(SETTINGS, out_of_distribution=False)
    assert candidates([one, two], off, now=NOW, profile=profile) == []


def test_a_misclassified_row_notes_that_it_was_also_out_of_distribution(profile: Any) -> None:
    [c] = candidates(
        [row("r", score=0.8, label=0, features={"amount": 1e6, "country": "DE"})],
        SETTINGS,
        now=NOW,
        profile=profile,
    )
    assert c.reason == MISCLASSIFIED
    assert c.details["out_of_distribution"][0]["column"] == "amount"


def test_regression_rows_are_only_queued_out_of_distribution(profile: Any) -> None:
    settings = replace(SETTINGS, task="regression")
    rows = [
        row("far", score=None, prediction=3.2, features={"amount": 1e4}),
        row("near", score=None, prediction=3.2, features={"amount": 10.0}),
        row("labelled", score=None, prediction=3.2, label=9.9, features={"amount": 1e4}),
    ]
    found = by_id(candidates(rows, settings, now=NOW, profile=profile))
    assert set(found) == {"far"}
    assert found["far"].reason == OUT_OF_DISTRIBUTION
    assert found["far"].details["priority"]["uncertainty"] == 0.5  # unknown


# -- dedupe, ranking, cap -----------------------------------------------------------------


def test_one_candidate_per_prediction_with_the_strongest_reason(profile: Any) -> None:
    doubtful = row("a", score=0.52)  # low confidence
    both = row("b", score=0.52, features={"amount": 1e6, "country": "DE"})  # also out
    rows = [
        doubtful,
        both,
        replace(doubtful, label=0),  # the same prediction again, now known to be wrong
        replace(both),
    ]
    found = candidates(rows, SETTINGS, now=NOW, profile=profile)
    assert [(c.prediction_id, c.reason) for c in found] == [
        ("a", MISCLASSIFIED),
        ("b", OUT_OF_DISTRIBUTION),
    ]


def test_reasons_rank_before_weights() -> None:
    rows = [
        row("lc", score=0.5),  # the most uncertain possible
        row("fp", score=0.99, label=0, ts=NOW - timedelta(days=60)),  # cheap, sure, old
    ]
    found = candidates(rows, SETTINGS, now=NOW)
    assert [c.prediction_id for c in found] == ["fp", "lc"]
    assert found[0].priority >= 2 > 1 > found[1].priority


def test_cap_keeps_the_highest_priorities_in_a_deterministic_order(profile: Any) -> None:
    rng = random.Random(3)
    rows = []
    for i in range(200):
        score = rng.random()
        label = rng.choice([None, None, 0, 1])
        features = {"amount": rng.choice([10.0, 10.0, 10.0, 999.0]), "country": "DE"}
        rows.append(row(f"r{i:03d}", score=score, label=label, features=features))
    rows += [row(f"tie{i}", score=0.5) for i in (3, 1, 2)]  # identical but for the id
    settings = replace(SETTINGS, per_window=20)
    first = select(rows, settings, now=NOW, profile=profile)
    assert len(first) == 20
    everything = candidates(rows, settings, now=NOW, profile=profile)
    assert first == everything[:20]
    keys = [(-c.priority, c.prediction_id) for c in everything]
    assert keys == sorted(keys)
    assert len({c.prediction_id for c in everything}) == len(everything)
    for seed in range(3):
        shuffled = rows[:]
        random.Random(seed).shuffle(shuffled)
        assert select(shuffled, settings, now=NOW, profile=profile) == first
    ties = [c.prediction_id for c in everything if c.prediction_id.startswith("tie")]
    assert ties == ["tie1", "tie2", "tie3"]
    assert select(rows, replace(settings, per_window=0), now=NOW) == []


# -- refreshing through a repository ------------------------------------------------------


class MemoryRepository:
    """An in-memory implementation of :class:`monitor.review.Repository`."""

    def __init__(self, rows: Sequence[ReviewRow]) -> None:
        self.rows = list(rows)
        self.queued: dict[str, tuple[datetime, Candidate]] = {}

    def window_rows(self, model: str, window_start: datetime) -> Sequence[ReviewRow]:
        return self.rows

    def enqueue(
        self,
        model: str,
        window_start: datetime,
        candidates: Sequence[Candidate],
        *,
        per_window: int,
        now: datetime,
    ) -> Mapping[str, int]:
        room = per_window - sum(w == window_start for w, _ in self.queued.values())
        added = 0
        for c in candidates:
            if c.prediction_id not in self.queued and added < room:
                self.queued[c.prediction_id] = (window_start, c)
                added += 1
        return {"added": added, "upgraded": 0, "over_cap": 0}


def test_refresh_reads_the_window_and_queues_its_candidates() -> None:
    repository = MemoryRepository([row("a", 0.5), row("b", 0.3, label=1), row("c", 0.99)])
    queue = ReviewQueue(repository, replace(SETTINGS, per_window=5))
    summary = queue.refresh("m", T0, now=NOW)
    assert summary == {
        "window": T0.isoformat(),
        "rows": 3,
        "candidates": {MISCLASSIFIED: 1, LOW_CONFIDENCE: 1},
        "added": 2,
        "upgraded": 0,
        "over_cap": 0,
    }
    assert sorted(repository.queued) == ["a", "b"]
    again = queue.refresh("m", T0, rows=[row("d", 0.45)], now=NOW)
    assert again["rows"] == 1 and again["added"] == 1
