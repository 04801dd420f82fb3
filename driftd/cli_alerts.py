"""``driftd alerts`` and ``driftd silence``: incidents, their delivery, silences."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from driftd.cli_common import ConfigOpt, JsonOpt, LogOpt, dump, errors, load_app
from driftd.errors import ConfigError

alerts_app = typer.Typer(help="Alert incidents and their delivery.", no_args_is_help=True)
silence_app = typer.Typer(help="Silence alerts: recorded, not sent.", no_args_is_help=True)


@alerts_app.command("list")
def alerts_list(
    config: ConfigOpt = Path("driftd.yaml"),
    state: Annotated[str | None, typer.Option(help="open or resolved; default: both.")] = None,
    limit: Annotated[int, typer.Option(min=1)] = 50,
    json: JsonOpt = False,
    log_level: LogOpt = "WARNING",
) -> None:
    """Incidents (newest first) and the delivery of their messages."""
    from dataclasses import asdict

    with errors():
        application = load_app(config, log_level)
        with application:
            repo = application.alert_repository
            incidents = repo.incidents(model=application.model, state=state, limit=limit)
            outbox = repo.outbox(limit=limit)
    if json:
        deliveries = [
            {k: v for k, v in asdict(item).items() if k != "payload"}
            | {"incidents": [i["incident"] for i in item.payload.get("items", [])]}
            for item in outbox
        ]
        typer.echo(dump({"incidents": [asdict(i) for i in incidents], "deliveries": deliveries}))
        return
    if not incidents:
        typer.echo("no incidents")
    for i in incidents:
        note = f" ({i.suppressed})" if i.suppressed and i.state == "open" else ""
        typer.echo(
            f"#{i.pk} {i.state:<8} {i.severity:<8} {i.rule}/{i.scope}: {i.summary}{note}\n"
            f"      opened {i.opened_at:%Y-%m-%d %H:%M}"
            + (f", resolved {i.resolved_at:%Y-%m-%d %H:%M}" if i.resolved_at else "")
        )
    for item in outbox:
        error = f": {item.last_error}" if item.last_error else ""
        typer.echo(
            f"message {item.pk} {item.kind:<6} {item.status:<7} attempts {item.attempts}{error}"
        )


@alerts_app.command("test")
def alerts_test(config: ConfigOpt = Path("driftd.yaml"), log_level: LogOpt = "WARNING") -> None:
    """Send a test message to the configured channel now (exit 1 if it fails)."""
    with errors():
        application = load_app(config, log_level)
        with application:
            result = application.send_test_alert()
        typer.echo(result)


@alerts_app.command("deliver")
def alerts_deliver(
    config: ConfigOpt = Path("driftd.yaml"),
    retry_failed: Annotated[
        bool, typer.Option(help="Queue undeliverable messages again first (after a fix).")
    ] = False,
    log_level: LogOpt = "INFO",
) -> None:
    """Send what waits in the outbox now (the daemon does this every minute)."""
    with errors():
        application = load_app(config, log_level)
        with application:
            if retry_failed:
                application.alert_repository.retry_failed(now=application.clock())
            report = application.deliver_alerts()
        typer.echo(
            f"sent {len(report['sent'])}, waiting {len(report['waiting'])}, "
            f"failed {len(report['failed'])}"
        )
        for error in report["errors"]:
            typer.echo(f"  {error}")
        if report["failed"] or report["errors"]:
            raise typer.Exit(1)


@silence_app.command("add")
def silence_add(
    rule: Annotated[str, typer.Option(help="Rule name or pattern, e.g. column_drift or '*'.")],
    duration: Annotated[str, typer.Option("--for", help="How long, e.g. 30m, 2h, 1d.")],
    comment: Annotated[str, typer.Option(help="Why; shown to whoever wonders.")],
    scope: Annotated[str, typer.Option(help="Scope or pattern, e.g. a column name.")] = "*",
    config: ConfigOpt = Path("driftd.yaml"),
    by: Annotated[str | None, typer.Option(help="Who silences (default: $USER).")] = None,
    log_level: LogOpt = "WARNING",
) -> None:
    """Silence matching alerts for a while: incidents are still recorded."""
    import getpass

    from monitor.windows import parse_duration

    with errors():
        try:
            length = parse_duration(duration)
        except ValueError as exc:
            raise ConfigError(f"--for: {exc}") from None
        application = load_app(config, log_level)
        with application:
            now = application.clock()
            pk = application.alert_repository.add_silence(
                model=application.model,
                rule=rule,
                scope=scope,
                starts_at=now,
                ends_at=now + length,
                comment=comment,
                created_by=by or getpass.getuser(),
            )
        typer.echo(f"silence {pk}: {rule}/{scope} until {now + length:%Y-%m-%d %H:%M} UTC")


@silence_app.command("list")
def silence_list(
    config: ConfigOpt = Path("driftd.yaml"),
    all_: Annotated[bool, typer.Option("--all", help="Include expired silences.")] = False,
    json: JsonOpt = False,
    log_level: LogOpt = "WARNING",
) -> None:
    """Active silences (or all of them)."""
    from dataclasses import asdict

    with errors():
        application = load_app(config, log_level)
        with application:
            now = application.clock()
            silences = application.alert_repository.silences(active_at=None if all_ else now)
    if json:
        typer.echo(dump([asdict(s) for s in silences]))
        return
    if not silences:
        typer.echo("no silences")
    for s in silences:
        state = "active" if s.starts_at <= now < s.ends_at else "expired"
        typer.echo(
            f"{s.pk} {state:<7} {s.rule}/{s.scope} until {s.ends_at:%Y-%m-%d %H:%M} UTC "
            f"by {s.created_by}: {s.comment}"
        )


@silence_app.command("remove")
def silence_remove(
    silence: Annotated[int, typer.Argument(help="The silence number (see `silence list`).")],
    config: ConfigOpt = Path("driftd.yaml"),
    log_level: LogOpt = "WARNING",
) -> None:
    """End a silence now."""
    with errors():
        application = load_app(config, log_level)
        with application:
            removed = application.alert_repository.expire_silence(silence, now=application.clock())
    if not removed:
        typer.echo(f"driftd: no active silence {silence}", err=True)
        raise typer.Exit(1)
    typer.echo(f"silence {silence} removed")
