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


review_app = typer.Typer(
    help="The human review queue: misclassified, out-of-distribution and low-confidence "
    "predictions. Review with `label --as VALUE`, `confirm` or `discard`; or export to "
    "Label Studio, label there, and import its JSON export.",
    no_args_is_help=True,
)
app.add_typer(review_app, name="review")

ItemArg = Annotated[
    str, typer.Argument(help="The item number or the prediction id (see `review list`).")
]
ByOpt = Annotated[str | None, typer.Option("--by", help="Who reviews (default: $USER).")]
STATE_HELP = "pending, confirmed, relabelled, discarded or all."


def _review_state(state: str) -> str | None:
    from storage.review import STATES

    if state != "all" and state not in STATES:
        raise ConfigError(f"--state: {state!r} is not one of {STATE_HELP}")
    return None if state == "all" else state


def _label_value(text: str) -> Any:
    """A label as typed: JSON when it parses ("1" is 1, "true" is True), else the text."""
    try:
        return orjson.loads(text)
    except orjson.JSONDecodeError:
        return text


def _cell(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float | str):
        return str(value)
    if hasattr(value, "isoformat"):
        return str(value.isoformat())
    return orjson.dumps(value, default=str).decode()


def _write_csv(path: Path, fixed: list[dict[str, Any]], features: list[dict[str, Any]]) -> None:
    """Rows of fixed columns, then one column per feature (named ``feature:x`` when a
    feature is called like a fixed column)."""
    import csv

    head = list(fixed[0]) if fixed else []
    names = sorted({name for f in features for name in f})
    columns = [f"feature:{n}" if n in head else n for n in names]
    with path.open("w", newline="", encoding="utf-8") as out:
        writer = csv.writer(out)
        writer.writerow([*head, *columns])
        for row, f in zip(fixed, features, strict=True):
            writer.writerow([_cell(v) for v in row.values()] + [_cell(f.get(n)) for n in names])


def _review_line(i: Any) -> str:
    window = f"{i.window_start:%Y-%m-%d %H:%M}" if i.window_start else "-"
    label = f" -> {i.new_label!r} by {i.reviewer}" if i.state != "pending" and i.reviewer else ""
    return (
        f"#{i.pk:<5} {i.prediction_id:<20} {i.state:<10} {i.reason:<19} {i.priority:6.3f} "
        f"{window}  {i.why.get('summary', '')}{label}"
    )


@review_app.command("list")
def review_list(
    config: ConfigOpt = Path("driftd.yaml"),
    state: Annotated[str, typer.Option(help=STATE_HELP)] = "pending",
    reason: Annotated[
        str | None,
        typer.Option(help="misclassified, out_of_distribution or low_confidence; default: all."),
    ] = None,
    limit: Annotated[int, typer.Option(min=1)] = 50,
    json: JsonOpt = False,
    log_level: LogOpt = "WARNING",
) -> None:
    """Queued items, highest priority first."""
    from dataclasses import asdict

    from storage.review import ReviewRepository

    with _errors():
        wanted = _review_state(state)
        application = _app(config, log_level)
        with application:
            items = ReviewRepository(application.store).items(
                application.model, state=wanted, reason=reason, limit=limit
            )
    if json:
        typer.echo(_dump([asdict(i) for i in items]))
        return
    if not items:
        typer.echo(f"no {'' if wanted is None else wanted + ' '}review items")
    for i in items:
        typer.echo(_review_line(i))


@review_app.command("show")
def review_show(
    item: ItemArg,
    config: ConfigOpt = Path("driftd.yaml"),
    json: JsonOpt = False,
    log_level: LogOpt = "WARNING",
) -> None:
    """One item: features, prediction, score, production label, why it was queued, history."""
    from dataclasses import asdict

    from storage.review import ReviewRepository

    with _errors():
        application = _app(config, log_level)
        with application:
            view = ReviewRepository(application.store).item(application.model, item)
    if view is None:
        typer.echo(f"driftd: no review item {item!r}", err=True)
        raise typer.Exit(1)
    if json:
        typer.echo(_dump(asdict(view)))
        return
    i = view.item
    typer.echo(f"review item {i.pk}: prediction {i.prediction_id} at {view.ts}")
    typer.echo(f"  state:      {i.state}" + (f" by {i.reviewer}" if i.reviewer else ""))
    typer.echo(f"  queued:     {i.reason} (priority {i.priority:.3f}): {i.why.get('summary', '')}")
    typer.echo(f"  prediction: {view.prediction!r}, score {view.score}")
    typer.echo(f"  label:      {view.production_label!r} (production)")
    if i.state in ("confirmed", "relabelled"):
        typer.echo(f"  reviewed:   {i.new_label!r} ({i.state})")
    typer.echo("  features:")
    for name, value in view.features.items():
        typer.echo(f"    {name}: {value!r}")
    typer.echo("  history:")
    for event in i.history:
        extra = {k: v for k, v in event.items() if k not in ("at", "event")}
        shown = orjson.dumps(extra, default=str).decode() if extra else ""
        typer.echo(f"    {event['at']} {event['event']} {shown}".rstrip())


