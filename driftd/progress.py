"""Terminal output for long commands: a rich progress bar on a terminal, plain logs otherwise."""

from __future__ import annotations

import sys
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from monitor.ingest import Progress
from monitor.results import WindowResults


@contextmanager
def ingest_progress(app: Any, *, enabled: bool = True) -> Iterator[Progress | None]:
    """A progress callback drawing one bar per source, or None when not on a terminal."""
    if not enabled or not sys.stderr.isatty():
        yield None
        return
    from rich.console import Console
    from rich.progress import (
        BarColumn,
        DownloadColumn,
        TimeRemainingColumn,
        TransferSpeedColumn,
    )
    from rich.progress import (
        Progress as RichProgress,
    )

    pending = app.ingestor().pending_bytes()
    with RichProgress(
        "[progress.description]{task.description}",
        BarColumn(),
        DownloadColumn(),
        TransferSpeedColumn(),
        TimeRemainingColumn(),
        console=Console(stderr=True),
        transient=False,
    ) as bar:
        tasks = {name: bar.add_task(name, total=total) for name, total in pending.items()}

        def advance(source: str, amount: int) -> None:
            if source in tasks:
                bar.advance(tasks[source], amount)

        yield advance


def print_status(summary: dict[str, Any]) -> None:
    from rich.console import Console
    from rich.table import Table

    console = Console()
    console.width = max(console.width, 110)  # the windows table needs it; pipes get 80
    counts = summary["counts"]
    console.print(
        f"[bold]{summary['model']}[/] in {summary['database']}: "
        f"{counts['predictions']} predictions, {counts['labels']} labels, "
        f"{counts['quarantined']} quarantined"
    )
    sources = Table("source", "files", "rows", "duplicates", "quarantined", "last ingest")
    for name, s in summary["ingestion"].items():
        reasons = ", ".join(f"{r} {n}" for r, n in sorted(s.get("quarantined", {}).items()))
        sources.add_row(
            name,
            str(s.get("files", 0)),
            str(s.get("rows", 0)),
            str(s.get("duplicates", 0)),
            reasons or "0",
            str(s.get("last_ingest_at") or "-"),
        )
    console.print(sources)
    windows = Table(
        "window", "rows", "labelled", "drifted", "quality", "perf", "AUC est/real", "review"
    )
    for w in summary["windows"][-24:]:
        windows.add_row(
            f"{w['start']:%m-%d %H:%M}",
            str(w["predictions"]),
            f"{w['label_coverage']:.0%}",
            *_window_cells(w),
        )
    console.print(windows)
    alerts = summary.get("alerts") or {}
    for incident in alerts.get("open", []):
        console.print(
            f"[red]open[/] {incident['severity']} {incident['rule']}/{incident['scope']} "
            f"since {incident['since']:%Y-%m-%d %H:%M}"
        )
    outbox = alerts.get("outbox") or {}
    if outbox:
        console.print("alert messages: " + ", ".join(f"{n} {s}" for s, n in sorted(outbox.items())))
    for d in summary.get("detections", [])[-5:]:
        details, change = d.get("details") or {}, ""
        if details.get("error_before") is not None and details.get("error_after") is not None:
            change = f": {details['error_before']:.1%} -> {details['error_after']:.1%}"
        console.print(
            f"detection: {d['detector']} at error {d['position']} "
            f"(labels up to {d['ts']:%Y-%m-%d %H:%M}){change}"
        )
    _print_experiment(console, summary.get("experiment"))
    for job, run in summary["jobs"].items():
        if run:
            console.print(
                f"job {job}: last run {run['run']} {run['outcome']} at {run['started_at']}"
            )
        else:
            console.print(f"job {job}: never run")


def _print_experiment(console: Any, experiment: dict[str, Any] | None) -> None:
    from rich.markup import escape

    from driftd.display import experiment_lines

    for line in experiment_lines(experiment):
        console.print(escape(line))


def _window_cells(w: dict[str, Any]) -> list[str]:
    """Drift, failed quality checks, performance state, ROC AUC estimated/realized and
    pending review items of one window, as table cells."""
    stats = w.get("statistics") or {}
    drifted = len(stats.get("drifted_columns", []))
    drift = "-" if not stats else str(drifted) + (" (dataset)" if stats["dataset_drift"] else "")
    quality = str(len(stats.get("quality_failed", []))) if stats else "-"
    perf = w.get("performance") or {}

    def auc(kind: str) -> str:
        m = (perf.get(kind) or {}).get("roc_auc")
        return "-" if not m or m["value"] is None else f"{m['value']:.3f}"

    review = w.get("review") or {}
    return [
        drift,
        quality,
        perf.get("state", "-"),
        f"{auc('estimated')}/{auc('realized')}",
        str(review.get("pending", 0)),
    ]


def print_drift(results: WindowResults) -> None:
    from rich.console import Console
    from rich.table import Table

    def g4(x: float | None) -> str:
        return "-" if x is None else f"{x:.4g}"

    console = Console()
    drift = results.drift
    console.print(
        f"[bold]window {results.start.isoformat()}[/] ({results.rows} rows): "
        + ("[red]dataset drift[/]" if drift.drifted else "no dataset drift")
        + f", {drift.drifted_columns}/{drift.columns_total} columns drifted"
        + f" (dataset drift at {drift.drift_share:.0%})"
    )
    table = Table("column", "type", "method", "score", "threshold", "drifted", "basis")
    for c in drift.columns:
        score = g4(c.score)
        if c.error_bound is not None:  # binned: the exact score is within the bound
            score += f" ± {c.error_bound:.2g}"
        table.add_row(
            c.column,
            c.column_type,
            c.method,
            score,
            g4(c.threshold),
            "[red]yes[/]" if c.drifted else "no",
            c.basis,
        )
    console.print(table)
    for m in results.multivariate:
        console.print(
            f"multivariate {m.detector}: {g4(m.score)} (threshold {g4(m.threshold)}, "
            f"{m.n_current} window rows vs {m.n_reference} reference rows)"
            + (" [red]drift[/]" if m.drifted else "")
        )
    checks = Table("check", "column", "value", "threshold", "severity", "failed", "detail")
    for q in results.quality:
        checks.add_row(
            q.check,
            q.column or "",
            g4(q.value),
            g4(q.threshold),
            q.severity,
            "[red]yes[/]" if q.failed else "no",
            q.detail,
        )
    console.print(checks)
    if results.report:
        console.print(f"detail report: {results.report}")
