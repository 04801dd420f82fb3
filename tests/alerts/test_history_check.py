"""A message in doubt whose history check cannot be made (issue 10, defect 10).

Before a message whose earlier attempt may have arrived is posted again, the channel is
searched for it; that needs the ``channels:history`` scope and a working
``conversations.history``. When the check fails, the message must end in a decision
within a bounded number of attempts, must not hold up unrelated messages, and
``driftd check`` must say at once what waits behind it.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest
from slack_world import CHANNEL, World, block_text, window

from alerts import health
from storage.alerts import PENDING, SENT, OutboxItem

MAX_DELAY = timedelta(minutes=15)


def in_doubt(world: World) -> OutboxItem:
    """Drift in f0, whose first post fails with a server error: pending, in doubt."""
    world.slack.fail("chat.postMessage", status=500)
    world.cycle(window(0, ["f0"]))
    [item] = world.repository.outbox()
    assert item.status == PENDING and item.attempts == 1
    assert world.slack.messages(CHANNEL) == []
    return item


def history_calls(world: World) -> int:
    return sum(r.method == "conversations.history" for r in world.slack.requests)


@pytest.mark.parametrize(
    "breakage",
    ["unknown_method", "missing_scope", "internal_error"],
)
def test_a_failing_history_check_ends_in_a_decision_within_three_attempts(
    world: World, breakage: str
) -> None:
    item = in_doubt(world)
    if breakage == "missing_scope":  # the app was installed with chat:write only
        world.slack.scopes = {"chat:write"}
    else:  # every history call fails, as long as the test runs
        world.slack.fail("conversations.history", error=breakage, times=None)

    for _ in range(5):  # a sixth pass would mean the outbox retries it forever
        world.clocks.now = world.repository.item(item.pk).next_attempt_at  # type: ignore[union-attr]
        world.dispatcher.deliver()
        if world.repository.item(item.pk).status != PENDING:  # type: ignore[union-attr]
            break

    done = world.repository.item(item.pk)
    assert done is not None and done.status == SENT  # posted at least once, not failed
    assert done.attempts <= 3
    [message] = world.slack.messages(CHANNEL)
    assert done.delivery_ref == message.ts and "f0" in block_text(message)
    assert done.last_error is not None and "may show twice" in done.last_error
    assert breakage in done.last_error  # the reason is kept for `driftd alerts list`
    assert history_calls(world) <= 3


def test_an_unrelated_alert_is_delivered_while_another_is_stuck(world: World) -> None:
    stuck = in_doubt(world)
    world.slack.fail("conversations.history", error="internal_error", times=None)

    # ten minutes later f3 drifts too: a new message, unrelated to the stuck one
    report = world.cycle(window(1, ["f0", "f3"]), after=timedelta(minutes=10))

    [message] = world.slack.messages(CHANNEL)
    assert "f3" in block_text(message) and "f0" not in block_text(message)
    assert [m.pk for m in world.repository.outbox(status=SENT)] == report["sent"]
    assert world.repository.item(stuck.pk).status == PENDING  # type: ignore[union-attr]
    assert report["waiting"] == [stuck.pk]


def test_check_reports_a_message_stuck_behind_its_thread_at_once(world: World) -> None:
    root = in_doubt(world)
    world.slack.fail("conversations.history", error="internal_error", times=None)
    world.cycle(window(1, ["f0"], score=0.5), after=timedelta(minutes=2))  # escalation
    [reply] = [i for i in world.repository.outbox(status=PENDING) if i.pk != root.pk]
    assert reply.root_pk == root.pk

    problems = health.problems(
        world.repository, world.dispatcher.sink, world.clocks.now, max_delay=MAX_DELAY
    )
    [line] = problems  # two minutes old: not yet "waited longer than 15 minutes"
    assert line.startswith(f"alert {reply.pk} (update) waits behind alert {root.pk}")
    assert "internal_error" in line and "2 attempt(s)" in line

    # the root is decided on its third attempt; then its reply goes into its thread
    for _ in range(3):
        world.clocks.now += timedelta(minutes=5)
        world.dispatcher.deliver()
    assert {i.status for i in world.repository.outbox()} == {SENT}
    top = world.slack.messages(CHANNEL)[0]  # the escalation is also shown in the channel
    assert top.ts == world.repository.item(root.pk).delivery_ref  # type: ignore[union-attr]
    assert [m.ts for m in world.slack.replies(top.ts)][1:] == [
        world.repository.item(reply.pk).delivery_ref  # type: ignore[union-attr]
    ]
    now = world.clocks.now
    assert health.problems(world.repository, world.dispatcher.sink, now, max_delay=MAX_DELAY) == []


def test_verify_names_the_missing_scopes(world: World) -> None:
    sink: Any = world.dispatcher.sink
    assert sink.verify() == []
    world.slack.scopes = {"chat:write", "channels:read"}
    [problem] = sink.verify()
    assert "lacks the channels:history or groups:history scope" in problem
    world.slack.scopes = set()
    assert len(sink.verify()) == 3  # chat:write, history, and reading the channel list