def _apply_review(
    config: Path, log_level: str, item: str, state: str, by: str | None, label: Any = None
) -> None:
    import getpass

    from storage.review import ReviewRepository

    with _errors():
        application = _app(config, log_level)
        with application:
            repo = ReviewRepository(application.store)
            view = repo.item(application.model, item)
            if view is None:
                typer.echo(f"driftd: no review item {item!r}", err=True)
                raise typer.Exit(1)
            try:
                done = repo.review(
                    application.model,
                    view.item.pk,
                    state,
                    reviewer=by or getpass.getuser(),
                    now=application.clock(),
                    new_label=label,
                )
            except ValueError as exc:
                typer.echo(f"driftd: {exc}", err=True)
                raise typer.Exit(1) from None
    assert done is not None
    shown = "" if done.new_label is None else f" {done.new_label!r}"
    typer.echo(f"item {done.pk} ({done.prediction_id}): {done.state}{shown} by {done.reviewer}")


@review_app.command("label")
def review_label(
    item: ItemArg,
    value: Annotated[str, typer.Option("--as", help="The right label, as JSON when it parses.")],
    by: ByOpt = None,
    config: ConfigOpt = Path("driftd.yaml"),
    log_level: LogOpt = "WARNING",
) -> None:
    """Relabel an item: its label for the next training set becomes VALUE."""
    _apply_review(config, log_level, item, "relabelled", by, _label_value(value))


@review_app.command("confirm")
def review_confirm(
    item: ItemArg,
    by: ByOpt = None,
    config: ConfigOpt = Path("driftd.yaml"),
    log_level: LogOpt = "WARNING",
) -> None:
    """Confirm the production label (or, before it arrives, the prediction)."""
    _apply_review(config, log_level, item, "confirmed", by)


@review_app.command("discard")
def review_discard(
    item: ItemArg,
    by: ByOpt = None,
    config: ConfigOpt = Path("driftd.yaml"),
    log_level: LogOpt = "WARNING",
) -> None:
    """Discard an item: its row is left out of the next training set."""
    _apply_review(config, log_level, item, "discarded", by)


@review_app.command("export")
def review_export(
    output: Annotated[Path, typer.Option("--output", "-o", help="The file to write.")],
    format_: Annotated[
        str, typer.Option("--format", help="csv, or label-studio (JSON tasks to import).")
    ] = "csv",
    state: Annotated[str, typer.Option(help=STATE_HELP)] = "pending",
    limit: Annotated[int, typer.Option(min=1)] = 100_000,
    config: ConfigOpt = Path("driftd.yaml"),
    log_level: LogOpt = "WARNING",
) -> None:
    """Write the queue to a CSV file or as Label Studio tasks.

    Label Studio tasks are a JSON list; each task's data holds the features,
    `prediction`, `score` and `driftd_id` (the prediction id `review import` matches
    on). Label them with a <Choices> control whose choices are the label values.
    """
    from storage.review import ReviewRepository

    with _errors():
        if format_ not in ("csv", "label-studio"):
            raise ConfigError(f"--format: {format_!r} is not csv or label-studio")
        wanted = _review_state(state)
        application = _app(config, log_level)
        with application:
            views = ReviewRepository(application.store).views(
                application.model, state=wanted, limit=limit
            )
    if format_ == "label-studio":
        tasks = [
            {
                "id": v.item.pk,
                "data": {
                    **v.features,
                    "prediction": v.prediction,
                    "score": v.score,
                    "driftd_id": v.item.prediction_id,
                },
                "meta": {
                    "driftd_item": v.item.pk,
                    "prediction_id": v.item.prediction_id,
                    "reason": v.item.reason,
                    "priority": v.item.priority,
                    "why": v.item.why.get("summary"),
                    "production_label": v.production_label,
                    "window_start": v.item.window_start,
                    "ts": v.ts,
                },
            }
            for v in views
        ]
        output.write_bytes(orjson.dumps(tasks, default=str, option=orjson.OPT_INDENT_2))
    else:
        fixed = [
            {
                "item": v.item.pk,
                "prediction_id": v.item.prediction_id,
                "window_start": v.item.window_start,
                "ts": v.ts,
                "reason": v.item.reason,
                "priority": v.item.priority,
                "state": v.item.state,
                "why": v.item.why.get("summary"),
                "prediction": v.prediction,
                "score": v.score,
                "production_label": v.production_label,
                "new_label": v.item.new_label,
                "reviewer": v.item.reviewer,
            }
            for v in views
        ]
        _write_csv(output, fixed, [v.features for v in views])
    typer.echo(f"wrote {len(views)} review items to {output}")


