"""Contract of :class:`storage.experiment.ExperimentRepository` on SQLite and PostgreSQL,
and the A/B analysis fed from it end to end."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from typing import Any

import numpy as np
import pytest

from monitor.ab.analysis import Action, Settings, analyse
from monitor.ab.metrics import fold
from monitor.ab.sequential import Moments
from storage import schema
from storage.experiment import ExperimentRepository, ShadowScore
from storage.store import Store

T0 = datetime(2026, 11, 28, 10, 0, tzinfo=UTC)
MINUTE = timedelta(minutes=1)


@pytest.fixture
def repo(store: Store) -> ExperimentRepository:
    return ExperimentRepository(store)


def add(
    store: Store,
    rows: list[tuple[str, str | None, int, float]],
    *,
    start: datetime = T0,
    model: str = "m",
) -> None:
    """Predictions (id, variant, prediction, score), one a minute from ``start``."""
    with store.transaction() as conn:
        conn.execute(
            schema.predictions.insert(),
            [
                {
                    "model": model,
                    "id": rid,
                    "ts": start + i * MINUTE,
                    "window_start": start,
                    "model_version": {"champion": "3", "challenger": "4"}.get(variant or ""),
                    "variant": variant,
                    "features": json.dumps({"amount": float(i)}),
                    "prediction": json.dumps(pred),
                    "score": score,
                }
                for i, (rid, variant, pred, score) in enumerate(rows)
            ],
        )


def label(store: Store, labels: dict[str, Any], model: str = "m") -> None:
    with store.transaction() as conn:
        conn.execute(
            schema.labels.insert(),
            [
                {"model": model, "id": k, "label": json.dumps(v), "ts": T0 + timedelta(days=1)}
                for k, v in labels.items()
            ],
        )


def test_served_counts_per_variant_since_the_start(
    store: Store, repo: ExperimentRepository
) -> None:
    add(store, [("old", "champion", 1, 0.9)], start=T0 - timedelta(days=1))
    add(store, [("a", "champion", 1, 0.9), ("b", "challenger", 0, 0.2), ("c", None, 0, 0.1)])
    add(store, [("a", "challenger", 1, 0.9)], model="other")
    assert repo.served_counts("m", since=T0) == {"champion": 1, "challenger": 1, None: 1}
    assert repo.served_counts("m", since=T0, until=T0 + MINUTE) == {"champion": 1}
    assert repo.served_counts("nobody", since=T0) == {}


def test_labelled_rows_are_matured_joined_and_paged(
    store: Store, repo: ExperimentRepository
) -> None:
    add(
        store,
        [(f"r{i}", "champion" if i % 2 else "challenger", int(i % 3 == 0), 0.5) for i in range(10)],
    )
    label(store, {f"r{i}": int(i % 3 == 0) for i in range(10) if i != 4})  # r4 has no label
    matured = T0 + 8 * MINUTE  # r8, r9 are too recent
    rows = repo.labelled_rows("m", since=T0, matured_before=matured, limit=100)
    assert [r.id for r in rows] == ["r0", "r1", "r2", "r3", "r5", "r6", "r7"]
    r3 = rows[3]
    assert (r3.variant, r3.model_version, r3.prediction, r3.label) == ("champion", "3", 1, 1)
    assert r3.ts == T0 + 3 * MINUTE
    pages = list(repo.iter_labelled_rows("m", since=T0, matured_before=matured, page=3))
    assert [len(p) for p in pages] == [3, 3, 1]
    assert [r.id for p in pages for r in p] == [r.id for r in rows]
    only = repo.labelled_rows("m", since=T0, matured_before=matured, variants=["challenger"])
    assert [r.id for r in only] == ["r0", "r2", "r6"]
    # matured: r0..r7; the champion served the odd ones, the challenger's r4 has no label
    assert repo.label_coverage("m", since=T0, matured_before=matured) == {
        "champion": (4, 4),
        "challenger": (4, 3),
    }


def test_shadow_scores_are_saved_once_and_joined_with_both_models(
    store: Store, repo: ExperimentRepository
) -> None:
    add(store, [("a", "champion", 1, 0.8), ("b", None, 0, 0.3), ("c", "challenger", 1, 0.7)])
    add(store, [("d", "champion", 0, 0.4)], start=T0 + timedelta(hours=1))
    todo = repo.unscored("m", "4", since=T0)
    assert [r.id for r in todo] == ["a", "b", "d"]  # the challenger's own rows are not shadowed
    assert todo[0].features == {"amount": 0.0}
    now = T0 + timedelta(hours=2)
    assert (
        repo.save_shadow("m", "4", [ShadowScore("a", 0, 0.45), ShadowScore("b", 1, 0.6)], now=now)
        == 2
    )
    # re-running the batch writes nothing and keeps the first answers
    assert repo.save_shadow("m", "4", [ShadowScore("a", 1, 0.99)], now=now) == 0
    assert [r.id for r in repo.unscored("m", "4", since=T0)] == ["d"]
    assert [r.id for r in repo.unscored("m", "5", since=T0)] == ["a", "b", "d"]  # per version
    label(store, {"a": 1, "b": 0, "d": 0})
    repo.save_shadow("m", "4", [ShadowScore("d", 0, 0.1, {"0": 0.9, "1": 0.1})], now=now)
    rows, total = repo.shadow_rows("m", "4", since=T0, matured_before=now, limit=2)
    assert total == 3 and [r.id for r in rows] == ["a", "b"]
    a = rows[0]
    assert (a.label, a.champion_prediction, a.champion_score) == (1, 1, 0.8)
    assert (a.challenger_prediction, a.challenger_score) == (0, 0.45)
    early, total = repo.shadow_rows("m", "4", since=T0, matured_before=T0 + MINUTE, limit=10)
    assert [r.id for r in early] == ["a"] and total == 1


def test_the_analysis_runs_on_stored_rows(store: Store, repo: ExperimentRepository) -> None:
    # 50/50 experiment, the challenger right 90% of the time, the champion 70%
    rng = np.random.default_rng(9)
    n = 3000
    variants = np.where(rng.random(n) < 0.5, "champion", "challenger")
    truth = rng.integers(0, 2, n)
    right = rng.random(n) < np.where(variants == "challenger", 0.9, 0.7)
    preds = np.where(right, truth, 1 - truth)
    add(store, [(f"r{i}", str(variants[i]), int(preds[i]), 0.5) for i in range(n)])
    label(store, {f"r{i}": int(truth[i]) for i in range(n)})
    matured = T0 + n * MINUTE
    moments: dict[str, dict[str, Moments]] = {}
    for page in repo.iter_labelled_rows("m", since=T0, matured_before=matured, page=700):
        variants_, labels_ = [r.variant for r in page], [r.label for r in page]
        preds_ = [r.prediction for r in page]
        moments = fold(moments, variants_, labels_, preds_, ["accuracy", "fpr"])
    settings = Settings(split={"champion": 0.5, "challenger": 0.5}, min_sample=500)
    decision = analyse(
        repo.served_counts("m", since=T0), moments, settings, elapsed=timedelta(days=2)
    )
    assert decision.action is Action.PROMOTE, decision.reason
    assert decision.primary is not None
    assert decision.primary.n_champion + decision.primary.n_challenger == n
    assert decision.primary.challenger == pytest.approx(
        float(right[variants == "challenger"].mean())
    )
