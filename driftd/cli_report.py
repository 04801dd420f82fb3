"""``driftd report``: the weekly business-impact report, written now or listed."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from driftd.cli_common import ConfigOpt, JsonOpt, LogOpt, dump, errors, load_app

report_app = typer.Typer(help="Weekly business-impact reports.", no_args_is_help=True)


@report_app.command("weekly")
def weekly(
    config: ConfigOpt = Path("driftd.yaml"),
    week: Annotated[
        str | None,
        typer.Option(help="ISO week, e.g. 2026-W47; default: the last complete week."),
    ] = None,
    notify: Annotated[
        bool, typer.Option(help="Send the summary through the alerts pipeline (once per result).")
    ] = True,
    json: JsonOpt = False,
    log_level: LogOpt = "WARNING",
) -> None:
    """Write the report of a week (HTML and its JSON twin); regenerating replaces it."""
    from driftd.report import generate, last_complete, parse_week
    from driftd.report.settings import BusinessSettings

    with errors():
        application = load_app(config, log_level)
        settings = application.config.section("business") or BusinessSettings()
        with application:
            if week is None:
                chosen = last_complete(application.clock(), settings.timezone, settings.week_start)
            else:
                chosen = parse_week(week, settings.timezone, settings.week_start)
            written = generate(application, chosen, notify=notify)
    if json:
        typer.echo(dump(written.document))
        return
    typer.echo(written.document["headline"])
    typer.echo("")
    for line in written.document["summary"]:
        typer.echo(f"  {line}")
    typer.echo(f"report: {written.html} ({written.bytes:,} bytes)\nnumbers: {written.json}")


@report_app.command("list")
def report_list(
    config: ConfigOpt = Path("driftd.yaml"), json: JsonOpt = False, log_level: LogOpt = "WARNING"
) -> None:
    """The weekly reports written so far, oldest first."""
    from driftd.report import listing

    with errors():
        application = load_app(config, log_level)
        reports = listing(application)
        application.close()
    if json:
        typer.echo(dump(reports))
        return
    if not reports:
        typer.echo("no weekly reports yet (driftd report weekly writes one)")
    for r in reports:
        change = "" if r["change"] is None else f", {r['change']:+,.0f} vs previous week"
        typer.echo(
            f"{r['week']}: {r['rows']:,} rows, cost {r['cost']:,.0f} {r['currency']}{change}  {r['html']}"
        )
