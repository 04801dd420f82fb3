"""What the fake Slack checks and how it answers, apart from its state.

Request parsing (query, form and JSON bodies, JSON-text fields), the message checks
Slack makes (Block Kit and length limits, metadata shape), the scopes each Web API
method needs, scripted faults and the wire format of answers. Only the standard
library is used; :mod:`fake_slack` holds the server and the stored messages.

Slack's limits, as documented for Block Kit and ``chat.postMessage``: at most 50 blocks,
3,000 characters per section text, 2,000 per section field and at most 10 fields, 150
per header, 10 context elements, 40,000 characters of ``text`` (``msg_too_long``).
Slack also refuses blocks whose texts add up to about 13,000 characters with
``msg_blocks_too_long`` (reported in slackapi/bolt-js#2509; the figure varies a
little with the content), so the fake refuses more than 13,000.
"""

from __future__ import annotations

import base64
import binascii
import json
import logging
from dataclasses import dataclass, field
from decimal import Decimal, InvalidOperation
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs

logger = logging.getLogger(__name__)

MAX_BLOCKS = 50
MAX_SECTION_TEXT = 3000
MAX_FIELD_TEXT = 2000
MAX_FIELDS = 10
MAX_HEADER_TEXT = 150
MAX_CONTEXT_ELEMENTS = 10
MAX_TEXT = 40_000
MAX_BLOCKS_TEXT = 13_000

# the scopes a bot token gets unless a test grants fewer; history and list calls are
# allowed by either the public- or the private-channel scope
ALL_SCOPES = frozenset(
    {"chat:write", "channels:history", "groups:history", "channels:read", "groups:read"}
)
NEEDS: dict[str, tuple[str, ...]] = {
    "chat.postMessage": ("chat:write",),
    "chat.update": ("chat:write",),
    "conversations.history": ("channels:history", "groups:history"),
    "conversations.replies": ("channels:history", "groups:history"),
    "conversations.list": ("channels:read", "groups:read"),
}

_JSON_FIELDS = ("blocks", "attachments", "metadata")
_DEFAULT_ERRORS = {429: "ratelimited", 503: "service_unavailable"}
_WEBHOOK_STATUS = {"channel_not_found": 404, "no_service": 404, "channel_is_archived": 410}

# (HTTP status, content type, body, extra headers)
Answer = tuple[int, str, bytes, dict[str, str]]


@dataclass(frozen=True)
class Fault:
    """What the next request to one method meets instead of a plain answer."""

    status: int = 200
    retry_after: int | None = None
    error: str | None = None
    delay: float | None = None
    after_commit: bool = False


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


class ApiError(Exception):
    """A Slack error answer (HTTP 200, ``ok: false``) with its optional details."""

    def __init__(self, error: str, **details: Any) -> None:
        super().__init__(error)
        self.error = error
        self.details = details


def make_fault(
    method: str,
    *,
    status: int | None,
    retry_after: int | None,
    error: str | None,
    delay: float | None,
    after_commit: bool,
) -> Fault:
    if status is None:
        status = 429 if retry_after is not None else 200
    if status == 200 and error is None and delay is None:
        raise ValueError(f"fail({method!r}) needs a status other than 200, an error or a delay")
    return Fault(status, retry_after, error, delay, after_commit)


def check_scopes(method: str, granted: frozenset[str]) -> None:
    needed = NEEDS.get(method, ())
    if needed and not granted.intersection(needed):
        raise ApiError("missing_scope", needed=",".join(needed), provided=",".join(sorted(granted)))


def send(handler: BaseHTTPRequestHandler, answer: Answer) -> None:
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


def failure(method: str, fault: Fault) -> Answer:
    headers = {} if fault.retry_after is None else {"Retry-After": str(fault.retry_after)}
    if method == "webhook":
        error = fault.error or ("rate_limited" if fault.status == 429 else "internal_error")
        status = fault.status if fault.status != 200 else _WEBHOOK_STATUS.get(error, 400)
        return status, "text/plain; charset=utf-8", error.encode(), headers
    error = fault.error or _DEFAULT_ERRORS.get(fault.status, "internal_error")
    body = json.dumps({"ok": False, "error": error}).encode()
    return fault.status, "application/json; charset=utf-8", body, headers


def parse_params(query: str, body: bytes, content_type: str) -> dict[str, Any]:
    params: dict[str, Any] = {k: v[-1] for k, v in parse_qs(query, keep_blank_values=True).items()}
    kind = content_type.split(";")[0].strip().lower()
    if body and kind == "application/json":
        try:
            data = json.loads(body)
        except ValueError:
            raise ApiError("invalid_json") from None
        if not isinstance(data, dict):
            raise ApiError("invalid_json")
        params.update(data)
    elif body and kind in ("application/x-www-form-urlencoded", ""):
        try:
            form = parse_qs(body.decode(), keep_blank_values=True)
        except UnicodeDecodeError:
            raise ApiError("invalid_form_data") from None
        params.update({k: v[-1] for k, v in form.items()})
        if isinstance(params.get("payload"), str):  # incoming webhooks accept payload=<json>
            try:
                params.update(json.loads(params.pop("payload")))
            except (ValueError, TypeError):
                raise ApiError("invalid_payload") from None
    elif body:
        raise ApiError("invalid_form_data")
    for key in _JSON_FIELDS:  # Slack accepts these as JSON text in form and JSON bodies
        if isinstance(params.get(key), str) and params[key]:
            try:
                params[key] = json.loads(params[key])
            except ValueError:
                raise ApiError(f"invalid_{key}_format") from None
    return params