def _choice(task: dict[str, Any]) -> tuple[Any, dict[str, Any]] | None:
    """The label of a Label Studio task's latest kept annotation (its first choice) and
    where it came from; None when it has none."""
    kept = [a for a in task.get("annotations") or [] if not a.get("was_cancelled")]
    kept.sort(key=lambda a: str(a.get("updated_at") or a.get("created_at") or ""))
    for annotation in reversed(kept):
        for result in annotation.get("result") or []:
            choices = (result.get("value") or {}).get("choices")
            if choices:
                note = {"source": "label-studio", "task": task.get("id")}
                note |= {k: annotation[k] for k in ("id", "completed_by") if k in annotation}
                return _label_value(str(choices[0])), note
    return None


@review_app.command("import")
def review_import(
    file: Annotated[Path, typer.Argument(help="A Label Studio JSON export.")],
    by: ByOpt = None,
    config: ConfigOpt = Path("driftd.yaml"),
    log_level: LogOpt = "WARNING",
) -> None:
    """Apply the labels of a Label Studio JSON export.

    Tasks are matched on data.driftd_id; the first choice of a task's latest annotation
    that was not skipped is its label. It confirms the item when it equals the
    production label (or, before that arrives, the prediction), else relabels it.
    """
    import getpass

    from storage.review import CONFIRMED, RELABELLED, ReviewRepository

    try:
        tasks = orjson.loads(file.read_bytes())
    except (OSError, orjson.JSONDecodeError) as exc:
        typer.echo(f"driftd: cannot read {file}: {exc}", err=True)
        raise typer.Exit(1) from None
    if not isinstance(tasks, list):
        typer.echo(f"driftd: {file} is not a Label Studio export (a list of tasks)", err=True)
        raise typer.Exit(1)
    counts = {"confirmed": 0, "relabelled": 0, "unchanged": 0, "skipped": 0}
    with _errors():
        application = _app(config, log_level)
        with application:
            repo = ReviewRepository(application.store)
            for task in tasks:
                data, meta = task.get("data") or {}, task.get("meta") or {}
                key = data.get("driftd_id") or meta.get("prediction_id")
                chosen = _choice(task)
                view = None if key is None else repo.item(application.model, str(key))
                if view is None or chosen is None:
                    why = "no label chosen"
                    if key is None:
                        why = "no data.driftd_id"
                    elif view is None:
                        why = "no such review item"
                    typer.echo(f"skipped task {task.get('id')} ({key}): {why}", err=True)
                    counts["skipped"] += 1
                    continue
                label, note = chosen
                reference = view.production_label
                if reference is None:
                    reference = view.prediction
                same = label == reference or _cell(label) == _cell(reference)
                state = CONFIRMED if same else RELABELLED
                i = view.item
                if i.state == state and (same or i.new_label == label):
                    typer.echo(f"{i.prediction_id}: unchanged, already {state}")
                    counts["unchanged"] += 1
                    continue
                repo.review(
                    application.model,
                    i.pk,
                    state,
                    reviewer=by or getpass.getuser(),
                    now=application.clock(),
                    new_label=None if same else label,
                    note=note,
                )
                counts[state] += 1
                change = f"{label!r}" if same else f"{reference!r} -> {label!r}"
                typer.echo(f"{i.prediction_id}: {state} {change} (item {i.pk})")
    typer.echo(", ".join(f"{n} {what}" for what, n in counts.items()))


@app.command("training-set")
def training_set(
    output: Annotated[Path, typer.Option("--output", "-o", help="The CSV file to write.")],
    config: ConfigOpt = Path("driftd.yaml"),
    log_level: LogOpt = "WARNING",
) -> None:
    """Write the next training set (CSV) from production labels and reviews.

    One row per labelled prediction: its features, its label (a review overrides the
    production label; discarded rows are left out), where the label comes from
    (production or review, with reviewer and time), and holdout_eligible (false for
    reviewed rows: a reviewer chose them, so they are no sample of production).
    """
    from storage.review import ReviewRepository

    with _errors():
        application = _app(config, log_level)
        with application:
            rows = ReviewRepository(application.store).training_labels(application.model)
    fixed = [
        {
            "id": r.id,
            "ts": r.ts,
            "label": r.label,
            "source": r.source,
            "review_state": r.review_state,
            "reviewer": r.reviewer,
            "reviewed_at": r.reviewed_at,
            "holdout_eligible": r.holdout_eligible,
        }
        for r in rows
    ]
    _write_csv(output, fixed, [r.features for r in rows])
    reviewed = sum(r.source == "review" for r in rows)
    typer.echo(f"wrote {len(rows)} rows ({reviewed} from reviews) to {output}")


def main() -> None:
    try:
        app()
    except KeyboardInterrupt:
        sys.exit(130)
