"""The fake Slack answers the real slack_sdk clients the way Slack does, faults included."""

from __future__ import annotations

import json
import threading
import time

import pytest
from fake_slack import FakeSlack
from slack_sdk import WebClient
from slack_sdk.errors import SlackApiError
from slack_sdk.http_retry.builtin_handlers import (
    RateLimitErrorRetryHandler,
    ServerErrorRetryHandler,
)
from slack_sdk.http_retry.builtin_interval_calculators import FixedValueRetryIntervalCalculator
from slack_sdk.http_retry.handler import RetryHandler
from slack_sdk.webhook import WebhookClient

METADATA = {"event_type": "drift_alert", "event_payload": {"model": "churn", "psi": 0.31}}


def client(fake: FakeSlack, *, retry: list[RetryHandler] | None = None, **kwargs) -> WebClient:
    """A WebClient at the fake; ``retry=None`` keeps slack_sdk's default handlers."""
    return WebClient(token=fake.token, base_url=fake.base_url, retry_handlers=retry, **kwargs)


def quick_server_retry() -> ServerErrorRetryHandler:
    return ServerErrorRetryHandler(interval_calculator=FixedValueRetryIntervalCalculator(0.01))


def test_posted_message_is_in_history_with_metadata_when_asked(fake_slack: FakeSlack) -> None:
    slack = client(fake_slack)
    first = slack.chat_postMessage(channel="#alerts", text="drift", metadata=METADATA)
    second = slack.chat_postMessage(channel="#alerts", text="still drifting")

    assert first["channel"] == second["channel"] == fake_slack.channel_id("#alerts")
    assert first["channel"].startswith("C")
    assert float(first["ts"]) < float(second["ts"])
    assert first["message"]["metadata"] == METADATA

    plain = slack.conversations_history(channel=first["channel"])
    assert [m["text"] for m in plain["messages"]] == ["still drifting", "drift"]
    assert all("metadata" not in m for m in plain["messages"])
    full = slack.conversations_history(channel="#alerts", include_all_metadata=True)
    assert full["messages"][1]["metadata"] == METADATA
    assert [m.text for m in fake_slack.messages("#alerts")] == ["drift", "still drifting"]
    assert len(fake_slack.posts) == 2


def test_history_pages_with_limit_and_cursor(fake_slack: FakeSlack) -> None:
    slack = client(fake_slack)
    for i in range(5):
        slack.chat_postMessage(channel="#alerts", text=f"m{i}")

    first = slack.conversations_history(channel="#alerts", limit=2)
    assert [m["text"] for m in first["messages"]] == ["m4", "m3"]
    assert first["has_more"] is True
    # iterating a SlackResponse fetches the next cursor and yields the same object, updated
    pages = [[m["text"] for m in page["messages"]] for page in first]
    assert pages == [["m4", "m3"], ["m2", "m1"], ["m0"]]
    assert first["has_more"] is False


def test_form_body_json_fields_are_decoded(fake_slack: FakeSlack) -> None:
    blocks = [{"type": "section", "text": {"type": "mrkdwn", "text": "*drift*"}}]
    data = {"channel": "#alerts", "text": "drift", "blocks": json.dumps(blocks)}
    data["metadata"] = json.dumps(METADATA)
    client(fake_slack).api_call("chat.postMessage", data=data)

    (request,) = fake_slack.requests
    assert request.headers["Content-Type"] == "application/x-www-form-urlencoded"
    (message,) = fake_slack.messages()
    assert message.blocks == blocks
    assert message.metadata == METADATA


def test_update_edits_and_keeps_history(fake_slack: FakeSlack) -> None:
    slack = client(fake_slack)
    posted = slack.chat_postMessage(channel="#alerts", text="drift detected")
    updated = slack.chat_update(channel=posted["channel"], ts=posted["ts"], text="drift resolved")

    assert updated["ts"] == posted["ts"]
    assert updated["message"]["text"] == "drift resolved"
    assert "edited" in updated["message"]
    (message,) = fake_slack.messages()
    assert message.text == "drift resolved"
    assert [v["text"] for v in message.history] == ["drift detected"]

    with pytest.raises(SlackApiError) as caught:
        slack.chat_update(channel=posted["channel"], ts="1600000000.000001", text="x")
    assert caught.value.response["error"] == "message_not_found"


