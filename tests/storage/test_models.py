"""driftd's record of the registry, on SQLite and PostgreSQL: versions, the append-only
alias log, training attempts and the signals the retrain triggers read."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import orjson
import pytest

from storage import schema
from storage.errors import StorageError
from storage.models import ModelRepository, ModelVersion
from storage.results import (
    DriftResult,
    EstimatedMetricResult,
    EstimateResult,
    MetricResult,
    RealizedPerformance,
    WindowPerformance,
    WindowResults,
)
from storage.store import Store

T0 = datetime(2026, 11, 1, tzinfo=UTC)
H = timedelta(hours=1)


def version(v: str, parent: str | None = None) -> ModelVersion:
    return ModelVersion(
        "fraud", v, "candidate", f"models:/fraud/{v}", "sklearn", parent, "ab" * 32, "run" + v,
        {"roc_auc": 0.8}, {"seed": 1}, {"trigger": "drift"}, T0,
    )  # fmt: skip


@pytest.fixture
def repo(store: Store) -> ModelRepository:
    r = ModelRepository(store)
    for v in ("1", "2", "9", "10"):
        r.add_version(version(v, parent=None if v == "1" else "1"))
    return r


def test_versions_come_back_in_version_order_with_their_record(repo: ModelRepository) -> None:
    versions = repo.versions("fraud")

    assert [v.version for v in versions] == ["1", "2", "9", "10"]
    assert versions[1] == version("2", parent="1")
    assert repo.version("fraud", "3") is None
    assert repo.versions("churn") == []


def test_a_move_is_one_decision_appended_to_the_log(repo: ModelRepository) -> None:
    repo.move_aliases("fraud", {"champion": "1"}, by="alice", reason="import", now=T0)
    repo.move_aliases("fraud", {"challenger": "2"}, by="retrain", reason="gates passed", now=T0 + H)

    moves = repo.move_aliases(
        "fraud",
        {"champion": "2", "previous": "1", "challenger": None},
        by="bob",
        reason="won the A/B test",
        now=T0 + 2 * H,
    )

    assert repo.aliases("fraud") == {"champion": "2", "previous": "1"}
    assert len({m.move for m in moves}) == 1
    history = repo.alias_history("fraud")
    assert [(m.alias, m.from_version, m.to_version, m.moved_by) for m in history] == [
        ("champion", None, "1", "alice"),
        ("challenger", None, "2", "retrain"),
        ("champion", "1", "2", "bob"),
        ("previous", None, "1", "bob"),
        ("challenger", "2", None, "bob"),
    ]
    assert history[-1].moved_at == T0 + 2 * H and history[-1].reason == "won the A/B test"
    assert [m.alias for m in repo.alias_history("fraud", version="1")] == ["champion"] * 2 + [
        "previous"
    ]


def test_a_move_decided_on_stale_aliases_changes_nothing(repo: ModelRepository) -> None:
    repo.move_aliases("fraud", {"champion": "1"}, by="a", reason="r", now=T0)
    repo.move_aliases("fraud", {"champion": "9"}, by="other process", reason="r", now=T0)

    with pytest.raises(
        StorageError, match="alias 'champion' of 'fraud' is at version '9', not '1'"
    ):
        repo.move_aliases(
            "fraud",
            {"champion": "2", "previous": "1"},
            by="b",
            reason="promote",
            now=T0 + H,
            expected={"champion": "1"},
        )

    assert repo.aliases("fraud") == {"champion": "9"}
    assert len(repo.alias_history("fraud")) == 2


def test_moves_to_unknown_versions_or_without_reason_are_refused(repo: ModelRepository) -> None:
    with pytest.raises(StorageError, match="no model version '77' in registry 'fraud'"):
        repo.move_aliases("fraud", {"champion": "77"}, by="a", reason="r", now=T0)
    with pytest.raises(StorageError, match="a reason is required"):
        repo.move_aliases("fraud", {"champion": "1"}, by="a", reason=" ", now=T0)
    assert repo.aliases("fraud") == {} and repo.alias_history("fraud") == []


def test_training_attempts_are_recorded(store: Store) -> None:
    repo = ModelRepository(store)
    pk = repo.start_training("fraud", trigger="manual", reason="new feature", now=T0, data_end=T0)
    repo.finish_training(pk, outcome="rejected", now=T0 + H, details={"gate": "slices"})

    (t,) = repo.trainings("fraud")
    assert (t.trigger, t.outcome, t.finished_at, t.details) == (
        "manual", "rejected", T0 + H, {"gate": "slices"},
    )  # fmt: skip


def _window(conn: object, start: datetime, drifted: bool | None, **perf: object) -> None:
    results = None
    if drifted is not None:  # stored as the statistics job stores a window's results
        drift = DriftResult(drifted=drifted, share=float(drifted), drift_share=0.5)
        results = orjson.dumps(WindowResults(start, start + H, 10, drift).to_dict()).decode()
    conn.execute(  # type: ignore[attr-defined]
        schema.windows.insert().values(
            model="fraud", start=start, end=start + H, predictions=10, results=results,
            updated_at=start,
        )
    )  # fmt: skip
    if perf:
        conn.execute(  # type: ignore[attr-defined]
            schema.window_performance.insert().values(
                model="fraud", window_start=start, predictions=10, labelled=10,
                updated_at=start, **{k: orjson.dumps(v).decode() if isinstance(v, dict) else v
                                     for k, v in perf.items()},
            )
        )  # fmt: skip


def test_signals_gather_drift_performance_detections_and_new_labels(store: Store) -> None:
    # stored as the performance job stores them
    realized = RealizedPerformance(
        "binary", 10, 0.95, {"roc_auc": MetricResult("roc_auc", 0.71, 0.6, 0.8, "delong", 10)}
    )
    auc = WindowPerformance(T0, 10, 10, 1.0, "complete", realized=realized).realized_dict()
    estimate = EstimatedMetricResult("roc_auc", 0.69, 0.02, 0.7, 0.65, 0.75, alert=False)
    est = EstimateResult(10, 0.5, "isotonic", 10, {"roc_auc": estimate}).to_dict()
    with store.transaction() as conn:
        _window(conn, T0, True, state="complete", realized=auc, estimated=est)
        _window(conn, T0 + H, False, state="pending")
        _window(conn, T0 + 2 * H, None)
        for i in range(6):
            ts = T0 + i * 20 * timedelta(minutes=1)
            conn.execute(
                schema.predictions.insert().values(
                    model="fraud", id=f"p{i}", ts=ts, window_start=ts, features="{}"
                )
            )
            if i != 3:
                conn.execute(
                    schema.labels.insert().values(model="fraud", id=f"p{i}", label="1", ts=ts)
                )
        for minutes in (10, 200):
            conn.execute(
                schema.detections.insert().values(
                    model="fraud", detector="adwin", position=minutes, ts=T0,
                    created_at=T0 + minutes * timedelta(minutes=1),
                )
            )  # fmt: skip
    repo = ModelRepository(store)

    signals = repo.signals("fraud", windows=10, matured_before=T0 + 90 * timedelta(minutes=1))

    assert [(w.start, w.drifted, w.state) for w in signals.windows] == [
        (T0, True, "complete"), (T0 + H, False, "pending"), (T0 + 2 * H, None, None),
    ]  # fmt: skip
    assert signals.windows[0].realized == {"roc_auc": 0.71}
    assert signals.windows[0].estimated == {"roc_auc": 0.69}
    assert signals.new_labels == 4  # p0, p1, p2, p4 matured (p3 unlabelled, p5 too new)
    assert len(signals.detections) == 2 and signals.last_training is None
    assert [w.start for w in repo.signals("fraud", windows=2, matured_before=T0).windows] == [
        T0 + H, T0 + 2 * H,
    ]  # fmt: skip

    repo.start_training(
        "fraud", trigger="drift", reason="r", now=T0 + H, data_end=T0 + 30 * timedelta(minutes=1)
    )
    after = repo.signals("fraud", windows=10, matured_before=T0 + 90 * timedelta(minutes=1))

    assert after.last_training is not None and after.last_training.trigger == "drift"
    assert after.detections == (T0 + 200 * timedelta(minutes=1),)
    assert after.new_labels == 2  # p2 (40 min) and p4 (80 min): newer than the data used
