"""``driftd quarantine``: the records ingestion could not store, and why; and the
``--since TIME`` option it shares with ``driftd status``.

A quarantined record is kept with its source, path, line, byte offset, reason and an
excerpt of its first bytes, so that whoever owns the producer can find and fix it. The
excerpt is the record as logged, personal data included (the database holding it is
readable by driftd's user only); a configured secret in it is redacted, as in the logs.
"""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated, Any

import typer

from driftd.cli_common import ConfigOpt, JsonOpt, LogOpt, dump, errors, load_app
from driftd.logs import redact

quarantine_app = typer.Typer(
    help="Records that could not be ingested: where they are and why.", no_args_is_help=True
)


def since_time(text: str) -> datetime:
    """A ``--since`` value: an ISO 8601 time (UTC when it has no offset) or a duration
    before now (``24h``, ``7d``)."""
    from monitor.windows import parse_duration

    try:
        return datetime.now(UTC) - parse_duration(text)
    except ValueError:
        pass
    try:
        value = datetime.fromisoformat(text)
    except ValueError:
        raise typer.BadParameter(
            f"{text!r} is neither an ISO 8601 time (2026-11-05T00:00Z) nor a duration (24h, 7d)"
        ) from None
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value


@quarantine_app.command("list")
def quarantine_list(
    config: ConfigOpt = Path("driftd.yaml"),
    source: Annotated[str | None, typer.Option(help="Only this source.")] = None,
    reason: Annotated[
        str | None, typer.Option(help="Only this reason (bad_json, missing_id, ...).")
    ] = None,
    since: Annotated[
        datetime | None,
        typer.Option(
            parser=since_time,
            metavar="TIME",
            help="Only records quarantined at or after TIME (ISO 8601, or a duration ago: 24h).",
        ),
    ] = None,
    limit: Annotated[int, typer.Option(min=1, help="At most this many, newest first.")] = 50,
    json: JsonOpt = False,
    log_level: LogOpt = "WARNING",
) -> None:
    """Quarantined records, newest first: where, why, and an excerpt."""
    with errors():
        application = load_app(config, log_level)
        with application:
            records = application.status_queries.quarantine(
                application.model, source=source, reason=reason, since=since, limit=limit
            )
    records = [_redacted(r) for r in records]
    if json:
        typer.echo(dump(records))
        return
    if not records:
        typer.echo("no quarantined records" + _filters(source, reason))
    for r in records:
        typer.echo(
            f"#{r['pk']} {r['created_at']:%Y-%m-%d %H:%M} {r['source']} {r['reason']} "
            f"{_where(r)}" + (f": {_printable(r['detail'])}" if r["detail"] else "")
        )
        if r["excerpt"]:
            typer.echo(f"      {_printable(_shortened(r['excerpt'], 100))}")


@quarantine_app.command("show")
def quarantine_show(
    pk: Annotated[int, typer.Argument(help="The record's number (#N in `quarantine list`).")],
    config: ConfigOpt = Path("driftd.yaml"),
    json: JsonOpt = False,
    log_level: LogOpt = "WARNING",
) -> None:
    """One quarantined record: source, file position, reason, detail and excerpt."""
    with errors():
        application = load_app(config, log_level)
        with application:
            record = application.status_queries.quarantined(application.model, pk)
        if record is None:
            typer.echo(
                f"driftd: no quarantined record {pk} of model {application.model!r}", err=True
            )
            raise typer.Exit(1)
    record = _redacted(record)
    if json:
        typer.echo(dump(record))
        return
    typer.echo(f"quarantined record #{record['pk']} ({record['created_at']:%Y-%m-%d %H:%M:%S %Z})")
    typer.echo(f"  source:  {record['source']}")
    typer.echo(f"  where:   {_where(record)}")
    typer.echo(f"  reason:  {record['reason']}")
    if record["detail"]:
        typer.echo(f"  detail:  {_printable(record['detail'])}")
    typer.echo(f"  excerpt: {_printable(record['excerpt'] or '')}")


def _redacted(record: dict[str, Any]) -> dict[str, Any]:
    return {k: redact(v) if isinstance(v, str) else v for k, v in record.items()}


def _where(record: dict[str, Any]) -> str:
    place = f"{record['path']}:{record['line']}" if record["line"] is not None else record["path"]
    offset = record["byte_offset"]
    return place + (f" (byte {offset})" if offset is not None else "")


def _filters(source: str | None, reason: str | None) -> str:
    named = [f"source {source!r}" if source else "", f"reason {reason!r}" if reason else ""]
    shown = " and ".join(n for n in named if n)
    return f" with {shown}" if shown else ""


def _shortened(text: str, width: int) -> str:
    return text if len(text) <= width else text[: width - 1] + "…"


def _printable(text: str) -> str:
    """Control characters escaped: an excerpt must not drive the operator's terminal."""
    return "".join(
        ch if ch.isprintable() else ch.encode("unicode_escape").decode("ascii") for ch in text
    )
