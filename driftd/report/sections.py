"""The report's longer sections as HTML: what changed and why, the threshold what-if;
and the table helpers every section uses."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from html import escape
from typing import Any

from driftd.report import svg
from driftd.report.narrative import count, money, top_driver


def tag(basis: str | None) -> str:
    return "" if not basis else f'<span class="tag {escape(basis)}">{escape(basis)}</span>'


def table(head: Sequence[str], rows: Sequence[Sequence[str]]) -> str:
    out = ["<table><thead><tr>", *(f"<th>{h}</th>" for h in head), "</tr></thead><tbody>"]
    for row in rows:
        out.append("<tr>" + "".join(f"<td>{cell}</td>" for cell in row) + "</tr>")
    out.append("</tbody></table>")
    return "".join(out)


def section(title: str, *body: str) -> str:
    return f"<section><h2>{escape(title)}</h2>{''.join(body)}</section>"


def drivers(doc: Mapping[str, Any]) -> str:
    m, b, cur = doc["money"], doc["business"], doc["business"]["currency"]
    drivers = doc["drivers"]
    facts = [
        ["this week", money(m["cost"], cur)],
        ["previous week", money(m["previous_week"], cur)],
        ["change", money(m["change"], cur, signed=True)],
        [
            "at the reference's error rates, this week's volume",
            money(m["reference_at_this_volume"], cur),
        ],
        ["change against the reference", money(m["change_vs_reference"], cur, signed=True)],
    ]
    out = [table(["", "cost"], facts)]
    drifted = drivers["drifted_features"]
    if drifted["features"]:
        out.append(
            f"<p>Drift in {drifted['dataset_drift_windows']} of {drifted['windows']} windows of the week "
            "(dataset drift); features that drifted:</p>"
        )
        out.append(
            table(
                ["feature", "windows drifted", "method", "worst score"],
                [
                    [
                        escape(f["column"]),
                        str(f["windows"]),
                        escape(str(f["method"])),
                        "n/a" if f["max_score"] is None else f"{f['max_score']:.3g}",
                    ]
                    for f in drifted["features"]
                ],
            )
        )
    elif drifted["windows"]:
        out.append(
            f"<p>No feature drifted in the {drifted['windows']} finalized windows of the week.</p>"
        )
    else:
        out.append("<p>No drift statistics for this week's windows (none finalized).</p>")
    baseline = drivers["baseline"]
    if baseline is None:
        out.append("<p>No previous week and no reference: the cost change cannot be split.</p>")
        return "".join(out)
    against = (
        "last week"
        if baseline == "previous_week"
        else "the reference (scaled to this week's volume)"
    )
    out.append(
        f"<p>The cost change against {against}, split by segment: each segment's change is the "
        "sum of a volume effect (more or fewer rows at the old cost per row) and a rate effect "
        "(a different cost per row at this week's volume).</p>"
    )
    top = top_driver(doc)
    for column, changes in drivers["segments"].items():
        shown = changes[:8]
        if top is not None and column == top["column"]:
            out.append(
                svg.diverging(
                    f"segments-{column}",
                    f"Cost change by {column} ({cur})",
                    [(c["segment"], c["change"]) for c in shown],
                    fmt=lambda v: f"{v:+,.0f}",
                )
            )
        out.append(
            table(
                [
                    escape(column),
                    escape(b["units"]),
                    "before",
                    "cost",
                    "before",
                    "change",
                    "volume effect",
                    "rate effect",
                ],
                [
                    [
                        escape(c["segment"]),
                        count(c["rows"]),
                        count(c["base_rows"]),
                        money(c["cost"], cur),
                        money(c["base_cost"], cur),
                        money(c["change"], cur, signed=True),
                        money(c["volume_effect"], cur, signed=True),
                        money(c["rate_effect"], cur, signed=True),
                    ]
                    for c in shown
                ],
            )
        )
    return "".join(out)


def threshold(doc: Mapping[str, Any]) -> str:
    t, b, cur = doc["threshold"], doc["business"], doc["business"]["currency"]
    if not t["points"]:
        return "<p>No scores this week: no what-if.</p>"
    points = t["points"]
    xs = [p["threshold"] for p in points]
    best = t["best"]
    marks = [
        (t["current"], f"current {t['current']:.2f}", svg.BLUE),
        (best["threshold"], f"cheapest {best['threshold']:.2f}", svg.GREEN),
    ]
    curve = svg.lines(
        "cost-curve",
        f"Cost a day ({cur}) at each threshold",
        xs,
        [("cost a day", [p["cost_per_day"] for p in points], svg.RED)],
        fmt=lambda v: f"{v:,.0f}",
        x_fmt=lambda v: f"{v:.1f}",
        marks=marks,
    )
    capacity = t["capacity"]
    load = svg.lines(
        "review-load",
        f"{b['units'].capitalize()} flagged for review a day at each threshold",
        xs,
        [
            ("flagged a day", [p["flagged_per_day"] for p in points], svg.ORANGE),
            ("missed a day", [p["missed_per_day"] for p in points], svg.RED),
        ],
        fmt=lambda v: f"{v:,.0f}",
        x_fmt=lambda v: f"{v:.1f}",
        marks=marks,
        level=None if capacity is None else (capacity, f"review capacity {capacity:,.0f}"),
    )
    wanted = {round(x / 10, 2) for x in range(1, 10)} | {t["current"], best["threshold"]}
    if t["best_within_capacity"]:
        wanted.add(t["best_within_capacity"]["threshold"])
    rows = []
    for p in points:
        if round(p["threshold"], 6) not in {round(w, 6) for w in wanted}:
            continue
        note = []
        if p["threshold"] == t["current"]:
            note.append("current")
        if p["threshold"] == best["threshold"]:
            note.append("cheapest")
        if t["best_within_capacity"] and p["threshold"] == t["best_within_capacity"]["threshold"]:
            note.append("cheapest within capacity")
        over = capacity is not None and p["flagged_per_day"] > capacity
        rows.append(
            [
                f"{p['threshold']:.2f}",
                count(p["flagged_per_day"]) + (" (over capacity)" if over else ""),
                count(p["caught_per_day"]),
                count(p["missed_per_day"]),
                count(p["false_alarms_per_day"]),
                money(p["cost_per_day"], cur),
                ", ".join(note),
            ]
        )
    grid = table(
        ["threshold", "flagged a day", "caught", "missed", "false alarms", "cost a day", ""], rows
    )
    return curve + load + grid