def test_thread_replies_are_in_replies_not_in_history(fake_slack: FakeSlack) -> None:
    slack = client(fake_slack)
    root = slack.chat_postMessage(channel="#alerts", text="root")
    slack.chat_postMessage(channel="#alerts", text="reply", thread_ts=root["ts"], metadata=METADATA)

    history = slack.conversations_history(channel="#alerts")
    assert [m["text"] for m in history["messages"]] == ["root"]
    assert history["messages"][0]["reply_count"] == 1
    thread = slack.conversations_replies(
        channel=root["channel"], ts=root["ts"], include_all_metadata=True
    )
    assert [m["text"] for m in thread["messages"]] == ["root", "reply"]
    assert thread["messages"][1]["metadata"] == METADATA
    assert [m.text for m in fake_slack.replies(root["ts"])] == ["root", "reply"]
    assert [m.text for m in fake_slack.messages()] == ["root"]


def test_rate_limit_is_retried_after_retry_after(fake_slack: FakeSlack) -> None:
    fake_slack.fail("chat.postMessage", status=429, retry_after=1)
    client(fake_slack, retry=[RateLimitErrorRetryHandler()]).chat_postMessage(
        channel="#alerts", text="drift"
    )

    assert [r.status for r in fake_slack.requests] == [429, 200]
    assert len(fake_slack.messages()) == 1


def test_server_error_raises_without_a_retry_handler(fake_slack: FakeSlack) -> None:
    fake_slack.fail("chat.postMessage", status=500)
    with pytest.raises(SlackApiError) as caught:
        client(fake_slack, retry=[]).chat_postMessage(channel="#alerts", text="drift")

    assert caught.value.response.status_code == 500
    assert fake_slack.messages() == []
    assert fake_slack.processed["chat.postMessage"] == 0


def test_server_error_retry_handler_retries_a_500(fake_slack: FakeSlack) -> None:
    fake_slack.fail("chat.postMessage", status=500)
    client(fake_slack, retry=[quick_server_retry()]).chat_postMessage(channel="#a", text="drift")

    assert [r.status for r in fake_slack.requests] == [500, 200]
    assert len(fake_slack.messages()) == 1


def test_error_after_commit_stores_the_message_and_a_naive_retry_posts_twice(
    fake_slack: FakeSlack,
) -> None:
    fake_slack.fail("chat.postMessage", status=500, after_commit=True)
    with pytest.raises(SlackApiError):
        client(fake_slack, retry=[]).chat_postMessage(channel="#alerts", text="drift")
    assert [m.text for m in fake_slack.messages()] == ["drift"]

    fake_slack.fail("chat.postMessage", status=503, after_commit=True)
    client(fake_slack, retry=[quick_server_retry()]).chat_postMessage(channel="#a", text="again")
    assert [m.text for m in fake_slack.messages("#a")] == ["again", "again"]
    assert len(fake_slack.posts) == 3


def test_scripted_slack_error_is_ok_false_with_http_200(fake_slack: FakeSlack) -> None:
    fake_slack.fail("chat.postMessage", error="channel_not_found")
    with pytest.raises(SlackApiError) as caught:
        client(fake_slack).chat_postMessage(channel="#alerts", text="drift")

    assert caught.value.response.status_code == 200
    assert caught.value.response["error"] == "channel_not_found"
    assert fake_slack.messages() == []


def test_only_configured_channels_exist() -> None:
    with FakeSlack(channels={"#alerts"}) as fake:
        slack = client(fake)
        slack.chat_postMessage(channel="#alerts", text="drift")
        slack.chat_postMessage(channel=fake.channel_id("#alerts"), text="by id")
        with pytest.raises(SlackApiError) as caught:
            slack.chat_postMessage(channel="#random", text="drift")

        assert caught.value.response["error"] == "channel_not_found"
        assert [m.text for m in fake.messages("#alerts")] == ["drift", "by id"]


def test_wrong_token_is_invalid_auth_and_recorded(fake_slack: FakeSlack) -> None:
    assert client(fake_slack).auth_test()["user_id"]
    wrong = WebClient(token="xoxb-wrong", base_url=fake_slack.base_url)
    with pytest.raises(SlackApiError) as caught:
        wrong.chat_postMessage(channel="#alerts", text="drift")

    assert caught.value.response.status_code == 200
    assert caught.value.response["error"] == "invalid_auth"
    assert fake_slack.requests[-1].headers["Authorization"] == "Bearer xoxb-wrong"
    assert fake_slack.messages() == []


def test_unknown_method(fake_slack: FakeSlack) -> None:
    with pytest.raises(SlackApiError) as caught:
        client(fake_slack).api_call("chat.teleport")
    assert caught.value.response["error"] == "unknown_method"


