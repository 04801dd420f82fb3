"""Where alerts go: Slack (bot token), a Slack incoming webhook, or the console/log.

:class:`Sink` is the interface the dispatcher talks to. Errors are translated at this
boundary: :class:`~storage.errors.PermanentDeliveryError` for what retrying cannot fix
(bad token, unknown channel), :class:`~storage.errors.AlertDeliveryError` for the rest.

Exactly once on Slack. ``chat.postMessage`` is not idempotent, and a 5xx or a timeout
can come *after* Slack stored the message. So a post is never retried blindly: every
message carries its outbox id in Slack message metadata, and an attempt that follows an
unconfirmed one first looks for that id in the channel (or thread) history. slack-sdk's
retry handlers still do their job where retrying is safe: rate limits (HTTP 429 with
Retry-After) on every call, server and connection errors on the idempotent calls
(``chat.update``, history reads); a post's 5xx or timeout goes back to the outbox,
which retries it with backoff after that check.

The check needs the ``channels:history`` (or ``groups:history``) scope. When it cannot
be made, :class:`HistoryCheckError` says so, and whether a later try may succeed; the
dispatcher then decides to post at least once, with a warning. :meth:`SlackSink.verify`
reads the scopes the token was granted (the ``x-oauth-scopes`` header Slack returns on
``auth.test``) and names what is missing.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, Protocol

from alerts import render
from alerts.errors import AlertDeliveryError, PermanentDeliveryError

logger = logging.getLogger(__name__)

EVENT_TYPE = "driftd_alert"
# Slack errors that retrying will not fix: the configuration must change
PERMANENT = frozenset(
    {
        "invalid_auth",
        "not_authed",
        "account_inactive",
        "token_revoked",
        "token_expired",
        "no_permission",
        "missing_scope",
        "channel_not_found",
        "not_in_channel",
        "is_archived",
        "restricted_action",
        "invalid_blocks",
        "invalid_blocks_format",
        "msg_too_long",
        "msg_blocks_too_long",
        "no_text",
        "invalid_metadata_format",
        "invalid_metadata_schema",
        "ekm_access_denied",
        "team_access_not_granted",
    }
)
# Slack errors that a later try may not meet (the service, not the request)
TRANSIENT = frozenset(
    {"ratelimited", "internal_error", "fatal_error", "service_unavailable", "request_timeout"}
)
_CHANNEL_ID = re.compile(r"^[CGD][A-Z0-9]{6,}$")


class HistoryCheckError(AlertDeliveryError):
    """The history check of a message in doubt could not be made; ``transient`` when a
    later try may succeed (a server or connection error), not for a missing scope or an
    unknown method."""

    def __init__(self, message: str, *, transient: bool) -> None:
        super().__init__(message)
        self.transient = transient


@dataclass(frozen=True)
class Ref:
    """Where a message landed: Slack channel id and message ts (None when unknown)."""

    channel: str | None
    ts: str | None


class Sink(Protocol):
    name: str
    can_update: bool  # messages can be edited and threaded (Slack bot); not webhooks

    def post(
        self, payload: Mapping[str, Any], *, key: int, thread: Ref | None, in_doubt: bool
    ) -> Ref:
        """Deliver a message; ``key`` is its outbox id, ``in_doubt`` that an earlier
        attempt may have delivered it."""
        ...

    def update(self, ref: Ref, payload: Mapping[str, Any]) -> None:
        """Replace a delivered message's content (only when ``can_update``)."""
        ...

    def describe(self) -> str: ...

    def verify(self) -> list[str]:
        """What keeps this sink from delivering exactly once (missing scopes, a bad
        token), without sending anything; empty when nothing is known to be wrong."""
        ...


class ConsoleSink:
    """Alerts as text lines: the default when no Slack is configured."""

    name = "console"
    can_update = False

    def __init__(self, write: Callable[[str], None] | None = None) -> None:
        self.write = write or (lambda message: logger.warning("%s", message))

    def post(
        self, payload: Mapping[str, Any], *, key: int, thread: Ref | None, in_doubt: bool
    ) -> Ref:
        self.write(render.text(payload))
        return Ref("console", str(key))

    def update(self, ref: Ref, payload: Mapping[str, Any]) -> None:
        raise NotImplementedError("the console cannot edit what it wrote")

    def describe(self) -> str:
        return "console (log)"

    def verify(self) -> list[str]:
        return []


