"""``driftd retrain``: train the next candidate now, by hand, with a reason."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer

from driftd.cli_common import ConfigOpt, JsonOpt, LogOpt, checked, dump, errors, load_app


def retrain(
    reason: Annotated[str, typer.Option(help="Why (recorded with the run and in MLflow).")],
    config: ConfigOpt = Path("driftd.yaml"),
    json: JsonOpt = False,
    log_level: LogOpt = "INFO",
) -> None:
    """Train, gate and register a candidate now; exit 1 if blocked or rejected.

    The cooldown, the mode and the label minimum do not apply; the single-flight lock
    does."""
    from driftd.jobs.retrain import Retrain
    from driftd.jobs.runner import JobRunner
    from driftd.retraining import gate_table
    from driftd.retraining import retrain as run_retrain
    from storage.runs import FAILED, OK

    class Manual(Retrain):
        def run(self, context: Any) -> Any:
            return run_retrain(context, manual_reason=reason)

    with errors():
        application = load_app(config, log_level)
        with application:
            checked(application)
            pk = application.runs.start("retrain", now=application.clock())
            try:
                summary = dict(JobRunner(application).run(Manual()))
            except Exception as exc:
                application.runs.finish(pk, FAILED, error=f"{type(exc).__name__}: {exc}")
                raise
            application.runs.finish(pk, OK, summary=summary)
    if json:
        typer.echo(dump(summary))
    else:
        outcome = summary.get("outcome") or summary["decision"]
        version = f" as version {summary['version']}" if summary.get("version") else ""
        typer.echo(f"retrain: {outcome}{version}: {(summary.get('attempt') or {}).get('reason')}")
        for line in gate_table(summary.get("attempt") or {}):
            typer.echo("  " + line)
    if summary.get("outcome") != "registered":
        raise typer.Exit(1)