def test_slow_answer_times_out_while_the_message_is_stored(fake_slack: FakeSlack) -> None:
    fake_slack.fail("chat.postMessage", delay=3)
    # slack_sdk lets the socket's TimeoutError through; its default retry handler skips it
    with pytest.raises(TimeoutError):
        client(fake_slack, timeout=1).chat_postMessage(channel="#alerts", text="drift")

    assert fake_slack.wait_for(lambda: len(fake_slack.messages()) == 1)
    assert len(fake_slack.requests) == 1


def test_stop_drops_a_delayed_request() -> None:
    fake = FakeSlack().start()
    fake.fail("chat.postMessage", delay=60)
    with pytest.raises(TimeoutError):
        client(fake, timeout=1).chat_postMessage(channel="#alerts", text="drift")
    started = time.monotonic()
    fake.stop()

    assert time.monotonic() - started < 5
    assert fake.messages() == []
    assert [r.status for r in fake.requests] == [None]


def test_concurrent_posts_get_unique_timestamps(fake_slack: FakeSlack) -> None:
    slack = client(fake_slack)

    def post(worker: int) -> None:
        for i in range(5):
            slack.chat_postMessage(channel="#alerts", text=f"{worker}-{i}")

    threads = [threading.Thread(target=post, args=(w,)) for w in range(6)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    assert len({m.ts for m in fake_slack.messages()}) == 30
    assert fake_slack.processed["chat.postMessage"] == 30


def test_webhook(fake_slack: FakeSlack) -> None:
    blocks = [{"type": "section", "text": {"type": "mrkdwn", "text": "*drift*"}}]
    response = WebhookClient(fake_slack.webhook_url).send(text="drift", blocks=blocks)

    assert (response.status_code, response.body) == (200, "ok")
    (message,) = fake_slack.webhook_messages
    assert (message.text, message.blocks) == ("drift", blocks)

    # WebhookClient does not raise on HTTP errors: the caller must look at status_code
    fake_slack.fail("webhook", status=500)
    failed = WebhookClient(fake_slack.webhook_url).send(text="lost")
    assert failed.status_code == 500
    assert len(fake_slack.webhook_messages) == 1


def test_scopes_are_in_the_header_and_a_missing_one_is_refused() -> None:
    with FakeSlack(scopes={"chat:write"}) as fake:
        slack = client(fake, retry=[])
        who = slack.auth_test()
        assert who.headers["x-oauth-scopes"] == "chat:write"
        slack.chat_postMessage(channel="#alerts", text="drift")
        with pytest.raises(SlackApiError) as refused:
            slack.conversations_history(channel="#alerts")
        assert refused.value.response["error"] == "missing_scope"
        assert refused.value.response["needed"] == "channels:history,groups:history"
        fake.scopes = {"chat:write", "groups:history"}
        assert len(slack.conversations_history(channel="#alerts")["messages"]) == 1
        assert slack.auth_test().headers["x-oauth-scopes"] == "chat:write,groups:history"


def test_a_standing_fault_fails_every_request_until_cleared(fake_slack: FakeSlack) -> None:
    slack = client(fake_slack, retry=[])
    fake_slack.fail("conversations.history", error="unknown_method", times=None)
    for _ in range(3):
        with pytest.raises(SlackApiError, match="unknown_method"):
            slack.conversations_history(channel="#alerts")
    fake_slack.clear_faults("conversations.history")
    assert slack.conversations_history(channel="#alerts")["ok"]


@pytest.mark.parametrize(
    ("message", "error"),
    [
        ({"text": "x" * 40_001}, "msg_too_long"),
        ({"blocks": [{"type": "divider"}] * 51}, "invalid_blocks"),
        (
            {"blocks": [{"type": "section", "text": {"type": "mrkdwn", "text": "x" * 3001}}]},
            "invalid_blocks",
        ),  # fmt: skip
        (
            {"blocks": [{"type": "header", "text": {"type": "plain_text", "text": "x" * 151}}]},
            "invalid_blocks",
        ),  # fmt: skip
        (
            {"blocks": [{"type": "section", "text": {"type": "mrkdwn", "text": "x" * 2900}}] * 5},
            "msg_blocks_too_long",
        ),  # fmt: skip
    ],
    ids=["text", "blocks", "section", "header", "total"],
)
def test_slacks_message_limits_are_enforced(
    fake_slack: FakeSlack, message: dict, error: str
) -> None:
    slack = client(fake_slack, retry=[])
    with pytest.raises(SlackApiError) as refused:
        slack.chat_postMessage(channel="#alerts", **({"text": "fallback"} | message))
    assert refused.value.response["error"] == error
    assert fake_slack.messages() == []
    slack.chat_postMessage(channel="#alerts", text="x" * 40_000)  # at the limit: accepted
    slack.chat_postMessage(channel="#alerts", text="t", blocks=[{"type": "divider"}] * 50)
