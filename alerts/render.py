"""Messages as people read them: Slack Block Kit, and plain text for logs and webhooks.

A message is an outbox payload: the model, what changed for which incidents, and the
context of the cycle (window, label coverage, detail report, business impact). Slack's
limits are kept: at most 50 blocks, 3,000 characters per section text, 2,000 per field,
150 per header, and at most 12,000 characters of block text in all (Slack refuses
blocks of about 13,000 characters together with ``msg_blocks_too_long``, well before
its documented 40,000 per message); what does not fit is summarised as "and N more".
The fallback ``text`` is always set.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any

from alerts.signals import ACTIONS

MAX_BLOCKS = 50
MAX_SECTION = 3000
MAX_FIELD = 2000
MAX_HEADER = 150
MAX_TEXT = 12_000  # all block texts together
MAX_ITEMS_BLOCKS = 40  # leaves room for header, fields, actions, links

ICON = {"critical": ":red_circle:", "warning": ":large_orange_circle:", "info": ":white_circle:"}
VERB = {
    "new": "firing",
    "repeat": "still firing",
    "escalated": "escalated",
    "resolved": "resolved",
    "test": "test",
}


def _when(iso: str | None) -> str:
    if not iso:
        return "n/a"
    return f"{datetime.fromisoformat(iso):%a %d %b %H:%M} UTC"


def _title(payload: Mapping[str, Any]) -> str:
    items: Sequence[Mapping[str, Any]] = payload.get("items", [])
    model = payload["model"]
    if payload.get("test"):
        return f"driftd test message for {model}"
    if payload.get("title"):
        return str(payload["title"])
    if not items:
        return f"driftd: {model}"
    first = items[0]
    changes = {i["change"] for i in items}
    if changes == {"resolved"}:
        head = "resolved"
    elif "escalated" in changes:
        head = "escalated"
    elif changes <= {"repeat"}:
        head = "still firing"
    else:
        head = first["severity"]
    rest = f" and {len(items) - 1} more" if len(items) > 1 else ""
    return f"[{head}] {model}: {_label(first)}{rest}"


def _label(item: Mapping[str, Any]) -> str:
    rule, scope = item["rule"], item["scope"]
    return rule.replace("_", " ") + ("" if scope in ("dataset", rule) else f" {scope}")


def _line(item: Mapping[str, Any], *, markdown: bool, window: str | None = None) -> str:
    state = item.get("state")
    change = "resolved" if state == "resolved" else item["change"]
    icon = ":white_check_mark:" if change == "resolved" else ICON.get(item["severity"], "")
    what = item["summary"]
    if change == "resolved":
        what = f"recovered (last fired: {what})"
    if item.get("window") and item["window"] != window:
        what += f" [window {_when(item['window'])}]"
    if markdown:
        return f"{icon} *{_label(item)}* ({item['severity']}, {VERB[change]}): {what}"
    return f"- {_label(item)} [{item['severity']}, {VERB[change]}]: {what}"


def fallback(payload: Mapping[str, Any]) -> str:
    """The one-line text Slack shows in notifications and where blocks cannot render."""
    return _title(payload)


def text(payload: Mapping[str, Any]) -> str:
    """The whole message as plain text (console sink, logs, webhook fallback)."""
    if payload.get("lines"):  # a summary (the weekly report): its title, lines and links
        return "\n".join(
            [_title(payload), *payload["lines"], *map("  see: {}".format, _links(payload))]
        )
    lines = [_title(payload)]
    window = payload.get("context", {}).get("window")
    lines += [_line(i, markdown=False, window=window) for i in payload.get("items", [])]
    for label, value in _facts(payload):
        lines.append(f"  {label}: {value}")
    for action in _actions(payload):
        lines.append(f"  action: {action}")
    for link in _links(payload):
        lines.append(f"  see: {link}")
    return "\n".join(lines)


def _facts(payload: Mapping[str, Any]) -> list[tuple[str, str]]:
    context: Mapping[str, Any] = payload.get("context", {})
    items = payload.get("items", [])
    facts = []
    if items:
        facts.append(("Since", _when(min(i["since"] for i in items))))
    if context.get("window"):
        facts.append(("Window", _when(context["window"])))
    if context.get("label_coverage") is not None:
        facts.append(("Label coverage", f"{context['label_coverage']:.0%}"))
    if context.get("impact"):
        facts.append(("Estimated impact", str(context["impact"])))
    return facts


def _actions(payload: Mapping[str, Any]) -> list[str]:
    seen: list[str] = []
    for item in payload.get("items", []):
        if item.get("state") == "resolved" or item["change"] == "resolved":
            continue
        action = ACTIONS.get(item["rule"])
        if action and action not in seen:
            seen.append(action)
    return seen[:3]


def _links(payload: Mapping[str, Any]) -> list[str]:
    context: Mapping[str, Any] = payload.get("context", {})
    links = []
    if context.get("ui_url") and context.get("window"):
        links.append(f"{context['ui_url'].rstrip('/')}/models/{payload['model']}")
    if context.get("report"):
        links.append(f"detail report: {context['report']}")
    return links


def _chunks(lines: Sequence[str], limit: int) -> list[str]:
    """Lines joined into texts of at most ``limit`` characters (long lines cut)."""
    out: list[str] = []
    current = ""
    for line in lines:
        if len(line) > limit:
            line = line[: limit - 1] + "…"
        if current and len(current) + 1 + len(line) > limit:
            out.append(current)
            current = line
        else:
            current = f"{current}\n{line}" if current else line
    if current:
        out.append(current)
    return out


def _cut(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _block_text(block: Mapping[str, Any]) -> int:
    texts = [block.get("text") or {}, *block.get("fields", []), *block.get("elements", [])]
    return sum(len(t.get("text", "")) for t in texts)


def blocks(payload: Mapping[str, Any]) -> list[dict[str, Any]]:
    """Block Kit blocks within Slack's limits."""
    header = {
        "type": "header",
        "text": {"type": "plain_text", "text": _cut(_title(payload), MAX_HEADER), "emoji": True},
    }
    head: list[dict[str, Any]] = [header]
    if payload.get("lines"):  # a summary: one section of its lines, then its links
        summary = _cut("\n".join(payload["lines"]), MAX_SECTION)
        head.append({"type": "section", "text": {"type": "mrkdwn", "text": summary}})
    tail: list[dict[str, Any]] = []
    facts = _facts(payload)
    if facts:
        fields = [_cut(f"*{k}*\n{v}", MAX_FIELD) for k, v in facts[:10]]
        tail.append({"type": "section", "fields": [{"type": "mrkdwn", "text": f} for f in fields]})
    actions = _actions(payload)
    if actions:
        text = _cut("*Suggested action*\n" + "\n".join(actions), MAX_SECTION)
        tail.append({"type": "section", "text": {"type": "mrkdwn", "text": text}})
    links = [_cut(link, 1000) for link in _links(payload)]
    if links:
        elements = [{"type": "mrkdwn", "text": link} for link in links]
        tail.append({"type": "context", "elements": elements})
    budget = MAX_TEXT - sum(_block_text(b) for b in [*head, *tail])
    return [*head, *_item_sections(payload, budget), *tail][:MAX_BLOCKS]


def _item_sections(payload: Mapping[str, Any], budget: int) -> list[dict[str, Any]]:
    """The incidents' lines as sections of at most ``budget`` characters in all; what
    does not fit is counted in a last "and N more"."""
    window = payload.get("context", {}).get("window")
    lines = [_line(i, markdown=True, window=window) for i in payload.get("items", [])]
    kept: list[str] = []
    used = shown = 0
    for section in _chunks(lines, MAX_SECTION - 40):
        if len(kept) == MAX_ITEMS_BLOCKS - 1 or used + len(section) > budget - 40:
            break
        kept.append(section)
        used += len(section)
        shown += section.count("\n") + 1
    if shown < len(lines):  # fits: at least 40 characters of the budget are left
        kept.append(f"_and {len(lines) - shown} more_")
    return [{"type": "section", "text": {"type": "mrkdwn", "text": s}} for s in kept]
