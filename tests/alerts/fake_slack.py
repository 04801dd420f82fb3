"""A fake Slack Web API and incoming webhook on 127.0.0.1, for tests.

Tests run the real ``slack_sdk`` clients against it::

    with FakeSlack(channels={"#alerts"}) as fake:
        client = WebClient(token=fake.token, base_url=fake.base_url)
        client.chat_postMessage(channel="#alerts", text="drift")
        assert [m.text for m in fake.messages("#alerts")] == ["drift"]

It serves ``auth.test``, ``chat.postMessage``, ``chat.update``, ``conversations.history``
and ``conversations.replies`` under ``/api/``, and one incoming webhook at
``webhook_url``. Every request is recorded in arrival order, whatever its outcome.

Faults are scripted per method with :meth:`FakeSlack.fail` and consumed first in, first
out (or kept for every request with ``times=None``): rate limits (429 with
``Retry-After``), server errors (optionally after the message was stored: the answer is
lost, not the effect), Slack errors (HTTP 200, ``ok: false``) and slow answers.

Like Slack, every Web API answer to the right token carries the token's scopes in the
``x-oauth-scopes`` header, and a method whose scope was not granted answers
``missing_scope``; ``scopes=`` (or :attr:`FakeSlack.scopes`) grants fewer. Messages are
checked against Slack's limits (see :mod:`fake_slack_rules`). Only the standard library
is used.
"""

from __future__ import annotations

import copy
import dataclasses
import hashlib
import json
import logging
import re
import threading
import time
from collections import Counter, deque
from collections.abc import Callable, Iterable
from http.server import BaseHTTPRequestHandler
from typing import Any, Self
from urllib.parse import urlsplit

from fake_slack_rules import (
    ALL_SCOPES,
    Answer,
    ApiError,
    Fault,
    Message,
    RecordedRequest,
    Server,
    check_scopes,
    encode_cursor,
    failure,
    make_fault,
    message_fields,
    parse_params,
    select_page,
    send,
    truthy,
)

logger = logging.getLogger(__name__)

TEAM = "driftd-test"
TEAM_ID = "T000"
BOT_USER_ID = "U0FAKEBOT1"
BOT_ID = "B0FAKEBOT1"
WEBHOOK_PATH = "/webhook/T000/B000/XXXX"

_FIRST_TS_MICROS = 1_700_000_000_000_000
_CHANNEL_ID = re.compile(r"^[CGD][A-Z0-9]{8,}$")


