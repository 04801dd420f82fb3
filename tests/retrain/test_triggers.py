"""Triggers fire exactly on their conditions (table-driven over pure inputs)."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta

import pytest

from retrain.triggers import Policy, decide
from storage.models import Signals, Training, WindowSignal

NOW = datetime(2026, 12, 5, 12, 0, tzinfo=UTC)
H = timedelta(hours=1)


def window(
    i: int,
    *,
    drifted: bool | None = False,
    state: str | None = "complete",
    realized: dict[str, float] | None = None,
    estimated: dict[str, float] | None = None,
) -> WindowSignal:
    start = NOW - (10 - i) * H
    return WindowSignal(start, start + H, drifted, state, realized or {}, estimated or {})


def last_training(ago: timedelta) -> Training:
    return Training(1, "m", "drift", "r", NOW - ago, NOW - ago, "registered", None, "2", {})


def signals(*windows: WindowSignal, detections: int = 0, last: Training | None = None) -> Signals:
    return Signals(tuple(windows), (NOW - H,) * detections, last, new_labels=5000)


AUC = {"roc_auc": 0.8}
CASES = [
    # (name, policy, signals, expected action, expected triggers)
    ("nothing", Policy(mode="auto"), signals(window(1), window(2), window(3)), "none", ()),
    (
        "drift held k windows",
        Policy(mode="auto", drift_windows=3),
        signals(
            window(1), window(2, drifted=True), window(3, drifted=True), window(4, drifted=True)
        ),
        "train",
        ("drift",),
    ),
    (
        "drift in k-1 windows only",
        Policy(mode="auto", drift_windows=3),
        signals(
            window(1, drifted=True), window(2), window(3, drifted=True), window(4, drifted=True)
        ),
        "none",
        (),
    ),
    (
        "an unfinalized window neither breaks nor counts",
        Policy(mode="auto", drift_windows=2),
        signals(window(1, drifted=True), window(2, drifted=True), window(3, drifted=None)),
        "train",
        ("drift",),
    ),
    (
        "fewer windows than k",
        Policy(mode="auto", drift_windows=3),
        signals(window(1, drifted=True), window(2, drifted=True)),
        "none",
        (),
    ),
    (
        "drift trigger switched off",
        Policy(mode="auto", drift_windows=None),
        signals(*(window(i, drifted=True) for i in range(5))),
        "none",
        (),
    ),
    (
        "realized below threshold in the latest complete window",
        Policy(mode="auto", realized_below=AUC),
        signals(window(1, realized={"roc_auc": 0.9}), window(2, realized={"roc_auc": 0.79})),
        "train",
        ("realized",),
    ),
    (
        "realized exactly at the threshold is not below",
        Policy(mode="auto", realized_below=AUC),
        signals(window(1, realized={"roc_auc": 0.8})),
        "none",
        (),
    ),
    (
        "an incomplete window's realized value does not count",
        Policy(mode="auto", realized_below=AUC),
        signals(
            window(1, realized={"roc_auc": 0.85}),
            window(2, state="incomplete", realized={"roc_auc": 0.6}),
        ),
        "none",
        (),
    ),
    (
        "an error metric fires above its threshold",
        Policy(mode="auto", realized_below={"fnr": 0.2}),
        signals(window(1, realized={"fnr": 0.25})),
        "train",
        ("realized",),
    ),
    (
        "estimated below threshold",
        Policy(mode="auto", estimated_below=AUC),
        signals(window(1, state="pending", estimated={"roc_auc": 0.7})),
        "train",
        ("estimated",),
    ),
    (
        "estimated below, confirmation required, no labels yet",
        Policy(mode="auto", estimated_below=AUC, confirm_estimates=True),
        signals(window(1, state="pending", estimated={"roc_auc": 0.7})),
        "none",
        (),
    ),
    (
        "estimated below, confirmed by the labels so far",
        Policy(mode="auto", estimated_below=AUC, confirm_estimates=True),
        signals(
            window(1, state="incomplete", realized={"roc_auc": 0.75}, estimated={"roc_auc": 0.7})
        ),
        "train",
        ("estimated",),
    ),
    (
        "estimated below, contradicted by the labels",
        Policy(mode="auto", estimated_below=AUC, confirm_estimates=True),
        signals(
            window(1, state="incomplete", realized={"roc_auc": 0.88}, estimated={"roc_auc": 0.7})
        ),
        "none",
        (),
    ),
    (
        "a detection since the last training",
        Policy(mode="auto", detections=True),
        signals(window(1), detections=1, last=last_training(timedelta(days=3))),
        "train",
        ("detection",),
    ),
    (
        "detections ignored unless enabled",
        Policy(mode="auto", detections=False),
        signals(window(1), detections=4),
        "none",
        (),
    ),
    (
        "a schedule time passed since the last training",
        Policy(mode="auto", schedule="0 3 * * *"),
        signals(window(1), last=last_training(timedelta(days=2))),
        "train",
        ("schedule",),
    ),
    (
        "no schedule time since the last training",
        Policy(mode="auto", schedule="0 3 * * *", cooldown=timedelta(0)),
        signals(window(1), last=last_training(timedelta(hours=8))),  # trained at 04:00
        "none",
        (),
    ),
    (
        "suggest mode only suggests",
        Policy(mode="suggest", drift_windows=1),
        signals(window(1, drifted=True)),
        "suggest",
        ("drift",),
    ),
    (
        "cooldown blocks",
        Policy(mode="auto", drift_windows=1, cooldown=timedelta(days=1)),
        signals(window(1, drifted=True), last=last_training(timedelta(hours=23))),
        "blocked",
        ("drift",),
    ),
    (
        "cooldown over",
        Policy(mode="auto", drift_windows=1, cooldown=timedelta(days=1)),
        signals(window(1, drifted=True), last=last_training(timedelta(hours=24))),
        "train",
        ("drift",),
    ),
    (
        "several triggers fire together",
        Policy(mode="auto", drift_windows=1, realized_below=AUC),
        signals(window(1, drifted=True, realized={"roc_auc": 0.5})),
        "train",
        ("drift", "realized"),
    ),
]


@pytest.mark.parametrize(
    ("policy", "inputs", "action", "triggers"),
    [c[1:] for c in CASES],
    ids=[c[0] for c in CASES],
)
def test_triggers_fire_exactly_on_their_conditions(
    policy: Policy, inputs: Signals, action: str, triggers: tuple[str, ...]
) -> None:
    decision = decide(policy, inputs, now=NOW)

    assert decision.action == action
    assert tuple(f.trigger for f in decision.fired) == triggers
    assert decision.train == (action == "train")


def test_too_few_new_labels_block_and_say_how_many() -> None:
    inputs = replace(signals(window(1, drifted=True)), new_labels=120)

    decision = decide(Policy(mode="auto", drift_windows=1, min_new_labels=1000), inputs, now=NOW)

    assert decision.action == "blocked"
    assert decision.blocked == "120 new matured labelled rows, fewer than 1000"


def test_the_cooldown_says_until_when() -> None:
    inputs = signals(window(1, drifted=True), last=last_training(timedelta(hours=2)))

    decision = decide(Policy(mode="auto", drift_windows=1), inputs, now=NOW)

    assert decision.blocked == "cooldown until 2026-12-06 10:00 UTC"


def test_by_hand_trains_even_in_suggest_mode_and_cooldown() -> None:
    inputs = replace(signals(window(1), last=last_training(timedelta(minutes=5))), new_labels=0)

    decision = decide(
        Policy(mode="suggest", min_new_labels=1000), inputs, now=NOW, manual_reason="new features"
    )

    assert decision.action == "train"
    assert (decision.trigger, decision.reason) == ("manual", "new features")


def test_a_new_install_only_suggests() -> None:
    assert Policy().mode == "suggest"
    from driftd.config_retrain import RetrainConfig

    assert RetrainConfig().policy().mode == "suggest"