def message_fields(params: dict[str, Any], *, partial: bool = False) -> dict[str, Any]:
    """The message fields in ``params``, checked as Slack checks them; ``partial`` keeps
    only those present."""
    fields = {k: params.get(k) or None for k in ("text", "blocks", "attachments", "metadata")}
    if not partial and not (fields["text"] or fields["blocks"] or fields["attachments"]):
        raise ApiError("no_text")
    for key in ("blocks", "attachments"):
        if fields[key] is not None and not isinstance(fields[key], list):
            raise ApiError(f"invalid_{key}")
    if isinstance(fields["text"], str) and len(fields["text"]) > MAX_TEXT:
        raise ApiError("msg_too_long")
    if fields["blocks"] is not None:
        check_blocks(fields["blocks"])
    metadata = fields["metadata"]
    if metadata is not None and not (
        isinstance(metadata, dict)
        and isinstance(metadata.get("event_type"), str)
        and isinstance(metadata.get("event_payload"), dict)
    ):
        raise ApiError("invalid_metadata_format")
    if partial:
        return {k: v for k, v in fields.items() if k in params}
    return fields


def check_blocks(blocks: list[Any]) -> None:
    """Slack's Block Kit limits: ``invalid_blocks`` naming the offending places, or
    ``msg_blocks_too_long`` when the texts are too long together."""
    errors: list[str] = []

    def at_most(text: Any, limit: int, pointer: str) -> int:
        if not isinstance(text, str) or not text:
            errors.append(f"must be a non-empty string [json-pointer:{pointer}]")
            return 0
        if len(text) > limit:
            errors.append(f"must be less than {limit + 1} characters [json-pointer:{pointer}]")
        return len(text)

    if len(blocks) > MAX_BLOCKS:
        errors.append(f"no more than {MAX_BLOCKS} items allowed [json-pointer:/blocks]")
    total = 0
    for i, block in enumerate(blocks):
        where = f"/blocks/{i}"
        kind = block.get("type") if isinstance(block, dict) else None
        if kind == "header":
            total += at_most((block.get("text") or {}).get("text"), MAX_HEADER_TEXT, where)
        elif kind == "section":
            if "text" in block:
                text = (block.get("text") or {}).get("text")
                total += at_most(text, MAX_SECTION_TEXT, f"{where}/text/text")
            fields = block.get("fields") or []
            if len(fields) > MAX_FIELDS:
                errors.append(f"no more than {MAX_FIELDS} items allowed [json-pointer:{where}]")
            for j, f in enumerate(fields):
                text = f.get("text") if isinstance(f, dict) else None
                total += at_most(text, MAX_FIELD_TEXT, f"{where}/fields/{j}/text")
            if "text" not in block and not fields:
                errors.append(f"must have text or fields [json-pointer:{where}]")
        elif kind == "context":
            elements = block.get("elements") or []
            if not elements or len(elements) > MAX_CONTEXT_ELEMENTS:
                errors.append(f"needs 1 to {MAX_CONTEXT_ELEMENTS} elements [json-pointer:{where}]")
            for j, e in enumerate(elements):
                text = e.get("text") if isinstance(e, dict) else None
                total += at_most(text, MAX_SECTION_TEXT, f"{where}/elements/{j}/text")
        elif kind not in ("divider", "actions", "image", "rich_text", "markdown"):
            errors.append(f"unknown block type {kind!r} [json-pointer:{where}]")
    if errors:
        raise ApiError("invalid_blocks", errors=errors)
    if total > MAX_BLOCKS_TEXT:
        raise ApiError("msg_blocks_too_long")


def select_page(
    found: list[Message], params: dict[str, Any], *, newest_first: bool
) -> tuple[list[Message], bool]:
    """One page of ``found`` for a history or replies call: the messages and has_more."""
    oldest, latest = ts_param(params, "oldest"), ts_param(params, "latest")
    inclusive = truthy(params.get("inclusive"))
    cursor = params.get("cursor")
    after = None if not cursor else decode_cursor(str(cursor))
    try:
        limit = int(params.get("limit") or 100)
    except ValueError:
        raise ApiError("invalid_limit") from None
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
    return found[:limit], len(found) > limit


def truthy(value: Any) -> bool:
    return value is True or str(value).lower() in ("1", "true")


def ts_param(params: dict[str, Any], name: str) -> Decimal | None:
    value = params.get(name)
    if value in (None, ""):
        return None
    try:
        return Decimal(str(value))
    except InvalidOperation:
        raise ApiError(f"invalid_ts_{name}") from None


def encode_cursor(ts: str) -> str:
    return base64.b64encode(f"next_ts:{ts}".encode()).decode()


def decode_cursor(cursor: str) -> Decimal:
    try:
        text = base64.b64decode(cursor, validate=True).decode()
        return Decimal(text.removeprefix("next_ts:"))
    except (binascii.Error, UnicodeDecodeError, InvalidOperation):
        raise ApiError("invalid_cursor") from None


class Server(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self, fake: Any) -> None:
        super().__init__(("127.0.0.1", 0), Handler)
        self.fake = fake

    def handle_error(self, request: Any, client_address: Any) -> None:
        logger.debug("fake Slack: error serving %s", client_address, exc_info=True)


class Handler(BaseHTTPRequestHandler):
    server: Server

    def do_POST(self) -> None:
        self.server.fake._serve(self)

    do_GET = do_POST

    def log_message(self, format: str, *args: Any) -> None:
        logger.debug("fake Slack: %s", format % args)
