"""Alerts delivered to Slack through the real slack_sdk client, against a local fake.

Every test runs the whole path: evaluations -> incidents and outbox (SQLite and
PostgreSQL) -> dispatcher -> ``slack_sdk.WebClient`` -> fake Slack Web API.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import timedelta
from typing import Any

import pytest
from fake_slack import FakeSlack
from slack_world import CHANNEL, MODEL, T0, W, World, block_text, window

from alerts.dispatch import undeliverable
from alerts.incidents import Policy
from alerts.render import MAX_BLOCKS, MAX_SECTION
from storage.alerts import FAILED, PENDING, SENT
from storage.store import Store


def test_drift_in_many_columns_is_one_message_with_the_top_features(world: World) -> None:
    report = world.cycle(window(0, ["f0", "f1", "f2", "f3", "f4"]))

    [message] = world.slack.messages(CHANNEL)
    assert report["sent"] and not report["errors"]
    assert message.text and "fraud" in message.text  # the fallback text is always set
    body = block_text(message)
    for column in ["f0", "f1", "f2", "f3", "f4"]:
        assert f"{column}: wasserstein 0.15 vs 0.1" in body
    assert "dataset drift" in body and "5 of 8 columns drifted" in body
    assert "Since" in body and "Suggested action" in body and "/reports/drift-0.html" in body
    # the outbox id travels with the message; every incident knows its thread
    [item] = world.repository.outbox()
    assert item.status == SENT and item.delivery_ref == message.ts
    assert world.outbox_ids([message]) == [item.pk]
    incidents = world.repository.incidents(state="open")
    assert len(incidents) == 6 and {i.root_pk for i in incidents} == {item.pk}


def test_a_still_firing_incident_is_quiet_then_repeated_in_its_thread(world: World) -> None:
    world.cycle(window(0, ["f0"]))
    world.cycle(window(1, ["f0"]))
    world.cycle(window(2, ["f0"]))
    assert len(world.slack.posts) == 1  # 12 more hours of the same drift: nothing new

    world.cycle(window(3, ["f0"]), after=timedelta(hours=12))  # 24 h after the notice
    root = world.slack.messages(CHANNEL)[0]
    replies = world.slack.replies(root.ts)[1:]
    assert [r.thread_ts for r in replies] == [root.ts]
    assert replies[0].reply_broadcast  # shown in the channel too
    assert "still firing" in block_text(replies[0])


def test_escalation_goes_to_the_thread_and_updates_the_original(world: World) -> None:
    world.cycle(window(0, ["f0"]))
    world.cycle(window(1, ["f0"], score=0.5), after=timedelta(minutes=10))

    root = world.slack.messages(CHANNEL)[0]
    [reply] = world.slack.replies(root.ts)[1:]
    assert "escalated" in block_text(reply) and "critical" in block_text(reply)
    assert root.edited_ts is not None  # chat.update on the original message
    assert "critical" in block_text(root)


def test_recovery_resolves_in_the_thread_and_marks_the_original(world: World) -> None:
    world.cycle(window(0, ["f0", "f1"]))
    world.cycle(window(1, []))
    assert len(world.slack.posts) == 1  # one clear window is not enough (resolve_after=2)
    world.cycle(window(2, []))

    [root] = world.slack.messages(CHANNEL)
    [reply] = world.slack.replies(root.ts)[1:]
    assert "resolved" in reply.text and "recovered" in block_text(reply)
    assert block_text(root).count(":white_check_mark:") == 2  # both lines, edited in place
    assert world.repository.incidents(state="open") == []
    world.cycle(window(3, []))
    assert len(world.slack.posts) == 2  # and nothing more


def test_silenced_incidents_are_recorded_and_not_sent(world: World) -> None:
    world.repository.add_silence(
        model="*",
        rule="column_drift",
        scope="*",
        starts_at=T0,
        ends_at=T0 + 4 * W,
        comment="known campaign",
        created_by="ann",
    )
    world.cycle(window(0, ["f0"]))
    assert world.slack.posts == []
    [incident] = world.repository.incidents(state="open")
    assert incident.suppressed is not None and "silenced" in incident.suppressed
    world.cycle(window(1, ["f0"]), after=4 * W)  # the silence has ended: now it is sent
    assert len(world.slack.posts) == 1


def test_rate_limits_are_waited_out(world: World) -> None:
    world.slack.fail("chat.postMessage", retry_after=1)
    report = world.cycle(window(0, ["f0"]))

    assert report["sent"] and len(world.slack.messages(CHANNEL)) == 1
    tries = [r for r in world.slack.requests if r.method == "chat.postMessage"]
    assert [r.status for r in tries] == [429, 200]


def test_messages_to_one_channel_are_paced(world: World) -> None:
    world.cycle(window(0, ["f0"]))
    world.cycle(window(1, ["f0"], score=0.5), after=timedelta(minutes=1))  # update + reply
    # chat.update and the thread reply of the second cycle are a second apart
    assert world.clocks.slept and all(0 < s <= 1.0 for s in world.clocks.slept)


def test_a_server_error_is_retried_later_with_backoff(world: World) -> None:
    world.slack.fail("chat.postMessage", status=500, times=1)
    report = world.cycle(window(0, ["f0"]))
    assert report["waiting"] and world.slack.messages(CHANNEL) == []
    [item] = world.repository.outbox()
    assert item.status == PENDING and "500" in (item.last_error or "")

    assert world.dispatcher.deliver().to_dict()["sent"] == []  # not due yet
    world.clocks.now = item.next_attempt_at
    assert world.dispatcher.deliver().to_dict()["sent"] == [item.pk]
    assert len(world.slack.messages(CHANNEL)) == 1


@pytest.mark.parametrize(
    "fault",
    [
        {"status": 500, "after_commit": True},  # stored, then the answer was lost
        {"delay": 4.0},  # slower than the client's 2 s timeout, stored anyway
    ],
    ids=["500-after-commit", "timeout"],
)
def test_a_delivery_in_doubt_is_not_posted_twice(world: World, fault: dict[str, Any]) -> None:
    world.slack.fail("chat.postMessage", **fault)
    report = world.cycle(window(0, ["f0"]))
    assert report["waiting"]
    assert world.slack.wait_for(lambda: len(world.slack.messages(CHANNEL)) == 1, timeout=10)

    [item] = world.repository.outbox()
    world.clocks.now = item.next_attempt_at
    world.restart()
    assert world.dispatcher.deliver().to_dict()["sent"] == [item.pk]

    [message] = world.slack.messages(CHANNEL)
    assert len(world.slack.posts) == 1
    assert world.repository.item(item.pk).delivery_ref == message.ts  # type: ignore[union-attr]


def test_a_crash_after_posting_does_not_post_again_on_restart(
    world: World, monkeypatch: pytest.MonkeyPatch
) -> None:
    class Killed(BaseException):
        pass

    def die(*args: Any, **kwargs: Any) -> None:
        raise Killed

    world.clocks.now += W
    world.manager.evaluate(MODEL, [window(0, ["f0", "f1", "f2", "f3"])])
    monkeypatch.setattr(world.dispatcher.repository, "mark_sent", die)
    with pytest.raises(Killed):  # the process dies between Slack's answer and the commit
        world.dispatcher.deliver()
    assert len(world.slack.posts) == 1

    world.restart()
    [item] = world.repository.outbox()
    world.clocks.now = item.next_attempt_at
    world.dispatcher.deliver()
    assert len(world.slack.posts) == 1
    assert world.repository.item(item.pk).status == SENT  # type: ignore[union-attr]


def test_permanent_errors_are_recorded_not_retried_forever(store: Store) -> None:
    with FakeSlack(channels={"#other"}) as slack:
        w = World(store, slack, Policy())
        report = w.cycle(window(0, ["f0"]))
        assert report["failed"] and "channel_not_found" in report["errors"][0]
        [item] = w.repository.outbox()
        assert item.status == FAILED
        w.clocks.now += timedelta(days=1)
        assert w.dispatcher.deliver().to_dict() == {
            "sent": [],
            "waiting": [],
            "failed": [],
            "errors": [],
        }
        [problem] = undeliverable(w.repository)
        assert "channel_not_found" in problem
        tries = [r for r in slack.requests if r.method == "chat.postMessage"]
        assert len(tries) == 1


def answered(slack: FakeSlack) -> Callable[[], bool]:
    """Every request the fake received has been answered (delayed ones included)."""
    return lambda: all(r.status is not None for r in slack.requests)


def test_after_injected_failures_and_restarts_every_alert_arrives_exactly_once(
    world: World,
) -> None:
    slack = world.slack
    # a week of windows whose drifting columns change, so incidents open, escalate,
    # repeat and resolve: about twenty messages, through a flaky Slack
    plan = [["f0"], ["f0", "f1"], ["f1"], [], [], ["f2", "f3", "f4", "f5"], ["f2"], []]
    faults = [
        {"status": 500},
        {"retry_after": 1},
        {"status": 500, "after_commit": True},
        {"status": 503},
        {"delay": 4.0},
    ]
    for k, drifted in enumerate(plan * 2):
        if k < len(faults):
            slack.fail("chat.postMessage", **faults[k])
        score = 0.5 if k % 5 == 4 else 0.15
        world.cycle(window(k, drifted, score=score), after=timedelta(hours=9))
        # a slow request the client gave up on is stored before the next attempt (the
        # answer was lost, not the message): wait for Slack's side, not for a time
        assert slack.wait_for(answered(slack), timeout=10)
        if k % 3 == 2:
            world.restart()
    # Slack recovers; the daemon keeps delivering until the outbox is empty
    for _ in range(20):
        world.restart()
        world.clocks.now += timedelta(hours=2)
        world.dispatcher.deliver()
        if not world.repository.outbox(status=PENDING):
            break
    assert slack.wait_for(answered(slack), timeout=10)

    items = world.repository.outbox()
    assert all(i.status == SENT for i in items)
    assert {i.kind for i in items} == {"notify", "update"} and len(items) >= 10
    failures = [r.status for r in slack.requests if r.status in (429, 500, 503)]
    assert sorted(failures) == [429, 500, 500, 503]  # the faults did hit
    delivered = world.outbox_ids(world.all_messages())
    assert sorted(delivered) == sorted(i.pk for i in items)  # each exactly once


def test_a_huge_incident_list_stays_within_slacks_limits(world: World) -> None:
    columns = [f"f{i}" for i in range(3000)]
    world.cycle(window(0, columns, columns=3000))
    [message] = world.slack.messages(CHANNEL)
    assert message.blocks is not None and len(message.blocks) <= MAX_BLOCKS
    assert all(len(b.get("text", {}).get("text", "")) <= MAX_SECTION for b in message.blocks)
    assert len(message.blocks[0]["text"]["text"]) <= 150
    assert "more_" in block_text(message)  # "and N more"


def test_a_worst_case_alert_is_accepted_by_slack(world: World) -> None:
    # hundreds of drifted columns with long names, a long report path: Slack (the fake
    # enforces its limits) must accept the message, and say how many are not shown
    names = [f"{'customer_lifetime_value_bucket_' * 6}{i:03d}" for i in range(400)]
    report = world.cycle(
        window(0, names, names=names, score=0.9, report="/reports/" + "x" * 2000 + ".html")
    )

    assert report["sent"] and not report["errors"], report
    [message] = world.slack.messages(CHANNEL)
    assert message.blocks is not None and len(message.blocks) <= MAX_BLOCKS
    [item] = world.repository.outbox()
    lines = [line for line in block_text(message).splitlines() if ", firing): " in line]
    assert 0 < len(lines) < len(item.payload["items"])
    assert sum(any(n in line for n in names) for line in lines) >= len(lines) - 1
    assert f"_and {len(item.payload['items']) - len(lines)} more_" in block_text(message)
