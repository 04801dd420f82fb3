"""Incident planning: what opens, what is sent, what stays quiet, what resolves."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from typing import Any

import numpy as np

from alerts.incidents import Plan, Policy, plan
from alerts.signals import (
    COLUMN_DRIFT,
    DATASET_DRIFT,
    JOB_FAILED,
    QUALITY,
    QUARANTINE,
    TRAINING,
    Evaluation,
    Signal,
    quarantine_evaluation,
    run_evaluation,
    window_evaluation,
)
from monitor.drift.profile import fit_profile
from monitor.drift.state import partial, row_keys
from monitor.records import FeatureType
from monitor.results import WindowResults
from monitor.statistics import DriftSettings, StatisticsEngine
from storage.alerts import OPEN, RESOLVED, Incident, Silence

T0 = datetime(2026, 11, 2, tzinfo=UTC)
W = timedelta(hours=6)
MODEL = "fraud"


SCHEMA = {
    "amount": FeatureType.NUMERIC,
    "country": FeatureType.CATEGORICAL,
    "hour": FeatureType.NUMERIC,
    "age": FeatureType.NUMERIC,
}
COUNTRIES = np.array(["DE", "FR", "US", "JP", "IT"], dtype=object)
ROWS = 2400


def draw(g: np.random.Generator, n: int, shifted: Sequence[str] = (), strength: float = 0.15):
    """Rows like the reference's; ``shifted`` columns moved by ``strength`` (0.15: a
    column drift of warning severity, 1: far past its threshold, critical)."""
    p = [0.1, 0.1, 0.2, 0.3, 0.3] if "country" in shifted else [0.35, 0.25, 0.2, 0.1, 0.1]
    columns: dict[str, Any] = {
        "amount": g.lognormal(3.5, 0.8, n) * (1 + 0.6 * strength * ("amount" in shifted)),
        "country": COUNTRIES[g.choice(5, n, p=p)],
        "hour": np.minimum(23, g.integers(0, 24, n) + 6 * ("hour" in shifted)).astype(float),
        "age": g.normal(45 + 8 * strength * ("age" in shifted), 12, n),
    }
    return columns


PROFILE = fit_profile(draw(np.random.default_rng(0), 20_000), SCHEMA, model_version="1")
ENGINE = StatisticsEngine(
    repository=None,  # type: ignore[arg-type]  # window_results reads no store
    model=MODEL,
    profile=PROFILE,
    settings=DriftSettings(drift_share=0.5, multivariate=False),
)


def window_results(
    k: int,
    drifted: Sequence[str] = (),
    quality: Sequence[str] = (),
    *,
    strength: float = 0.15,
) -> WindowResults:
    """The statistics engine's real results for window ``k``: seeded rows with these
    columns shifted, and these quality problems (``new_categories``: 5% of the countries
    unseen; ``row_volume``: a tenth of the expected rows)."""
    columns = draw(np.random.default_rng(100 + k), ROWS, drifted, strength)
    if "new_categories" in quality:
        columns["country"][: ROWS // 20] = "BR"
    state = partial(
        {name: list(values) for name, values in columns.items()},
        row_keys([f"{k}-{i}" for i in range(ROWS)]),
        PROFILE,
    )
    expected = 10.0 * ROWS if "row_volume" in quality else None
    return ENGINE.window_results(state, T0 + k * W, T0 + (k + 1) * W, ROWS, expected)


class Cycle:
    """Runs plans like the manager does, keeping the incident table in memory."""

    def __init__(self, policy: Policy | None = None) -> None:
        self.policy = policy or Policy()
        self.incidents: dict[int, Incident] = {}
        self.high_water: datetime | None = None
        self.silences: list[Silence] = []
        self.next_root = 100

    def __call__(self, evaluations: Sequence[Evaluation], now: datetime) -> Plan:
        open_ = [i for i in self.incidents.values() if i.state == OPEN]
        p = plan(
            MODEL,
            evaluations,
            open_,
            self.silences,
            now=now,
            high_water=self.high_water,
            policy=self.policy,
        )
        self.high_water = p.high_water
        for w in p.incidents:
            if w.pk is None:
                w.pk = len(self.incidents) + 1
            self.incidents[w.pk] = replace(w.incident, pk=w.pk)
        if p.announce:
            self.next_root += 1
            for item in p.announce:
                pk = next(i.pk for i in self.incidents.values() if i.key == item.key)
                self.incidents[pk] = replace(self.incidents[pk], root_pk=self.next_root)
        return p

    def open(self) -> dict[tuple[str, str], Incident]:
        return {(i.rule, i.scope): i for i in self.incidents.values() if i.state == OPEN}


def windows(*specs: tuple[int, Sequence[str]]) -> list[Evaluation]:
    return [window_evaluation(MODEL, window_results(k, cols)) for k, cols in specs]


def test_many_drifted_columns_make_one_message() -> None:
    cycle = Cycle()
    p = cycle(windows((0, ["amount", "country", "hour"])), T0 + W)

    assert len(p.announce) == 4  # dataset drift + 3 columns, in one message
    assert [i.key[1] for i in p.announce][0] == DATASET_DRIFT  # the broadest first
    assert {i.key[2] for i in p.announce if i.key[1] == COLUMN_DRIFT} == {
        "amount",
        "country",
        "hour",
    }
    assert p.threads == {}
    assert all(i.change == "new" for i in p.announce)


def test_a_firing_incident_is_not_repeated_until_the_interval_passes() -> None:
    cycle = Cycle(Policy(repeat_interval=timedelta(hours=4)))
    cycle(windows((0, ["amount"])), T0)
    # the same drift, one hour later and in the next window: nothing to say
    quiet = cycle(windows((1, ["amount"])), T0 + timedelta(hours=1))
    assert quiet.announce == [] and quiet.threads == {}
    # four hours after the last notice: a repeat, in the original message's thread
    again = cycle(windows((2, ["amount"])), T0 + timedelta(hours=4))
    assert again.announce == []
    [(root, items)] = again.threads.items()
    assert root == cycle.open()[(COLUMN_DRIFT, "amount")].root_pk
    assert [(i.key[2], i.change) for i in items] == [("amount", "repeat")]
    # and the interval restarts from that repeat
    assert cycle(windows((3, ["amount"])), T0 + timedelta(hours=5)).threads == {}


def test_rising_severity_is_announced_at_once_in_the_thread() -> None:
    cycle = Cycle()
    cycle(windows((0, ["amount"])), T0)
    assert cycle.open()[(COLUMN_DRIFT, "amount")].severity == "warning"
    results = window_results(1, ["amount"], strength=1.0)  # ten times its threshold
    p = cycle([window_evaluation(MODEL, results)], T0 + timedelta(minutes=10))
    [items] = p.threads.values()
    assert [(i.key[2], i.change, i.severity) for i in items] == [
        ("amount", "escalated", "critical")
    ]
    # and a later drop back to warning says nothing
    p = cycle(windows((2, ["amount"])), T0 + timedelta(minutes=20))
    assert p.threads == {} and p.announce == []


def test_an_incident_resolves_after_enough_clear_windows_and_says_so_once() -> None:
    cycle = Cycle(Policy(resolve_after=2))
    cycle(windows((0, ["amount"])), T0)
    root = cycle.open()[(COLUMN_DRIFT, "amount")].root_pk

    one = cycle(windows((1, [])), T0 + W)
    assert one.threads == {} and (COLUMN_DRIFT, "amount") in cycle.open()
    assert cycle.open()[(COLUMN_DRIFT, "amount")].clear_streak == 1
    # the same window evaluated again (it was still filling) is not a second clear look
    assert cycle(windows((1, [])), T0 + W + timedelta(minutes=5)).threads == {}
    assert cycle.open()[(COLUMN_DRIFT, "amount")].clear_streak == 1

    two = cycle(windows((2, [])), T0 + 2 * W)
    assert [(i.key[2], i.change) for i in two.threads[root]] == [("amount", "resolved")]
    assert (COLUMN_DRIFT, "amount") not in cycle.open()
    [resolved] = [i for i in cycle.incidents.values() if i.state == RESOLVED]
    assert resolved.resolved_at == T0 + 2 * W
    assert cycle(windows((3, [])), T0 + 3 * W).threads == {}


def test_a_flap_resets_the_clear_streak() -> None:
    cycle = Cycle(Policy(resolve_after=2, repeat_interval=timedelta(days=1)))
    cycle(windows((0, ["amount"])), T0)
    cycle(windows((1, [])), T0 + W)
    p = cycle(windows((2, ["amount"])), T0 + 2 * W)
    assert p.announce == [] and p.threads == {}  # same incident, still open
    assert cycle.open()[(COLUMN_DRIFT, "amount")].clear_streak == 0
    cycle(windows((3, [])), T0 + 3 * W)
    assert (COLUMN_DRIFT, "amount") in cycle.open()


def test_after_resolving_a_new_occurrence_is_a_new_incident() -> None:
    cycle = Cycle(Policy(resolve_after=1))
    cycle(windows((0, ["amount"])), T0)
    cycle(windows((1, [])), T0 + W)
    p = cycle(windows((2, ["amount"])), T0 + 2 * W)
    assert [(i.key[2], i.change) for i in p.announce] == [("amount", "new")]
    assert len([i for i in cycle.incidents.values() if i.scope == "amount"]) == 2


def test_silenced_incidents_are_recorded_but_not_sent() -> None:
    cycle = Cycle()
    cycle.silences = [
        Silence(7, "*", COLUMN_DRIFT, "amo*", T0, T0 + W, "campaign", "ann", T0),
    ]
    p = cycle(windows((0, ["amount", "country"])), T0)
    assert [i.key[1:] for i in p.announce] == [
        (DATASET_DRIFT, "dataset"),
        (COLUMN_DRIFT, "country"),
    ]
    silenced = cycle.open()[(COLUMN_DRIFT, "amount")]
    assert silenced.suppressed == "silenced by silence 7"
    # when the silence is gone, the still-firing incident is announced
    cycle.silences = []
    p = cycle(windows((1, ["amount", "country"])), T0 + timedelta(minutes=30))
    assert [(i.key[2], i.change) for i in p.announce] == [("amount", "new")]


def test_a_data_quality_failure_inhibits_the_drift_it_explains() -> None:
    cycle = Cycle()
    results = window_results(0, ["amount", "country"], ["new_categories"])
    p = cycle([window_evaluation(MODEL, results)], T0)
    sent = {i.key[1:] for i in p.announce}
    assert (QUALITY, "new_categories:country") in sent
    assert (COLUMN_DRIFT, "amount") in sent
    assert (COLUMN_DRIFT, "country") not in sent  # explained by the quality failure
    inhibited = cycle.open()[(COLUMN_DRIFT, "country")]
    assert inhibited.suppressed == "inhibited by data_quality/new_categories:country"


def test_a_window_level_quality_failure_inhibits_all_drift_of_that_window() -> None:
    cycle = Cycle()
    results = window_results(0, ["amount", "country"], ["row_volume"])
    p = cycle([window_evaluation(MODEL, results)], T0)
    assert [i.key[1:] for i in p.announce] == [(QUALITY, "row_volume")]
    assert all(
        i.suppressed == "inhibited by data_quality/row_volume"
        for i in cycle.open().values()
        if i.rule != QUALITY
    )


def test_late_data_for_an_old_window_does_not_page_about_the_past() -> None:
    cycle = Cycle(Policy(resolve_after=1))
    cycle(windows((0, []), (1, []), (2, [])), T0 + 3 * W)
    p = cycle(windows((0, ["amount", "country"])), T0 + 3 * W + timedelta(minutes=5))
    assert p.announce == [] and p.stale_windows == 1
    assert cycle.open() == {}


def test_job_failures_open_and_a_success_clears() -> None:
    cycle = Cycle(Policy(resolve_after=1))
    p = cycle([run_evaluation(MODEL, "statistics", "failed", "disk full")], T0)
    [item] = p.announce
    assert item.key[1:] == (JOB_FAILED, "statistics") and item.severity == "critical"
    assert "disk full" in item.summary
    # another job's success says nothing about this one
    cycle([run_evaluation(MODEL, "ingest", "ok")], T0 + timedelta(minutes=1))
    # job_failed and ingestion are different rules: statistics' incident stays open
    assert (JOB_FAILED, "statistics") in cycle.open()
    p = cycle([run_evaluation(MODEL, "statistics", "ok")], T0 + timedelta(minutes=2))
    assert [i.change for items in p.threads.values() for i in items] == ["resolved"]


def test_quarantine_spikes_only_clear_for_sources_that_were_read() -> None:
    cycle = Cycle(Policy(resolve_after=1))
    spike = quarantine_evaluation(
        MODEL, {"predictions": {"bad_json": 40, "bad_ts": 10}}, {"predictions": 950}, 0.01
    )
    [item] = cycle([spike], T0).announce
    assert item.key[1:] == (QUARANTINE, "predictions")
    assert "50 of 1000" in item.summary and "40 bad_json" in item.summary
    # a run that read nothing from the source says nothing about it
    cycle([quarantine_evaluation(MODEL, {}, {}, 0.01)], T0 + timedelta(minutes=1))
    assert (QUARANTINE, "predictions") in cycle.open()
    clean = quarantine_evaluation(MODEL, {"predictions": {}}, {"predictions": 1000}, 0.01)
    cycle([clean], T0 + timedelta(minutes=2))
    assert cycle.open() == {}


def test_signals_below_the_minimum_severity_are_recorded_only() -> None:
    cycle = Cycle(Policy(min_severity="critical"))
    p = cycle(windows((0, ["amount"])), T0)
    assert p.announce == []
    assert cycle.open()[(COLUMN_DRIFT, "amount")].suppressed == "below the minimum severity"


def test_other_models_evaluations_are_ignored() -> None:
    cycle = Cycle()
    other = Evaluation(
        "other", frozenset({COLUMN_DRIFT}), (Signal(COLUMN_DRIFT, "x", "warning", "x"),)
    )
    assert cycle([other], T0).announce == []


def test_an_event_is_announced_once_and_closed_without_a_resolve_notice() -> None:
    cycle = Cycle(Policy(resolve_after=1))
    event = Evaluation(
        MODEL,
        frozenset({TRAINING}),
        (Signal(TRAINING, "challenger", "warning", "candidate registered as challenger"),),
    )
    [item] = cycle([event], T0).announce
    assert item.key[1:] == (TRAINING, "challenger") and item.change == "new"
    assert cycle.open() == {}  # told, and closed at once
    quiet = cycle([Evaluation(MODEL, frozenset({TRAINING}))], T0 + timedelta(minutes=1))
    assert quiet.announce == [] and quiet.threads == {}  # no "resolved" for an event
    # the next event is told again, not held back as a repeat
    [again] = cycle([event], T0 + timedelta(minutes=2)).announce
    assert again.change == "new"
