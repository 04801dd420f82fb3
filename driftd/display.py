"""What the CLI and the demo show: one-line window summaries, the status document,
durations as people read them. No wiring, no I/O."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Any

from monitor.results import WindowPerformance, WindowResults


def window_summary(results: WindowResults | None) -> dict[str, Any] | None:
    """What `status` shows of a window's statistics (`driftd drift` shows everything)."""
    if results is None:
        return None
    drift = results.drift
    return {
        "dataset_drift": drift.drifted,
        "drift_share": drift.share,
        "drifted_columns": [
            {"column": c.column, "method": c.method, "score": c.score, "threshold": c.threshold}
            for c in drift.columns
            if c.drifted
        ],
        "quality_failed": [
            {
                "check": q.check,
                "column": q.column,
                "value": q.value,
                "threshold": q.threshold,
                "severity": q.severity,
            }
            for q in results.quality_failed
        ],
        "prediction_drift": [c.column for c in results.prediction_drift if c.drifted],
        "multivariate_drift": [m.detector for m in results.multivariate if m.drifted],
        "report": results.report,
    }


def _short(x: float | None) -> str:
    return "n/a" if x is None else f"{x:.3g}"


def summarize(start: datetime, results: WindowResults) -> str:
    """One line on a window's drift and failed quality checks; empty when all is well."""
    drift = results.drift
    columns = [c for c in drift.columns if c.drifted]
    failed = results.quality_failed
    joint = [m for m in results.multivariate if m.drifted]
    outputs = [c for c in results.prediction_drift if c.drifted]
    if not columns and not failed and not joint and not outputs:
        return ""
    parts = []
    if columns:
        head = "dataset drift" if drift.drifted else "drift"
        shown = ", ".join(
            f"{c.column} ({c.method} {_short(c.score)} vs {_short(c.threshold)})"
            for c in columns[:4]
        )
        more = f" and {len(columns) - 4} more" if len(columns) > 4 else ""
        parts.append(f"{head} in {len(columns)}/{drift.columns_total} columns: {shown}{more}")
    if outputs:
        parts.append(
            "prediction drift: "
            + ", ".join(
                f"{c.column[1:]} ({c.method} {_short(c.score)} vs {_short(c.threshold)})"
                for c in outputs
            )
        )
    if joint:
        parts.append(
            "multivariate: "
            + ", ".join(f"{m.detector} {_short(m.score)} vs {_short(m.threshold)}" for m in joint)
        )
    if failed:
        parts.append(
            "quality: "
            + ", ".join(
                f"{q.check}"
                + (f" in {q.column}" if q.column else "")
                + (f" ({q.detail})" if q.detail else "")
                for q in failed[:3]
            )
        )
    if results.report:
        parts.append(f"report {results.report}")
    return f"window {start:%a %d %b %H:%M}: " + "; ".join(parts)


def performance_summary(row: WindowPerformance | None) -> dict[str, Any] | None:
    """What `status` shows of a window's performance: coverage and state, realized
    metrics with intervals, the degradation test, estimates with bounds."""
    if row is None:
        return None
    realized, estimated = row.realized, row.estimated
    return {
        "state": row.state,
        "labelled": row.labelled,
        "coverage": row.coverage,
        "realized": None
        if realized is None
        else {
            name: {"value": m.value, "lower": m.lower, "upper": m.upper, "method": m.method}
            for name, m in realized.metrics.items()
        },
        "degradation": None
        if realized is None or row.degradation is None
        else {metric: d.to_dict() for metric, d in row.degradation.items()},
        "target_drift": None
        if realized is None or row.target_drift is None
        else row.target_drift.to_dict(),
        "estimated": None
        if estimated is None
        else {
            name: {
                "value": m.value,
                "sampling_error": m.sampling_error,
                "lower_threshold": m.lower_threshold,
                "upper_threshold": m.upper_threshold,
                "alert": m.alert,
            }
            for name, m in estimated.metrics.items()
        },
    }


def run_dict(run: Any) -> Mapping[str, Any] | None:
    if run is None:
        return None
    return {
        "run": run.pk,
        "outcome": run.outcome,
        "started_at": run.started_at,
        "finished_at": run.finished_at,
        "error": run.error,
    }


def experiment_summary(exp: Any) -> dict[str, Any] | None:
    """What `status` and `models show` show of a challenger's experiment
    (a :class:`storage.experiment_state.Experiment`): its phase and, once it was
    scored in shadow, the shadow comparison."""
    if exp is None:
        return None
    shadow = exp.details.get("shadow")
    return {
        "challenger": exp.challenger,
        "champion": exp.champion,
        "phase": exp.phase,
        "active": exp.active,
        "started_at": exp.started_at,
        "phase_at": exp.phase_at,
        "finished_at": exp.finished_at,
        "reason": exp.reason,
        "shadow": None
        if not shadow
        else {
            k: shadow.get(k)
            for k in (
                "rows",
                "failed",
                "labelled",
                "metric",
                "verdict",
                "final",
                "n",
                "reason",
                "comparisons",
                "updated_at",
            )
        },
    }


def experiment_lines(summary: Mapping[str, Any] | None) -> list[str]:
    """An experiment summary (:func:`experiment_summary`) as lines of text."""
    if summary is None:
        return []
    champion = f"v{summary['champion']}" if summary["champion"] else "the champion"
    lines = [
        f"experiment: challenger v{summary['challenger']} vs {champion}: {summary['phase']}"
        f" since {summary['phase_at']:%Y-%m-%d %H:%M}"
        + (f" ({summary['reason']})" if summary["reason"] else "")
    ]
    shadow = summary.get("shadow")
    if not shadow:
        return lines
    state = "final" if shadow["final"] else "not final"
    lines.append(
        f"shadow: {shadow['rows']} rows scored ({shadow['failed']} failed),"
        f" {shadow['labelled']} labelled rows compared;"
        f" verdict {shadow['verdict']} ({state}) on {shadow['n']} rows"
    )
    for c in shadow.get("comparisons") or []:
        if c["test"] == "mcnemar":
            test = (
                f"McNemar p(better) {_g(c['p_better'], '.2g')}, p(worse) {_g(c['p_worse'], '.2g')}"
            )
        else:
            test = f"paired bootstrap [{_g(c['low'], '+.4g')}, {_g(c['high'], '+.4g')}]"
        lines.append(
            f"  {c['metric']}: champion {_g(c['champion'], '.4g')},"
            f" challenger {_g(c['challenger'], '.4g')}"
            f" ({_g(c['delta'], '+.4g')} for the challenger), {test}: {c['verdict']}"
        )
    return lines


def _g(value: float | None, spec: str) -> str:
    return "-" if value is None else format(value, spec)