def _slack_error(exc: Exception, what: str) -> AlertDeliveryError:
    from slack_sdk.errors import SlackApiError

    if isinstance(exc, SlackApiError):
        code = exc.response.get("error") if exc.response is not None else None
        status = getattr(exc.response, "status_code", None)
        http = f"HTTP {status}" if status not in (None, 200) else ""
        message = f"slack {what}: {' '.join(x for x in (http, code) if x)}"
        if code in PERMANENT:
            return PermanentDeliveryError(message)
        return AlertDeliveryError(message)
    return AlertDeliveryError(f"slack {what}: {type(exc).__name__}: {exc}")


def web_clients(token: str, *, base_url: str | None = None, timeout: int = 15) -> tuple[Any, Any]:
    """Two ``WebClient`` s with one token: one for reads and edits (rate-limit, server-
    error and connection retries), one for posts (rate-limit retries only)."""
    from slack_sdk import WebClient
    from slack_sdk.http_retry.builtin_handlers import (
        ConnectionErrorRetryHandler,
        RateLimitErrorRetryHandler,
        ServerErrorRetryHandler,
    )

    options: dict[str, Any] = {"token": token, "timeout": timeout}
    if base_url:
        options["base_url"] = base_url
    safe = WebClient(
        **options,
        retry_handlers=[
            RateLimitErrorRetryHandler(max_retry_count=3),
            ServerErrorRetryHandler(max_retry_count=2),
            ConnectionErrorRetryHandler(max_retry_count=2),
        ],
    )
    posts = WebClient(**options, retry_handlers=[RateLimitErrorRetryHandler(max_retry_count=3)])
    return safe, posts


class SlackSink:
    """A Slack channel through the Web API and a bot token (``chat:write`` scope; the
    in-doubt history check also needs ``channels:history`` / ``groups:history``)."""

    name = "slack"
    can_update = True

    def __init__(self, *, client: Any, poster: Any, channel: str) -> None:
        self.client = client
        self.poster = poster
        self.channel = channel
        self._channel_id: str | None = channel if _CHANNEL_ID.match(channel) else None

    def describe(self) -> str:
        return f"slack channel {self.channel}"

    def post(
        self, payload: Mapping[str, Any], *, key: int, thread: Ref | None, in_doubt: bool
    ) -> Ref:
        if in_doubt:
            found = self._find(key, thread)
            if found is not None:
                logger.info(
                    "alert %d had reached Slack before (ts %s): not posted again", key, found.ts
                )
                return found
        try:
            response = self.poster.chat_postMessage(
                channel=thread.channel if thread and thread.channel else self.channel,
                text=render.fallback(payload),
                blocks=render.blocks(payload),
                thread_ts=thread.ts if thread else None,
                reply_broadcast=True if thread and _broadcast(payload) else None,
                metadata={"event_type": EVENT_TYPE, "event_payload": {"outbox_id": key}},
                unfurl_links=False,
                unfurl_media=False,
            )
        except Exception as exc:
            raise _slack_error(exc, "chat.postMessage") from exc
        self._channel_id = response.get("channel") or self._channel_id
        return Ref(response.get("channel"), response.get("ts"))

    def update(self, ref: Ref, payload: Mapping[str, Any]) -> None:
        try:
            self.client.chat_update(
                channel=ref.channel or self.channel,
                ts=ref.ts,
                text=render.fallback(payload),
                blocks=render.blocks(payload),
            )
        except Exception as exc:
            raise _slack_error(exc, "chat.update") from exc

    def verify(self) -> list[str]:
        """The token works (``auth.test``) and has the scopes driftd uses."""
        try:
            response = self.client.auth_test()
        except Exception as exc:
            return [f"{self.describe()}: {_slack_error(exc, 'auth.test')}"]
        headers = {k.lower(): v for k, v in (getattr(response, "headers", None) or {}).items()}
        granted = headers.get("x-oauth-scopes")
        if granted is None:
            logger.info("slack auth.test returned no x-oauth-scopes: scopes not verified")
            return []
        scopes = {s.strip() for s in str(granted).split(",") if s.strip()}
        needs: list[tuple[tuple[str, ...], str]] = [(("chat:write",), "to post and edit alerts")]
        needs.append(
            (
                ("channels:history", "groups:history"),
                "to check a message whose delivery was in doubt; without it such a message "
                "is posted again and may show twice",
            )
        )
        if self._channel_id is None:
            needs.append((("channels:read", "groups:read"), f"to find {self.channel} by name"))
        return [
            f"{self.describe()}: the bot token lacks the {' or '.join(scope)} scope "
            f"({why}); add it to the Slack app and reinstall it"
            for scope, why in needs
            if not scopes.intersection(scope)
        ]

    def _channel(self) -> str:
        if self._channel_id is None:
            name = self.channel.lstrip("#")
            cursor = None
            while self._channel_id is None:
                response = self.client.conversations_list(
                    types="public_channel,private_channel", limit=1000, cursor=cursor
                )
                for c in response.get("channels", []):
                    if c.get("name") == name:
                        self._channel_id = c["id"]
                cursor = (response.get("response_metadata") or {}).get("next_cursor")
                if not cursor:
                    break
            if self._channel_id is None:
                raise PermanentDeliveryError(f"slack: channel_not_found: {self.channel!r}")
        return self._channel_id

    def _find(self, key: int, thread: Ref | None) -> Ref | None:
        """The message an earlier attempt of outbox item ``key`` delivered, if any."""
        try:
            channel = thread.channel if thread and thread.channel else self._channel()
            cursor = None
            while True:
                if thread is not None:
                    response = self.client.conversations_replies(
                        channel=channel, ts=thread.ts, include_all_metadata=True, cursor=cursor
                    )
                else:
                    response = self.client.conversations_history(
                        channel=channel, include_all_metadata=True, limit=200, cursor=cursor
                    )
                for message in response.get("messages", []):
                    meta = message.get("metadata") or {}
                    if (
                        meta.get("event_type") == EVENT_TYPE
                        and (meta.get("event_payload") or {}).get("outbox_id") == key
                    ):
                        return Ref(channel, message["ts"])
                cursor = (response.get("response_metadata") or {}).get("next_cursor")
                # recent history is enough: an in-doubt message is one of the latest
                if not cursor or thread is None:
                    return None
        except PermanentDeliveryError:
            raise
        except Exception as exc:
            raise _history_error(exc) from exc


