"""Weekly reports on disk, and their Slack summary through the alerts pipeline.

A report is two files in ``<workspace>/reports/weekly/``: ``<model>-<week>.html`` (what
people read) and ``<model>-<week>.json`` (every number). They are the record: listing
reads the directory, so what is listed is what exists. Regenerating a week replaces
both files atomically (write to a temporary file, then rename), so a week has one
report whatever the number of runs; the summary is queued for Slack again only when
its numbers changed.
"""

from __future__ import annotations

import logging
import os
import re
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import orjson

from driftd.report.weeks import Week

if TYPE_CHECKING:
    from driftd.app import App

logger = logging.getLogger(__name__)

KIND = "report"  # alert_outbox.kind of a report summary


@dataclass(frozen=True)
class Written:
    week: str
    html: Path
    json: Path
    bytes: int
    notified: bool  # the summary was queued (and delivery attempted) this time
    document: dict[str, Any]


def directory(app: App) -> Path:
    return app.config.workspace / "reports" / "weekly"


def _stem(model: str, week: str) -> str:
    return f"{re.sub(r'[^A-Za-z0-9._-]', '_', model)}-{week}"


def paths(app: App, week: Week) -> tuple[Path, Path]:
    stem = _stem(app.model, week.label)
    folder = directory(app)
    return folder / f"{stem}.html", folder / f"{stem}.json"


def _atomic_write(path: Path, data: bytes) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def dumps(document: dict[str, Any]) -> bytes:
    return orjson.dumps(
        document,
        default=str,
        option=orjson.OPT_INDENT_2 | orjson.OPT_SERIALIZE_NUMPY | orjson.OPT_NON_STR_KEYS,
    )


def load(path: Path) -> dict[str, Any] | None:
    try:
        data: dict[str, Any] = orjson.loads(path.read_bytes())
    except (OSError, orjson.JSONDecodeError):
        return None
    return data


def write(app: App, week: Week, document: dict[str, Any], *, notify: bool = True) -> Written:
    """Write the week's HTML and JSON; queue and deliver the Slack summary when asked
    and when it differs from the one already sent for this week."""
    from driftd.report.html import render

    html_path, json_path = paths(app, week)
    previous = load(json_path)
    repeat = (
        previous is not None
        and previous.get("notified")
        and previous.get("summary") == document["summary"]
    )
    document = {**document, "files": {"html": str(html_path), "json": str(json_path)}}
    send = notify and not repeat
    document["notified"] = bool(send or repeat)
    page = render(document).encode()
    _atomic_write(html_path, page)
    _atomic_write(json_path, dumps(document))
    if send:
        payload = {
            "model": app.model,
            "title": f"driftd weekly report: {app.model} {week.label}",
            "lines": document["summary"],
            "items": [],
            "context": {"report": str(html_path)},
        }
        app.alert_repository.enqueue(app.model, KIND, payload, now=app.clock())
        app.deliver_alerts()
    logger.info("weekly report %s written to %s (%d bytes)", week.label, html_path, len(page))
    return Written(week.label, html_path, json_path, len(page), send, document)


def listing(app: App) -> list[dict[str, Any]]:
    """The model's reports on disk, oldest week first, with their key numbers."""
    prefix = _stem(app.model, "")
    out = []
    for path in sorted(directory(app).glob(f"{prefix}*.json")):
        doc = load(path)
        if doc is None or doc.get("model") != app.model:
            continue
        html = path.with_suffix(".html")
        out.append(
            {
                "week": doc["week"],
                "as_of": doc.get("as_of"),
                "rows": doc["volume"]["rows"],
                "cost": doc["money"]["cost"],
                "currency": doc["business"]["currency"],
                "change": doc["money"]["change"],
                "html": str(html) if html.exists() else None,
                "json": str(path),
            }
        )
    return out
