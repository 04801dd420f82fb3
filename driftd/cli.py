"""The ``driftd`` command line: parse, load config, set up logging, wire, run.

Exit codes: 0 success (healthy), 1 unhealthy or failed, 2 invalid configuration.
Commands of the alert and review subsystems live in :mod:`driftd.cli_alerts` and
:mod:`driftd.cli_review`.
"""

from __future__ import annotations

import sys
from datetime import datetime
from importlib import resources
from pathlib import Path
from typing import Annotated

import orjson
import typer

from driftd.cli_ab import ab_app
from driftd.cli_alerts import alerts_app, silence_app
from driftd.cli_common import ConfigOpt, JsonOpt, LogOpt, app, checked, dump, errors, load_app
from driftd.cli_export import models_export
from driftd.cli_models import models_app
from driftd.cli_quarantine import quarantine_app, since_time
from driftd.cli_report import report_app
from driftd.cli_retrain import retrain
from driftd.cli_review import review_app, training_set
from driftd.cli_serve import serve
from driftd.logs import setup_logging


@app.command()
def init(
    directory: Annotated[Path, typer.Argument(help="Where to write driftd.yaml.")] = Path("."),
    force: Annotated[bool, typer.Option(help="Overwrite an existing file.")] = False,
    workspace: Annotated[
        str,
        typer.Option(
            help="Where driftd keeps its database and reports (relative: to the config's "
            "directory). The default is the state directory of deploy/driftd.service."
        ),
    ] = "/var/lib/driftd",
) -> None:
    """Write a commented example driftd.yaml."""
    target = directory / "driftd.yaml"
    if target.exists() and not force:
        typer.echo(f"driftd: {target} exists (use --force to overwrite)", err=True)
        raise typer.Exit(1)
    directory.mkdir(parents=True, exist_ok=True)
    text = resources.files("driftd").joinpath("templates/driftd.yaml").read_text()
    quoted = orjson.dumps(workspace).decode()  # a YAML string whatever it holds
    target.write_text(text.replace("\nworkspace: /var/lib/driftd\n", f"\nworkspace: {quoted}\n"))
    typer.echo(f"wrote {target} (workspace: {workspace})")


@app.command()
def run(
    config: ConfigOpt = Path("driftd.yaml"),
    log_level: LogOpt = "INFO",
    standby: Annotated[
        bool,
        typer.Option(
            "--standby",
            help="When another driftd runs this model on this database, wait and take "
            "over when it ends (instead of refusing to start).",
        ),
    ] = False,
    standby_poll: Annotated[
        float, typer.Option(min=0.05, help="Seconds between a standby's attempts.")
    ] = 5.0,
) -> None:
    """Run the daemon: scheduled jobs until SIGTERM/SIGINT (twice to force)."""
    from datetime import timedelta

    with errors():
        application = load_app(config, log_level)
        with application:
            checked(application)
            application.daemon().run(standby=standby, poll=timedelta(seconds=standby_poll))


@app.command()
def once(
    config: ConfigOpt = Path("driftd.yaml"), json: JsonOpt = False, log_level: LogOpt = "INFO"
) -> None:
    """Run every job once, now, and exit (1 if a job failed)."""
    with errors():
        application = load_app(config, log_level)
        with application:
            checked(application)
            results = application.daemon().run_once()
        if json:
            typer.echo(
                dump({name: {"outcome": o, "summary": s} for name, (o, s) in results.items()})
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

    with errors():
        application = load_app(config, log_level)
        with (
            application,
            application.lease.hold("ingest"),
            ingest_progress(application, enabled=not json) as progress,
        ):
            report = application.ingest_now(progress)
        if json:
            typer.echo(dump(report.to_dict()))
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
    config: ConfigOpt = Path("driftd.yaml"),
    windows: Annotated[int, typer.Option(min=1, help="Show the latest N windows.")] = 50,
    since: Annotated[
        datetime | None,
        typer.Option(
            parser=since_time,
            metavar="TIME",
            help="Only windows starting at or after TIME: ISO 8601 (UTC if no offset, "
            "e.g. 2026-11-05T00:00Z) or a duration ago (e.g. 24h, 7d).",
        ),
    ] = None,
    json: JsonOpt = False,
    log_level: LogOpt = "WARNING",
) -> None:
    """Ingestion, windows (drift, performance, review queue), detections, open alerts, jobs."""
    from driftd.progress import print_status

    with errors():
        application = load_app(config, log_level)
        with application:
            summary = application.status(windows, since)
        if json:
            typer.echo(dump(summary))
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

    with errors():
        application = load_app(config, log_level)
        with application:
            rows = application.window_results(10_000)
        if window is not None:
            try:
                wanted = datetime.fromisoformat(window)
            except ValueError:
                typer.echo(f"driftd: --window {window!r} is not an ISO 8601 time", err=True)
                raise typer.Exit(2) from None
            if wanted.tzinfo is None:
                wanted = wanted.replace(tzinfo=UTC)
            rows = [w for w in rows if w.start == wanted]
        if not rows:
            typer.echo(
                "driftd: no finalized window" + (f" starts at {window}" if window else ""), err=True
            )
            raise typer.Exit(1)
        results = rows[-1]
        if json:
            typer.echo(dump(results.to_dict()))
            return
        from driftd.progress import print_drift

        print_drift(results)


@app.command()
def check(config: ConfigOpt = Path("driftd.yaml"), log_level: LogOpt = "WARNING") -> None:
    """Health check: exit 0 when healthy, 1 otherwise (printing why)."""
    with errors():
        application = load_app(config, log_level)
        try:
            warnings = application.reference.check()
            problems = application.health()
        finally:
            application.close()
    for warning in warnings:
        typer.echo(f"warning: {warning}")
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
    days: Annotated[int, typer.Option(min=1, max=60, help="Simulated days to replay.")] = 12,
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
    with errors():
        run_demo(
            workspace,
            days=days,
            rows_per_hour=rows_per_hour,
            seed=seed,
            slack_channel=slack_channel,
            out=typer.echo,
        )


app.add_typer(alerts_app, name="alerts")
app.add_typer(silence_app, name="silence")
app.add_typer(review_app, name="review")
app.add_typer(quarantine_app, name="quarantine")
models_app.command("export")(models_export)
app.add_typer(models_app, name="models")
app.add_typer(report_app, name="report")
app.add_typer(ab_app, name="ab")
app.command("training-set")(training_set)
app.command("retrain")(retrain)
app.command()(serve)


def main() -> None:
    try:
        app()
    except KeyboardInterrupt:
        sys.exit(130)
