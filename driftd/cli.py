"""The ``driftd`` command line: parse, load config, set up logging, wire, run.

Exit codes: 0 success (healthy), 1 unhealthy or failed, 2 invalid configuration.
"""

from __future__ import annotations

import logging
import sys
from contextlib import contextmanager
from importlib import resources
from pathlib import Path
from typing import Annotated, Any

import orjson
import typer

from driftd.logs import protect, setup_logging
from storage.errors import ConfigError, DriftdError

logger = logging.getLogger("driftd")

app = typer.Typer(
    name="driftd",
    help="ML monitoring daemon: ingest prediction logs and labels, watch drift, act.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)

ConfigOpt = Annotated[
    Path, typer.Option("--config", "-c", help="The driftd YAML file.", show_default=True)
]
JsonOpt = Annotated[bool, typer.Option("--json", help="Print a machine-readable summary.")]
LogOpt = Annotated[
    str, typer.Option("--log-level", help="DEBUG, INFO, WARNING or ERROR.", show_default=True)
]


def _dump(obj: Any) -> str:
    return orjson.dumps(
        obj, default=str, option=orjson.OPT_INDENT_2 | orjson.OPT_NON_STR_KEYS
    ).decode()


@contextmanager
def _errors() -> Any:
    """DriftdErrors become a one-line message and an exit code, not a traceback."""
    try:
        yield
    except ConfigError as exc:
        typer.echo(f"driftd: {exc}", err=True)
        raise typer.Exit(2) from None
    except DriftdError as exc:
        typer.echo(f"driftd: {exc}", err=True)
        raise typer.Exit(1) from None


def _app(config: Path, log_level: str) -> Any:
    from driftd.app import App
    from driftd.config import load

    setup_logging(log_level.upper())
    loaded = load(config)
    protect(*loaded.secrets.values())
    return App(loaded)


@app.command()
def init(
    directory: Annotated[Path, typer.Argument(help="Where to write driftd.yaml.")] = Path("."),
    force: Annotated[bool, typer.Option(help="Overwrite an existing file.")] = False,
) -> None:
    """Write a commented example driftd.yaml."""
    target = directory / "driftd.yaml"
    if target.exists() and not force:
        typer.echo(f"driftd: {target} exists (use --force to overwrite)", err=True)
        raise typer.Exit(1)
    directory.mkdir(parents=True, exist_ok=True)
    target.write_text(resources.files("driftd").joinpath("templates/driftd.yaml").read_text())
    typer.echo(f"wrote {target}")


@app.command()
def run(config: ConfigOpt = Path("driftd.yaml"), log_level: LogOpt = "INFO") -> None:
    """Run the daemon: scheduled jobs until SIGTERM/SIGINT (twice to force)."""
    with _errors():
        application = _app(config, log_level)
        with application:
            application.daemon().run()


@app.command()
def once(
    config: ConfigOpt = Path("driftd.yaml"), json: JsonOpt = False, log_level: LogOpt = "INFO"
) -> None:
    """Run every job once, now, and exit (1 if a job failed)."""
    with _errors():
        application = _app(config, log_level)
        with application:
            results = application.daemon().run_once()
        if json:
            typer.echo(
                _dump({name: {"outcome": o, "summary": s} for name, (o, s) in results.items()})
            )
        else:
            for name, (outcome, _summary) in results.items():
                typer.echo(f"{name}: {outcome}")
        if any(outcome != "ok" for outcome, _ in results.values()):
            raise typer.Exit(1)


@app.command()
def ingest(
    config: ConfigOpt = Path("driftd.yaml"), json: JsonOpt = False, log_level: LogOpt = "INFO"
) -> None:
    """Ingest what is new in every source now (recorded as an ingest job run)."""
    from driftd.progress import ingest_progress

    with _errors():
        application = _app(config, log_level)
        with application, ingest_progress(application, enabled=not json) as progress:
            report = application.ingest_now(progress)
        if json:
            typer.echo(_dump(report.to_dict()))
        else:
            typer.echo(
                f"ingested {report.rows} rows, {report.duplicates} duplicates, "
                f"{report.quarantined} quarantined"
            )
            for name, s in report.sources.items():
                reasons = ", ".join(f"{r} {n}" for r, n in sorted(s.quarantined.items()))
                typer.echo(
                    f"  {name}: {s.rows} rows from {s.files} file(s)"
                    + (f"; quarantined: {reasons}" if reasons else "")
                )


@app.command()
def status(
    config: ConfigOpt = Path("driftd.yaml"), json: JsonOpt = False, log_level: LogOpt = "WARNING"
) -> None:
    """What has been ingested: rows, duplicates, quarantine by reason, windows, jobs."""
    from driftd.progress import print_status

    with _errors():
        application = _app(config, log_level)
        with application:
            summary = application.status()
        if json:
            typer.echo(_dump(summary))
        else:
            print_status(summary)


@app.command()
def drift(
    config: ConfigOpt = Path("driftd.yaml"),
    window: Annotated[
        str | None,
        typer.Option(help="Window start (ISO 8601, e.g. 2026-11-05T00:00Z); default: latest."),
    ] = None,
    json: JsonOpt = False,
    log_level: LogOpt = "WARNING",
) -> None:
    """Drift and data quality of one window: per column method, score, threshold, drifted."""
    from datetime import UTC, datetime

    with _errors():
        application = _app(config, log_level)
        with application:
            rows = [w for w in application.window_results(10_000) if w["results"]]
        if window is not None:
            try:
                wanted = datetime.fromisoformat(window)
            except ValueError:
                typer.echo(f"driftd: --window {window!r} is not an ISO 8601 time", err=True)
                raise typer.Exit(2) from None
            if wanted.tzinfo is None:
                wanted = wanted.replace(tzinfo=UTC)
            rows = [w for w in rows if w["start"] == wanted]
        if not rows:
            typer.echo(
                "driftd: no finalized window" + (f" starts at {window}" if window else ""), err=True
            )
            raise typer.Exit(1)
        results = rows[-1]["results"]
        if json:
            typer.echo(_dump(results))
            return
        from driftd.progress import print_drift

        print_drift(results)


@app.command()
def check(config: ConfigOpt = Path("driftd.yaml"), log_level: LogOpt = "WARNING") -> None:
    """Health check: exit 0 when healthy, 1 otherwise (printing why)."""
    with _errors():
        application = _app(config, log_level)
        try:
            problems = application.health()
        finally:
            application.close()
    if problems:
        for problem in problems:
            typer.echo(f"unhealthy: {problem}")
        raise typer.Exit(1)
    typer.echo("healthy")


@app.command()
def demo(
    workspace: Annotated[Path, typer.Option(help="Where the demo writes its files.")] = Path(
        "demo-workspace"
    ),
    days: Annotated[int, typer.Option(min=1, max=60, help="Simulated days to replay.")] = 6,
    rows_per_hour: Annotated[int, typer.Option(min=10, max=100_000)] = 400,
    seed: Annotated[int, typer.Option()] = 0,
    slack_channel: Annotated[
        str | None,
        typer.Option(
            envvar="SLACK_CHANNEL",
            help="Post the alerts to this Slack channel (needs SLACK_BOT_TOKEN); "
            "default: narrated on the console.",
        ),
    ] = None,
    log_level: LogOpt = "WARNING",
) -> None:
    """Replay the bundled card-fraud demo in accelerated time and narrate what driftd does."""
    from driftd.demo.run import run_demo

    setup_logging(log_level.upper())
    with _errors():
        run_demo(
            workspace,
            days=days,
            rows_per_hour=rows_per_hour,
            seed=seed,
            slack_channel=slack_channel,
            out=typer.echo,
        )


alerts_app = typer.Typer(help="Alert incidents and their delivery.", no_args_is_help=True)
silence_app = typer.Typer(help="Silence alerts: recorded, not sent.", no_args_is_help=True)
app.add_typer(alerts_app, name="alerts")
app.add_typer(silence_app, name="silence")


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

    with _errors():
        application = _app(config, log_level)
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
        typer.echo(_dump({"incidents": [asdict(i) for i in incidents], "deliveries": deliveries}))
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
    with _errors():
        application = _app(config, log_level)
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
    with _errors():
        application = _app(config, log_level)
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

    with _errors():
        try:
            length = parse_duration(duration)
        except ValueError as exc:
            raise ConfigError(f"--for: {exc}") from None
        application = _app(config, log_level)
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

    with _errors():
        application = _app(config, log_level)
        with application:
            now = application.clock()
            silences = application.alert_repository.silences(active_at=None if all_ else now)
    if json:
        typer.echo(_dump([asdict(s) for s in silences]))
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
    with _errors():
        application = _app(config, log_level)
        with application:
            removed = application.alert_repository.expire_silence(silence, now=application.clock())
    if not removed:
        typer.echo(f"driftd: no active silence {silence}", err=True)
        raise typer.Exit(1)
    typer.echo(f"silence {silence} removed")


def main() -> None:
    try:
        app()
    except KeyboardInterrupt:
        sys.exit(130)
