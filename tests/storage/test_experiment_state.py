"""The experiments table on SQLite and PostgreSQL: one experiment per challenger,
phase changes as compare-and-set, details merged per phase."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from storage.errors import InvalidOperationError
from storage.experiment_state import AB, DONE, REJECTED, SHADOW, ExperimentStates
from storage.store import Store

T0 = datetime(2026, 11, 28, 10, 0, tzinfo=UTC)


@pytest.fixture
def states(store: Store) -> ExperimentStates:
    return ExperimentStates(store)


def test_start_is_idempotent_per_challenger(states: ExperimentStates) -> None:
    first = states.start("m", "2", champion="1", now=T0, reason="registered as challenger")
    again = states.start("m", "2", champion="9", now=T0 + timedelta(hours=1), reason="again")
    assert again == first
    assert (first.phase, first.champion, first.started_at) == (SHADOW, "1", T0)
    assert states.active("m") == first
    assert states.active("other") is None


def test_advance_is_compare_and_set(states: ExperimentStates) -> None:
    states.start("m", "2", champion="1", now=T0, reason="challenger")
    later = T0 + timedelta(days=1)
    moved = states.advance(
        "m",
        "2",
        AB,
        expected=SHADOW,
        now=later,
        reason="shadow: better",
        details={"shadow": {"verdict": "better", "n": 2000}},
    )
    assert (moved.phase, moved.phase_at, moved.finished_at) == (AB, later, None)
    assert moved.details == {"shadow": {"verdict": "better", "n": 2000}}
    with pytest.raises(InvalidOperationError, match="is in phase 'ab', not 'shadow'"):
        states.advance("m", "2", REJECTED, expected=SHADOW, now=later, reason="late")
    assert states.get("m", "2") == moved  # nothing changed


def test_details_merge_and_final_phases_end_it(states: ExperimentStates) -> None:
    states.start("m", "2", champion="1", now=T0, reason="challenger")
    states.note("m", "2", {"shadow": {"scored": 10}}, phase=SHADOW)
    states.note("m", "2", {"ab": {"decision": "continue"}}, phase=SHADOW)
    end = T0 + timedelta(days=3)
    done = states.advance("m", "2", DONE, expected=SHADOW, now=end, reason="baked")
    assert done.details == {"shadow": {"scored": 10}, "ab": {"decision": "continue"}}
    assert done.finished_at == end and not done.active
    assert states.active("m") is None
    states.start("m", "3", champion="2", now=end, reason="next challenger")
    assert [e.challenger for e in states.history("m")] == ["3", "2"]


def test_unknown_phase_refused(states: ExperimentStates) -> None:
    states.start("m", "2", champion=None, now=T0, reason="challenger")
    with pytest.raises(InvalidOperationError, match="unknown experiment phase 'won'"):
        states.advance("m", "2", "won", expected=SHADOW, now=T0, reason="x")