def _history_error(exc: Exception) -> HistoryCheckError:
    from slack_sdk.errors import SlackApiError

    error = _slack_error(exc, "history check")
    transient = True
    if isinstance(exc, SlackApiError) and exc.response is not None:
        status = getattr(exc.response, "status_code", 200) or 200
        transient = status >= 500 or status == 429 or exc.response.get("error") in TRANSIENT
    return HistoryCheckError(str(error), transient=transient)


def _broadcast(payload: Mapping[str, Any]) -> bool:
    """Escalations and repeats are shown in the channel too, not only in the thread."""
    return any(i["change"] in ("escalated", "repeat") for i in payload.get("items", []))


class WebhookSink:
    """A Slack incoming webhook: posts only (no threads, no edits, no history check, so
    a message whose delivery was in doubt may arrive twice)."""

    name = "webhook"
    can_update = False

    def __init__(self, url: str, *, timeout: int = 15) -> None:
        from slack_sdk.http_retry.builtin_handlers import RateLimitErrorRetryHandler
        from slack_sdk.webhook import WebhookClient

        self.client = WebhookClient(
            url, timeout=timeout, retry_handlers=[RateLimitErrorRetryHandler(max_retry_count=3)]
        )

    def describe(self) -> str:
        return "slack incoming webhook"

    def verify(self) -> list[str]:
        return []  # a webhook cannot be checked without posting

    def post(
        self, payload: Mapping[str, Any], *, key: int, thread: Ref | None, in_doubt: bool
    ) -> Ref:
        try:
            response = self.client.send(
                text=render.fallback(payload), blocks=render.blocks(payload)
            )
        except Exception as exc:
            raise AlertDeliveryError(f"slack webhook: {type(exc).__name__}: {exc}") from exc
        if response.status_code == 200:
            return Ref(None, None)
        error = f"slack webhook: HTTP {response.status_code} {response.body[:100]}"
        if response.status_code in (400, 403, 404, 410):
            raise PermanentDeliveryError(error)
        raise AlertDeliveryError(error)

    def update(self, ref: Ref, payload: Mapping[str, Any]) -> None:
        raise NotImplementedError("incoming webhooks cannot edit messages")
