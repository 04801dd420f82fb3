"""driftd.experiments.sync keeps each challenger's experiment in step with the aliases in
driftd's record (real store, SQLite and PostgreSQL): a new challenger starts in shadow,
dated from the alias move; a person's promotion starts the bake period; a cleared or
moved alias supersedes it; a finished trial is never started again."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from driftd.app import App
from driftd.config import parse
from driftd.experiments import sync
from retrain.registry import Registry
from storage.experiment_state import AB, BAKING, REJECTED, SHADOW, SUPERSEDED, ExperimentStates
from storage.models import ModelRepository, ModelVersion
from storage.store import Store

T0 = datetime(2026, 11, 2, 9, 0, tzinfo=UTC)


class Clock:
    def __init__(self, now: datetime) -> None:
        self.now = now

    def __call__(self) -> datetime:
        return self.now


@pytest.fixture
def clock() -> Clock:
    return Clock(T0)


def config_data(**extra: object) -> dict[str, object]:
    return {
        "model": {"name": "fraud"},
        "reference": {"path": "reference.csv", "target": "is_fraud"},
        "sources": {
            "predictions": [{"paths": ["logs/p*.jsonl"]}],
            "labels": [{"paths": ["logs/l*.jsonl"]}],
        },
        **extra,
    }


@pytest.fixture
def app(store: Store, tmp_path: Path, clock: Clock) -> Iterator[App]:
    config = parse(config_data(), base=tmp_path)
    with App(config, store=store, clock=clock) as application:
        yield application


@pytest.fixture
def reg(store: Store) -> Registry:
    """The registry's driftd side: sync reads only driftd's record of the aliases."""
    repository = ModelRepository(store)
    for version in ("1", "2", "3"):
        repository.add_version(
            ModelVersion(
                model="fraud",
                version=version,
                status="candidate",
                uri=f"models:/fraud/{version}",
                framework="sklearn",
                parent_version=None,
                digest="0" * 64,
                run_id=None,
                metrics={},
                params={},
                details={},
                created_at=T0,
            )
        )
    return Registry(name="fraud", tracking_uri="sqlite:///unused.db", repository=repository)


def move(reg: Registry, when: datetime, by: str = "test", **aliases: str | None) -> None:
    reg.repository.move_aliases(reg.name, aliases, by=by, reason=f"{by} moved", now=when)


def test_a_new_challenger_starts_in_shadow_dated_from_its_alias_move(
    app: App, reg: Registry, clock: Clock
) -> None:
    assert sync(app, reg) is None  # nothing on trial
    move(reg, T0, champion="1")
    assert sync(app, reg) is None  # a champion alone is no experiment
    move(reg, T0 + timedelta(hours=2), by="driftd retrain", challenger="2")
    clock.now = T0 + timedelta(hours=5)
    exp = sync(app, reg)
    assert exp is not None
    assert (exp.challenger, exp.champion, exp.phase) == ("2", "1", SHADOW)
    assert exp.started_at == T0 + timedelta(hours=2)  # the alias move, not the sync
    assert "became challenger" in (exp.reason or "")
    again = sync(app, reg)
    assert again == exp  # the same experiment, unchanged


def test_without_the_shadow_job_a_challenger_goes_straight_to_ab(
    store: Store, tmp_path: Path, reg: Registry, clock: Clock
) -> None:
    config = parse(config_data(shadow={"enabled": False}), base=tmp_path)
    with App(config, store=store, clock=clock) as application:
        move(reg, T0, champion="1", challenger="2")
        exp = sync(application, reg)
        assert exp is not None and exp.phase == AB
        assert "shadow disabled" in (exp.reason or "")


def test_a_challenger_promoted_by_hand_enters_the_bake_period(
    app: App, reg: Registry, clock: Clock
) -> None:
    move(reg, T0, champion="1", challenger="2")
    assert sync(app, reg) is not None
    clock.now = T0 + timedelta(hours=3)
    move(reg, clock.now, by="alice", champion="2", previous="1", challenger=None)
    exp = sync(app, reg)
    assert exp is not None and exp.phase == BAKING
    assert exp.phase_at == clock.now
    assert "promoted to champion by alice" in (exp.reason or "")


def test_a_cleared_or_moved_alias_supersedes_the_experiment(
    app: App, reg: Registry, clock: Clock
) -> None:
    move(reg, T0, champion="1", challenger="2")
    sync(app, reg)
    clock.now = T0 + timedelta(hours=1)
    move(reg, clock.now, by="bob", challenger="3")
    exp = sync(app, reg)
    assert exp is not None and (exp.challenger, exp.phase) == ("3", SHADOW)  # the new one
    old = ExperimentStates(app.store).get("fraud", "2")
    assert old is not None and old.phase == SUPERSEDED
    assert "moved to version 3 by bob" in (old.reason or "")
    assert old.finished_at == clock.now

    clock.now = T0 + timedelta(hours=2)
    move(reg, clock.now, by="bob", challenger=None)
    assert sync(app, reg) is None
    cleared = ExperimentStates(app.store).get("fraud", "3")
    assert cleared is not None and cleared.phase == SUPERSEDED
    assert "was cleared" in (cleared.reason or "")


def test_a_finished_challenger_is_not_started_again(app: App, reg: Registry, clock: Clock) -> None:
    move(reg, T0, champion="1", challenger="2")
    exp = sync(app, reg)
    assert exp is not None
    states = ExperimentStates(app.store)
    states.advance("fraud", "2", REJECTED, expected=SHADOW, now=T0, reason="worse in shadow")
    clock.now = T0 + timedelta(days=1)
    assert sync(app, reg) is None  # the alias still names it, but its trial is over
    assert [e.phase for e in states.history("fraud")] == [REJECTED]
