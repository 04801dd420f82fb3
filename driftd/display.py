"""What the CLI and the demo show: one-line window summaries, the status document,
durations as people read them. No wiring, no I/O."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Any


def window_summary(results: Mapping[str, Any] | None) -> dict[str, Any] | None:
    """What `status` shows of a window's statistics (`driftd drift` shows everything)."""
    if not results:
        return None
    drift = results["drift"]
    return {
        "dataset_drift": drift["drifted"],
        "drift_share": drift["share"],
        "drifted_columns": [
            {k: c[k] for k in ("column", "method", "score", "threshold")}
            for c in drift["columns"]
            if c["drifted"]
        ],
        "quality_failed": [
            {k: q[k] for k in ("check", "column", "value", "threshold", "severity")}
            for q in results["quality_failed"]
        ],
        "prediction_drift": [
            c["column"] for c in results.get("prediction_drift", []) if c["drifted"]
        ],
        "multivariate_drift": [
            m["detector"] for m in results.get("multivariate", []) if m["drifted"]
        ],
        "report": results.get("report"),
    }


def summarize(start: datetime, results: Mapping[str, Any]) -> str:
    """One line on a window's drift and failed quality checks; empty when all is well."""
    drift = results["drift"]
    columns = [c for c in drift["columns"] if c["drifted"]]
    failed = results["quality_failed"]
    joint = [m for m in results.get("multivariate", []) if m["drifted"]]
    outputs = [c for c in results.get("prediction_drift", []) if c["drifted"]]
    if not columns and not failed and not joint and not outputs:
        return ""
    parts = []
    if columns:
        head = "dataset drift" if drift["drifted"] else "drift"
        shown = ", ".join(
            f"{c['column']} ({c['method']} {c['score']:.3g} vs {c['threshold']:.3g})"
            for c in columns[:4]
        )
        more = f" and {len(columns) - 4} more" if len(columns) > 4 else ""
        parts.append(f"{head} in {len(columns)}/{drift['columns_total']} columns: {shown}{more}")
    if outputs:
        parts.append(
            "prediction drift: "
            + ", ".join(
                f"{c['column'][1:]} ({c['method']} {c['score']:.3g} vs {c['threshold']:.3g})"
                for c in outputs
            )
        )
    if joint:
        parts.append(
            "multivariate: "
            + ", ".join(f"{m['detector']} {m['score']:.3g} vs {m['threshold']:.3g}" for m in joint)
        )
    if failed:
        parts.append(
            "quality: "
            + ", ".join(
                f"{q['check']}"
                + (f" in {q['column']}" if q["column"] else "")
                + (f" ({q['detail']})" if q["detail"] else "")
                for q in failed[:3]
            )
        )
    if results.get("report"):
        parts.append(f"report {results['report']}")
    return f"window {start:%a %d %b %H:%M}: " + "; ".join(parts)


def performance_summary(row: Mapping[str, Any] | None) -> dict[str, Any] | None:
    """What `status` shows of a window's performance: coverage and state, realized
    metrics with intervals, the degradation test, estimates with bounds."""
    if row is None:
        return None
    realized = (row["realized"] or {}).get("performance")
    estimated = row["estimated"]
    return {
        "state": row["state"],
        "labelled": row["labelled"],
        "coverage": row["coverage"],
        "realized": None
        if realized is None
        else {
            name: {k: m[k] for k in ("value", "lower", "upper", "method")}
            for name, m in realized["metrics"].items()
        },
        "degradation": (row["realized"] or {}).get("degradation"),
        "target_drift": (row["realized"] or {}).get("target_drift"),
        "estimated": None
        if estimated is None
        else {
            name: {
                k: m[k]
                for k in ("value", "sampling_error", "lower_threshold", "upper_threshold", "alert")
            }
            for name, m in estimated["metrics"].items()
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
