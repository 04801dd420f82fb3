"""``driftd review`` and ``driftd training-set``: the human review queue."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import orjson
import typer

from driftd.cli_common import ConfigOpt, JsonOpt, LogOpt, dump, errors, load_app
from driftd.errors import ConfigError
from storage.errors import InvalidOperationError

review_app = typer.Typer(
    help="The human review queue: misclassified, out-of-distribution and low-confidence "
    "predictions. Review with `label --as VALUE`, `confirm` or `discard`; or export to "
    "Label Studio, label there, and import its JSON export.",
    no_args_is_help=True,
)

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


def _review_reason(reason: str | None) -> str | None:
    from storage.review import REASONS

    if reason is not None and reason not in REASONS:
        raise ConfigError(f"--reason: {reason!r} is not one of {', '.join(REASONS)}")
    return reason


def _label_checker(application: Any, repo: Any) -> Any:
    """A function checking a reviewer's label against the task: the classes of the
    reference target (else the labels production used) or, for regression, a number."""
    from functools import partial

    from monitor.performance import normalize
    from monitor.review import check_label

    task, reference = application.config.model.task, application.config.reference
    classes: list[Any] = []
    if task != "regression" and reference is not None and reference.target:
        frame = application.reference.frame()
        if reference.target not in frame:
            raise ConfigError(f"reference.target: no column {reference.target!r} in the reference")
        classes = [normalize(v) for v in frame[reference.target].dropna().unique().tolist()]
    elif task != "regression":
        classes = repo.label_classes(application.model)
    return partial(check_label, task=task, classes=classes)


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

    with errors():
        wanted = _review_state(state)
        reason = _review_reason(reason)
        application = load_app(config, log_level)
        with application:
            items = ReviewRepository(application.store).items(
                application.model, state=wanted, reason=reason, limit=limit
            )
    if json:
        typer.echo(dump([asdict(i) for i in items]))
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

    with errors():
        application = load_app(config, log_level)
        with application:
            view = ReviewRepository(application.store).item(application.model, item)
    if view is None:
        typer.echo(f"driftd: no review item {item!r}", err=True)
        raise typer.Exit(1)
    if json:
        typer.echo(dump(asdict(view)))
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

    with errors():
        application = load_app(config, log_level)
        with application:
            repo = ReviewRepository(application.store)
            view = repo.item(application.model, item)
            if view is None:
                typer.echo(f"driftd: no review item {item!r}", err=True)
                raise typer.Exit(1)
            try:
                if state == "relabelled":
                    label = _label_checker(application, repo)(label)
                done = repo.review(
                    application.model,
                    view.item.pk,
                    state,
                    reviewer=by or getpass.getuser(),
                    now=application.clock(),
                    new_label=label,
                )
            except (ValueError, InvalidOperationError) as exc:  # a bad label, a bad state
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

    with errors():
        if format_ not in ("csv", "label-studio"):
            raise ConfigError(f"--format: {format_!r} is not csv or label-studio")
        wanted = _review_state(state)
        application = load_app(config, log_level)
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

    from storage.labels import CONFIRMED, RELABELLED
    from storage.review import ReviewRepository

    try:
        tasks = orjson.loads(file.read_bytes())
    except (OSError, orjson.JSONDecodeError) as exc:
        typer.echo(f"driftd: cannot read {file}: {exc}", err=True)
        raise typer.Exit(1) from None
    if not isinstance(tasks, list):
        typer.echo(f"driftd: {file} is not a Label Studio export (a list of tasks)", err=True)
        raise typer.Exit(1)
    counts = {"confirmed": 0, "relabelled": 0, "unchanged": 0, "skipped": 0}
    with errors():
        application = load_app(config, log_level)
        with application:
            repo = ReviewRepository(application.store)
            check = _label_checker(application, repo)
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
                try:
                    label = check(label)
                except ValueError as exc:
                    typer.echo(f"skipped task {task.get('id')} ({key}): {exc}", err=True)
                    counts["skipped"] += 1
                    continue
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

    with errors():
        application = load_app(config, log_level)
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
