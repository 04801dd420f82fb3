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
out: rate limits (429 with ``Retry-After``), server errors (optionally after the message
was stored: the answer is lost, not the effect), Slack errors (HTTP 200, ``ok: false``)
and slow answers. Only the standard library is used.
"""

from __future__ import annotations

import base64
import binascii
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
from dataclasses import dataclass, field
from decimal import Decimal, InvalidOperation
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Self
from urllib.parse import parse_qs, urlsplit

logger = logging.getLogger(__name__)

TEAM = "driftd-test"
TEAM_ID = "T000"
BOT_USER_ID = "U0FAKEBOT1"
BOT_ID = "B0FAKEBOT1"
WEBHOOK_PATH = "/webhook/T000/B000/XXXX"

_FIRST_TS_MICROS = 1_700_000_000_000_000
_CHANNEL_ID = re.compile(r"^[CGD][A-Z0-9]{8,}$")
_JSON_FIELDS = ("blocks", "attachments", "metadata")
_DEFAULT_ERRORS = {429: "ratelimited", 503: "service_unavailable"}
_WEBHOOK_STATUS = {"channel_not_found": 404, "no_service": 404, "channel_is_archived": 410}


@dataclass
class RecordedRequest:
    """One HTTP request as the fake received it."""

    method: str  # "chat.postMessage"; "webhook" for the incoming webhook
    params: dict[str, Any]  # query, form or JSON body merged; JSON string fields decoded
    headers: dict[str, str]
    time: float  # time.monotonic() at arrival
    status: int | None = None  # HTTP status answered; None while pending or if dropped
    processed: bool = False  # the method ran and took effect (it answered or would answer ok)


@dataclass
class Message:
    """A stored message; ``history`` holds earlier versions (oldest first) after updates."""

    channel: str  # channel id, "webhook" for webhook messages
    ts: str
    text: str | None
    blocks: list[Any] | None = None
    attachments: list[Any] | None = None
    metadata: dict[str, Any] | None = None
    thread_ts: str | None = None  # set on replies, and on a root once it has replies
    reply_broadcast: bool = False
    edited_ts: str | None = None
    history: list[dict[str, Any]] = field(default_factory=list)
    params: dict[str, Any] = field(default_factory=dict)

    @property
    def is_reply(self) -> bool:
        return self.thread_ts is not None and self.thread_ts != self.ts


@dataclass(frozen=True)
class Fault:
    """What the next request to one method meets instead of a plain answer."""

    status: int = 200
    retry_after: int | None = None
    error: str | None = None
    delay: float | None = None
    after_commit: bool = False


class _ApiError(Exception):
    def __init__(self, error: str) -> None:
        super().__init__(error)
        self.error = error


# (HTTP status, content type, body, extra headers)
_Answer = tuple[int, str, bytes, dict[str, str]]


class FakeSlack:
    """A Slack Web API on an ephemeral port; ``channels`` limits which channels exist."""

    def __init__(self, *, token: str = "xoxb-test", channels: Iterable[str] | None = None) -> None:
        self.token = token
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
        self._processed: Counter[str] = Counter()
        self._ts_micros = _FIRST_TS_MICROS
        self._server: _Server | None = None
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
        self._server = _Server(self)
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
        times: int = 1,
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
        ``after_commit`` the request is processed only after the wait.
        """
        if times < 1:
            raise ValueError(f"times must be at least 1, not {times!r}")
        if status is None:
            status = 429 if retry_after is not None else 200
        if status == 200 and error is None and delay is None:
            raise ValueError(f"fail({method!r}) needs a status other than 200, an error or a delay")
        fault = Fault(status, retry_after, error, delay, after_commit)
        with self._lock:
            self._faults.setdefault(method, deque()).extend([fault] * times)

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
            _send(handler, (404, "text/plain", b"not found", {}))
            return
        parse_error = None
        try:
            params = _parse_params(url.query, body, headers.get("Content-Type", ""))
        except _ApiError as exc:
            params, parse_error = {}, exc.error
        record = RecordedRequest(method, params, headers, time.monotonic())
        with self._lock:
            self._requests.append(record)
            queue = self._faults.get(method)
            fault = queue.popleft() if queue else None
            self._lock.notify_all()

        answer: _Answer | None = None
        if fault is None or fault.after_commit:
            answer = self._process(record, url.path, parse_error)
        if fault is not None:
            if fault.delay and self._stopping.wait(fault.delay):
                return
            if fault.status != 200 or fault.error is not None:
                answer = _failure(method, fault)
            elif answer is None:
                answer = self._process(record, url.path, parse_error)
        assert answer is not None
        with self._lock:
            record.status = answer[0]
            self._lock.notify_all()
        _send(handler, answer)

    def _process(self, record: RecordedRequest, path: str, parse_error: str | None) -> _Answer:
        with self._lock:
            answer: _Answer
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
        auth = record.headers.get("Authorization", "")
        token = auth.removeprefix("Bearer ") if auth.startswith("Bearer ") else None
        token = token or record.params.get("token")
        try:
            if not token:
                raise _ApiError("not_authed")
            if token != self.token:
                raise _ApiError("invalid_auth")
            if parse_error is not None:
                raise _ApiError(parse_error)
            return method(record.params)
        except _ApiError as exc:
            return {"ok": False, "error": exc.error}

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
        content = _content(params)
        thread_ts = params.get("thread_ts") or None
        if thread_ts is not None:
            root = self._messages.get(str(thread_ts))
            if root is None or root.channel != channel:
                raise _ApiError("thread_not_found")
            if root.is_reply:
                root = self._messages[str(root.thread_ts)]
            root.thread_ts = thread_ts = root.ts
        message = Message(
            channel,
            self._new_ts(),
            **content,
            thread_ts=thread_ts,
            reply_broadcast=thread_ts is not None and _truthy(params.get("reply_broadcast")),
            params=params,
        )
        self._messages[message.ts] = message
        api = self._api_message(message, metadata=True)
        return {"ok": True, "channel": channel, "ts": message.ts, "message": api}

    def _update(self, params: dict[str, Any]) -> dict[str, Any]:
        channel = self._channel(params)
        message = self._messages.get(str(params.get("ts")))
        if message is None or message.channel != channel:
            raise _ApiError("message_not_found")
        content = _content(params, partial=True)
        if not (content.get("text") or content.get("blocks") or content.get("attachments")):
            raise _ApiError("no_text")
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
            raise _ApiError("thread_not_found")
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
            content = _content(params)
        except _ApiError as exc:
            return 400, exc.error
        self._webhook_messages.append(Message("webhook", self._new_ts(), **content, params=params))
        return 200, "ok"

    # -- helpers ---------------------------------------------------------------------------

    def _channel(self, params: dict[str, Any]) -> str:
        channel = params.get("channel")
        if not channel or not isinstance(channel, str):
            raise _ApiError("channel_not_found")
        cid = self.channel_id(channel)
        if self._channel_ids is not None and cid not in self._channel_ids:
            raise _ApiError("channel_not_found")
        if channel != cid:
            self._names[cid] = channel.removeprefix("#")
        return cid

    def _new_ts(self) -> str:
        self._ts_micros += 100
        seconds, micros = divmod(self._ts_micros, 1_000_000)
        return f"{seconds}.{micros:06d}"

    def _page(self, found: list[Message], params: dict[str, Any], *, newest_first: bool) -> dict:
        oldest, latest = _ts_param(params, "oldest"), _ts_param(params, "latest")
        inclusive = _truthy(params.get("inclusive"))
        cursor = params.get("cursor")
        after = None if not cursor else _decode_cursor(str(cursor))
        try:
            limit = int(params.get("limit") or 100)
        except ValueError:
            raise _ApiError("invalid_limit") from None
        limit = min(max(limit, 1), 999)

        def wanted(m: Message) -> bool:
            ts = Decimal(m.ts)
            if oldest is not None and (ts < oldest or (ts == oldest and not inclusive)):
                return False
            if latest is not None and (ts > latest or (ts == latest and not inclusive)):
                return False
            if after is not None and (ts >= after if newest_first else ts <= after):
                return False
            return True

        found = [m for m in found if wanted(m)]
        page, has_more = found[:limit], len(found) > limit
        include_metadata = _truthy(params.get("include_all_metadata"))
        return {
            "ok": True,
            "messages": [self._api_message(m, metadata=include_metadata) for m in page],
            "has_more": has_more,
            "response_metadata": {"next_cursor": _encode_cursor(page[-1].ts) if has_more else ""},
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


class _Server(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self, fake: FakeSlack) -> None:
        super().__init__(("127.0.0.1", 0), _Handler)
        self.fake = fake

    def handle_error(self, request: Any, client_address: Any) -> None:
        logger.debug("fake Slack: error serving %s", client_address, exc_info=True)


class _Handler(BaseHTTPRequestHandler):
    server: _Server

    def do_POST(self) -> None:
        self.server.fake._serve(self)

    do_GET = do_POST

    def log_message(self, format: str, *args: Any) -> None:
        logger.debug("fake Slack: %s", format % args)


def _send(handler: BaseHTTPRequestHandler, answer: _Answer) -> None:
    status, content_type, body, headers = answer
    try:
        handler.send_response(status)
        handler.send_header("Content-Type", content_type)
        handler.send_header("Content-Length", str(len(body)))
        for name, value in headers.items():
            handler.send_header(name, value)
        handler.end_headers()
        handler.wfile.write(body)
    except (BrokenPipeError, ConnectionResetError):
        logger.debug("fake Slack: the client left before the answer to %s", handler.path)


def _failure(method: str, fault: Fault) -> _Answer:
    headers = {} if fault.retry_after is None else {"Retry-After": str(fault.retry_after)}
    if method == "webhook":
        error = fault.error or ("rate_limited" if fault.status == 429 else "internal_error")
        status = fault.status if fault.status != 200 else _WEBHOOK_STATUS.get(error, 400)
        return status, "text/plain; charset=utf-8", error.encode(), headers
    error = fault.error or _DEFAULT_ERRORS.get(fault.status, "internal_error")
    body = json.dumps({"ok": False, "error": error}).encode()
    return fault.status, "application/json; charset=utf-8", body, headers


def _parse_params(query: str, body: bytes, content_type: str) -> dict[str, Any]:
    params: dict[str, Any] = {k: v[-1] for k, v in parse_qs(query, keep_blank_values=True).items()}
    kind = content_type.split(";")[0].strip().lower()
    if body and kind == "application/json":
        try:
            data = json.loads(body)
        except ValueError:
            raise _ApiError("invalid_json") from None
        if not isinstance(data, dict):
            raise _ApiError("invalid_json")
        params.update(data)
    elif body and kind in ("application/x-www-form-urlencoded", ""):
        try:
            form = parse_qs(body.decode(), keep_blank_values=True)
        except UnicodeDecodeError:
            raise _ApiError("invalid_form_data") from None
        params.update({k: v[-1] for k, v in form.items()})
        if isinstance(params.get("payload"), str):  # incoming webhooks accept payload=<json>
            try:
                params.update(json.loads(params.pop("payload")))
            except (ValueError, TypeError):
                raise _ApiError("invalid_payload") from None
    elif body:
        raise _ApiError("invalid_form_data")
    for key in _JSON_FIELDS:  # Slack accepts these as JSON text in form and JSON bodies
        if isinstance(params.get(key), str) and params[key]:
            try:
                params[key] = json.loads(params[key])
            except ValueError:
                raise _ApiError(f"invalid_{key}_format") from None
    return params


def _content(params: dict[str, Any], *, partial: bool = False) -> dict[str, Any]:
    """The message fields in ``params``; ``partial`` keeps only those present."""
    content = {k: params.get(k) or None for k in ("text", "blocks", "attachments", "metadata")}
    if not partial and not (content["text"] or content["blocks"] or content["attachments"]):
        raise _ApiError("no_text")
    for key in ("blocks", "attachments"):
        if content[key] is not None and not isinstance(content[key], list):
            raise _ApiError(f"invalid_{key}")
    metadata = content["metadata"]
    if metadata is not None and not (
        isinstance(metadata, dict)
        and isinstance(metadata.get("event_type"), str)
        and isinstance(metadata.get("event_payload"), dict)
    ):
        raise _ApiError("invalid_metadata_format")
    if partial:
        return {k: v for k, v in content.items() if k in params}
    return content


def _truthy(value: Any) -> bool:
    return value is True or str(value).lower() in ("1", "true")


def _ts_param(params: dict[str, Any], name: str) -> Decimal | None:
    value = params.get(name)
    if value in (None, ""):
        return None
    try:
        return Decimal(str(value))
    except InvalidOperation:
        raise _ApiError(f"invalid_ts_{name}") from None


def _encode_cursor(ts: str) -> str:
    return base64.b64encode(f"next_ts:{ts}".encode()).decode()


def _decode_cursor(cursor: str) -> Decimal:
    try:
        text = base64.b64decode(cursor, validate=True).decode()
        return Decimal(text.removeprefix("next_ts:"))
    except (binascii.Error, UnicodeDecodeError, InvalidOperation):
        raise _ApiError("invalid_cursor") from None
