"""Messages as people read them: Slack Block Kit, and plain text for logs and webhooks.

A message is an outbox payload: the model, what changed for which incidents, and the
context of the cycle (window, label coverage, detail report, business impact). Slack's
limits are kept: at most 50 blocks, 3,000 characters per section text, 150 per header;
what does not fit is summarised as "and N more". The fallback ``text`` is always set.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any

from alerts.signals import ACTIONS

MAX_BLOCKS = 50
MAX_SECTION = 3000
MAX_HEADER = 150
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


def blocks(payload: Mapping[str, Any]) -> list[dict[str, Any]]:
    """Block Kit blocks within Slack's limits."""
    out: list[dict[str, Any]] = [
        {
            "type": "header",
            "text": {"type": "plain_text", "text": _title(payload)[:MAX_HEADER], "emoji": True},
        }
    ]
    if payload.get("lines"):  # a summary: one section of its lines, then its links
        summary = {"type": "mrkdwn", "text": "\n".join(payload["lines"])[:MAX_SECTION]}
        out.append({"type": "section", "text": summary})
    items = payload.get("items", [])
    window = payload.get("context", {}).get("window")
    lines = [_line(i, markdown=True, window=window) for i in items]
    sections = _chunks(lines, MAX_SECTION - 40)
    if len(sections) > MAX_ITEMS_BLOCKS:
        shown = sum(s.count("\n") + 1 for s in sections[: MAX_ITEMS_BLOCKS - 1])
        sections = sections[: MAX_ITEMS_BLOCKS - 1] + [f"_and {len(lines) - shown} more_"]
    out += [{"type": "section", "text": {"type": "mrkdwn", "text": s}} for s in sections]
    facts = _facts(payload)
    if facts:
        out.append(
            {
                "type": "section",
                "fields": [{"type": "mrkdwn", "text": f"*{k}*\n{v}"} for k, v in facts[:10]],
            }
        )
    actions = _actions(payload)
    if actions:
        out.append(
            {
                "type": "section",
                "text": {"type": "mrkdwn", "text": ("*Suggested action*\n" + "\n".join(actions))},
            }
        )
    links = _links(payload)
    if links:
        out.append(
            {"type": "context", "elements": [{"type": "mrkdwn", "text": link} for link in links]}
        )
    return out[:MAX_BLOCKS]