class FakeSlack:
    """A Slack Web API on an ephemeral port; ``channels`` limits which channels exist."""

    def __init__(
        self,
        *,
        token: str = "xoxb-test",
        channels: Iterable[str] | None = None,
        scopes: Iterable[str] = ALL_SCOPES,
    ) -> None:
        self.token = token
        self._scopes = frozenset(scopes)
        self._channel_ids = None if channels is None else {self.channel_id(c) for c in channels}
        # names of the channels known by name (configured, or used by name): conversations.list
        self._names = {
            self.channel_id(c): c.removeprefix("#")
            for c in channels or ()
            if not _CHANNEL_ID.match(c) or c.startswith("#")
        }
        self._lock = threading.Condition()
        self._stopping = threading.Event()
        self._requests: list[RecordedRequest] = []
        self._messages: dict[str, Message] = {}  # by ts, in ts order
        self._webhook_messages: list[Message] = []
        self._faults: dict[str, deque[Fault]] = {}
        self._standing: dict[str, Fault] = {}  # fails every request until cleared
        self._processed: Counter[str] = Counter()
        self._ts_micros = _FIRST_TS_MICROS
        self._server: Server | None = None
        self._thread: threading.Thread | None = None
        self._methods: dict[str, Callable[[dict[str, Any]], dict[str, Any]]] = {
            "auth.test": self._auth_test,
            "chat.postMessage": self._post_message,
            "chat.update": self._update,
            "conversations.history": self._history,
            "conversations.replies": self._replies,
            "conversations.list": self._list,
        }

    # -- lifecycle ---------------------------------------------------------------------

    def start(self) -> Self:
        if self._server is not None or self._stopping.is_set():
            raise RuntimeError("FakeSlack can be started once")
        self._server = Server(self)
        self._thread = threading.Thread(
            target=self._server.serve_forever,
            kwargs={"poll_interval": 0.05},
            name="fake-slack",
            daemon=True,
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        """Stop serving; requests waiting out a ``delay`` are dropped unanswered."""
        self._stopping.set()
        if self._server is None:
            return
        self._server.shutdown()
        self._server.server_close()
        assert self._thread is not None
        self._thread.join(timeout=5)

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self._port()}/api/"

    @property
    def webhook_url(self) -> str:
        return f"http://127.0.0.1:{self._port()}{WEBHOOK_PATH}"

    def _port(self) -> int:
        if self._server is None:
            raise RuntimeError("FakeSlack is not started")
        return self._server.server_address[1]

    # -- scripting and inspection --------------------------------------------------------

    def fail(
        self,
        method: str,
        *,
        times: int | None = 1,
        status: int | None = None,
        retry_after: int | None = None,
        error: str | None = None,
        delay: float | None = None,
        after_commit: bool = False,
    ) -> None:
        """Script the next ``times`` requests to ``method`` ("webhook" for the webhook).

        ``status`` other than 200 answers that HTTP status (429 with ``Retry-After`` when
        ``retry_after`` is given, which alone implies 429); ``error`` alone answers HTTP 200
        ``ok: false``. Neither is processed unless ``after_commit``, which stores the effect
        and still answers the failure. ``delay`` waits that long before answering; without
        ``after_commit`` the request is processed only after the wait. ``times=None`` fails
        every request, after the counted faults, until :meth:`clear_faults`.
        """
        if times is not None and times < 1:
            raise ValueError(f"times must be at least 1 (or None), not {times!r}")
        fault = make_fault(
            method,
            status=status,
            retry_after=retry_after,
            error=error,
            delay=delay,
            after_commit=after_commit,
        )
        with self._lock:
            if times is None:
                self._standing[method] = fault
            else:
                self._faults.setdefault(method, deque()).extend([fault] * times)

    def clear_faults(self, method: str | None = None) -> None:
        """Forget the scripted faults of ``method`` (of every method when None)."""
        with self._lock:
            for faults in (self._faults, self._standing):
                for name in [method] if method is not None else list(faults):
                    faults.pop(name, None)

    @property
    def scopes(self) -> frozenset[str]:
        """The scopes the token has; set it to grant others from the next request on."""
        with self._lock:
            return self._scopes

    @scopes.setter
    def scopes(self, value: Iterable[str]) -> None:
        with self._lock:
            self._scopes = frozenset(value)

    @property
    def requests(self) -> list[RecordedRequest]:
        with self._lock:
            return [dataclasses.replace(r) for r in self._requests]

    @property
    def posts(self) -> list[RecordedRequest]:
        """``chat.postMessage`` requests that stored a message."""
        return [r for r in self.requests if r.method == "chat.postMessage" and r.processed]

    @property
    def processed(self) -> Counter[str]:
        """How many requests per method took effect."""
        with self._lock:
            return Counter(self._processed)

    def messages(self, channel: str | None = None) -> list[Message]:
        """The channel's messages oldest first: top level and broadcast replies."""
        cid = None if channel is None else self.channel_id(channel)
        with self._lock:
            return [
                copy.deepcopy(m)
                for m in self._messages.values()
                if (cid is None or m.channel == cid) and (not m.is_reply or m.reply_broadcast)
            ]

    def replies(self, ts: str) -> list[Message]:
        """The thread started by ``ts``: its root, then the replies oldest first."""
        with self._lock:
            return [copy.deepcopy(m) for m in self._messages.values() if ts in (m.ts, m.thread_ts)]

    @property
    def webhook_messages(self) -> list[Message]:
        with self._lock:
            return copy.deepcopy(self._webhook_messages)

    def wait_for(self, predicate: Callable[[], bool], timeout: float = 5.0) -> bool:
        """Wait until ``predicate()`` holds, re-checking after every request event."""
        with self._lock:
            return self._lock.wait_for(predicate, timeout)

    @staticmethod
    def channel_id(channel: str) -> str:
        """The id for a channel name ("#alerts" or "alerts"), stable across fakes; ids pass."""
        if not channel.startswith("#") and _CHANNEL_ID.match(channel):
            return channel
        digest = hashlib.sha1(channel.removeprefix("#").encode()).hexdigest()
        return "C" + digest[:10].upper()

    # -- serving -------------------------------------------------------------------------

    def _serve(self, handler: BaseHTTPRequestHandler) -> None:
        url = urlsplit(handler.path)
        length = int(handler.headers.get("Content-Length") or 0)
        body = handler.rfile.read(length) if length else b""
        headers = dict(handler.headers.items())
        if url.path.startswith("/api/"):
            method = url.path.removeprefix("/api/")
        elif url.path.startswith("/webhook/"):
            method = "webhook"
        else:
            send(handler, (404, "text/plain", b"not found", {}))
            return
        parse_error = None
        try:
            params = parse_params(url.query, body, headers.get("Content-Type", ""))
        except ApiError as exc:
            params, parse_error = {}, exc.error
        record = RecordedRequest(method, params, headers, time.monotonic())
        with self._lock:
            self._requests.append(record)
            queue = self._faults.get(method)
            fault = queue.popleft() if queue else self._standing.get(method)
            self._lock.notify_all()

        answer: Answer | None = None
        if fault is None or fault.after_commit:
            answer = self._process(record, url.path, parse_error)
        if fault is not None:
            if fault.delay and self._stopping.wait(fault.delay):
                return
            if fault.status != 200 or fault.error is not None:
                answer = failure(method, fault)
            elif answer is None:
                answer = self._process(record, url.path, parse_error)
        assert answer is not None
        if method != "webhook" and self._token(record) == self.token:
            answer[3]["x-oauth-scopes"] = ",".join(sorted(self.scopes))
        with self._lock:
            record.status = answer[0]
            self._lock.notify_all()
        send(handler, answer)

    def _process(self, record: RecordedRequest, path: str, parse_error: str | None) -> Answer:
        with self._lock:
            answer: Answer
            if record.method == "webhook":
                status, text = self._webhook(path, record.params, parse_error)
                ok = status == 200
                answer = (status, "text/plain; charset=utf-8", text.encode(), {})
            else:
                result = self._call(record, parse_error)
                ok = result["ok"]
                answer = (200, "application/json; charset=utf-8", json.dumps(result).encode(), {})
            if ok:
                record.processed = True
                self._processed[record.method] += 1
            self._lock.notify_all()
            return answer

    def _call(self, record: RecordedRequest, parse_error: str | None) -> dict[str, Any]:
        method = self._methods.get(record.method)
        if method is None:
            return {"ok": False, "error": "unknown_method"}
        token = self._token(record)
        try:
            if not token:
                raise ApiError("not_authed")
            if token != self.token:
                raise ApiError("invalid_auth")
            if parse_error is not None:
                raise ApiError(parse_error)
            check_scopes(record.method, self._scopes)
            return method(record.params)
        except ApiError as exc:
            return {"ok": False, "error": exc.error, **exc.details}

    @staticmethod
    def _token(record: RecordedRequest) -> str | None:
        auth = record.headers.get("Authorization", "")
        token = auth.removeprefix("Bearer ") if auth.startswith("Bearer ") else None
        return token or record.params.get("token")

    # -- Web API methods (called with the lock held) ---------------------------------------

    def _auth_test(self, params: dict[str, Any]) -> dict[str, Any]:
        return {
            "ok": True,
            "url": f"https://{TEAM}.slack.com/",
            "team": TEAM,
            "team_id": TEAM_ID,
            "user": "driftd",
            "user_id": BOT_USER_ID,
            "bot_id": BOT_ID,
            "is_enterprise_install": False,
        }

    def _post_message(self, params: dict[str, Any]) -> dict[str, Any]:
        channel = self._channel(params)
        content = message_fields(params)
        thread_ts = params.get("thread_ts") or None
        if thread_ts is not None:
            root = self._messages.get(str(thread_ts))
            if root is None or root.channel != channel:
                raise ApiError("thread_not_found")
            if root.is_reply:
                root = self._messages[str(root.thread_ts)]
            root.thread_ts = thread_ts = root.ts
        message = Message(
            channel,
            self._new_ts(),
            **content,
            thread_ts=thread_ts,
            reply_broadcast=thread_ts is not None and truthy(params.get("reply_broadcast")),
            params=params,
        )
        self._messages[message.ts] = message
        api = self._api_message(message, metadata=True)
        return {"ok": True, "channel": channel, "ts": message.ts, "message": api}

    def _update(self, params: dict[str, Any]) -> dict[str, Any]:
        channel = self._channel(params)
        message = self._messages.get(str(params.get("ts")))
        if message is None or message.channel != channel:
            raise ApiError("message_not_found")
        content = message_fields(params, partial=True)
        if not (content.get("text") or content.get("blocks") or content.get("attachments")):
            raise ApiError("no_text")
        earlier = {k: getattr(message, k) for k in ("text", "blocks", "attachments", "metadata")}
        message.history.append(copy.deepcopy(earlier))
        for key, value in content.items():
            setattr(message, key, value)
        message.edited_ts = self._new_ts()
        api = self._api_message(message, metadata=True)
        return {
            "ok": True,
            "channel": channel,
            "ts": message.ts,
            "text": api["text"],
            "message": api,
        }

    def _history(self, params: dict[str, Any]) -> dict[str, Any]:
        channel = self._channel(params)
        found = [
            m
            for m in reversed(self._messages.values())
            if m.channel == channel and (not m.is_reply or m.reply_broadcast)
        ]
        return self._page(found, params, newest_first=True) | {"pin_count": 0}

    def _replies(self, params: dict[str, Any]) -> dict[str, Any]:
        channel = self._channel(params)
        root = self._messages.get(str(params.get("ts")))
        if root is None or root.channel != channel:
            raise ApiError("thread_not_found")
        ts = root.thread_ts or root.ts
        found = [m for m in self._messages.values() if ts in (m.ts, m.thread_ts)]
        return self._page(found, params, newest_first=False)

    def _list(self, params: dict[str, Any]) -> dict[str, Any]:
        channels = [{"id": cid, "name": name} for cid, name in sorted(self._names.items())]
        return {"ok": True, "channels": channels, "response_metadata": {"next_cursor": ""}}

    def _webhook(
        self, path: str, params: dict[str, Any], parse_error: str | None
    ) -> tuple[int, str]:
        if path != WEBHOOK_PATH:
            return 404, "no_service"
        if parse_error is not None:
            return 400, "invalid_payload"
        try:
            content = message_fields(params)
        except ApiError as exc:
            return 400, exc.error
        self._webhook_messages.append(Message("webhook", self._new_ts(), **content, params=params))
        return 200, "ok"

    # -- helpers ---------------------------------------------------------------------------

    def _channel(self, params: dict[str, Any]) -> str:
        channel = params.get("channel")
        if not channel or not isinstance(channel, str):
            raise ApiError("channel_not_found")
        cid = self.channel_id(channel)
        if self._channel_ids is not None and cid not in self._channel_ids:
            raise ApiError("channel_not_found")
        if channel != cid:
            self._names[cid] = channel.removeprefix("#")
        return cid

    def _new_ts(self) -> str:
        self._ts_micros += 100
        seconds, micros = divmod(self._ts_micros, 1_000_000)
        return f"{seconds}.{micros:06d}"

    def _page(self, found: list[Message], params: dict[str, Any], *, newest_first: bool) -> dict:
        page, has_more = select_page(found, params, newest_first=newest_first)
        include_metadata = truthy(params.get("include_all_metadata"))
        return {
            "ok": True,
            "messages": [self._api_message(m, metadata=include_metadata) for m in page],
            "has_more": has_more,
            "response_metadata": {"next_cursor": encode_cursor(page[-1].ts) if has_more else ""},
        }

    def _api_message(self, message: Message, *, metadata: bool) -> dict[str, Any]:
        api: dict[str, Any] = {
            "type": "message",
            "user": BOT_USER_ID,
            "bot_id": BOT_ID,
            "team": TEAM_ID,
            "text": message.text or "",
            "ts": message.ts,
        }
        for key in ("blocks", "attachments"):
            if getattr(message, key) is not None:
                api[key] = copy.deepcopy(getattr(message, key))
        if message.thread_ts is not None:
            api["thread_ts"] = message.thread_ts
        if message.reply_broadcast:
            api["subtype"] = "thread_broadcast"
        if message.thread_ts == message.ts:
            replies = [
                m for m in self._messages.values() if m.is_reply and m.thread_ts == message.ts
            ]
            api["reply_count"] = len(replies)
            api["latest_reply"] = replies[-1].ts
        if message.edited_ts is not None:
            api["edited"] = {"user": BOT_USER_ID, "ts": message.edited_ts}
        if metadata and message.metadata is not None:
            api["metadata"] = copy.deepcopy(message.metadata)
        return api
