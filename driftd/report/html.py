"""The weekly report as one self-contained HTML page: inline CSS, inline SVG charts, no
script and no external resource, so it reads offline and prints to PDF."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import date
from html import escape
from typing import Any

from driftd.report import svg
from driftd.report.narrative import count, interval, money, pct
from driftd.report.sections import drivers, section, table, tag, threshold

CSS = """
body{font:14px/1.45 -apple-system,"Segoe UI",Roboto,"DejaVu Sans",sans-serif;color:#1a202c;
max-width:960px;margin:24px auto;padding:0 16px}
h1{font-size:22px;margin:0 0 4px}h2{font-size:17px;margin:28px 0 8px;border-bottom:1px solid #cbd5e0}
.lead{font-size:16px;background:#f7fafc;border-left:4px solid #2b6cb0;padding:10px 14px}
.muted{color:#718096}table{border-collapse:collapse;margin:8px 0;width:100%}
th,td{padding:4px 8px;border-bottom:1px solid #e2e8f0;text-align:right;vertical-align:top}
th:first-child,td:first-child{text-align:left}th{background:#edf2f7;font-weight:600}
.tag{font-size:11px;padding:1px 6px;border-radius:8px;background:#e2e8f0;white-space:nowrap}
.tag.estimated,.tag.mixed{background:#feebc8}.tag.realized{background:#c6f6d5}
.kpis{display:flex;flex-wrap:wrap;gap:10px}.kpi{flex:1 1 150px;border:1px solid #e2e8f0;
border-radius:6px;padding:8px 10px}.kpi b{display:block;font-size:20px}
svg.plot{width:100%;height:auto;margin:6px 0;font-size:11px}svg .plot-title{font-weight:600;font-size:12px}
svg .grid{stroke:#e2e8f0}svg .note{fill:#718096;font-size:10px}
ul.caveats li{margin:4px 0}
@media print{body{margin:0;max-width:none}section{break-inside:avoid}.lead{background:none}}
"""


def _kpis(doc: Mapping[str, Any]) -> str:
    b, week = doc["business"], doc["performance"]["this_week"]
    day, cur = week["per_day"], b["currency"]
    change = doc["money"]["change"]
    versus = "vs last week"
    if change is None:
        change, versus = doc["money"]["change_vs_reference"], "vs reference rates"
    cards = [
        (count(day["flagged"]), f"{escape(b['units'])} a day flagged for review"),
        (count(day["caught"]), f"{escape(b['positive'])}s caught a day"),
        (count(day["missed"]), f"{escape(b['positive'])}s missed a day"),
        (count(day["false_alarms"]), "false alarms a day"),
        (money(doc["money"]["cost"], cur), "cost this week"),
        (money(change, cur, signed=True), versus),
    ]
    return (
        '<div class="kpis">'
        + "".join(f'<div class="kpi"><b>{escape(v)}</b>{label}</div>' for v, label in cards)
        + "</div>"
    )


def _rates(doc: Mapping[str, Any]) -> str:
    perf = doc["performance"]
    labels = {
        "this_week": "This week",
        "realized": "  of which realized",
        "estimated": "  of which estimated (CBPE)",
        "previous_week": "Previous week",
        "reference": "Reference",
    }
    rows, points = [], []
    for key, label in labels.items():
        part = perf.get(key)
        if part is None or not part["known"]:
            continue
        basis = part.get("basis") or key
        r = part["rates"]
        rows.append(
            [escape(label), tag(basis), count(part["rows"])]
            + [interval(r[m]) for m in ("fnr", "fpr", "precision", "recall")]
        )
        for metric, color in (("fnr", svg.RED), ("fpr", svg.ORANGE)):
            rate = r[metric]
            points.append(
                (
                    f"{label.strip()} {metric.upper()}",
                    rate["value"],
                    rate["lower"],
                    rate["upper"],
                    color,
                )
            )
    b = doc["business"]
    grid = table(
        [
            "",
            "basis",
            escape(b["units"]),
            f"missed {escape(b['positive'])}s (FNR)",
            f"flagged {escape(b['negative'])} (FPR)",
            "precision",
            "recall",
        ],
        rows,
    )
    chart = svg.intervals(
        "rates",
        "False-negative (red) and false-positive (orange) rates with intervals",
        points,
        fmt=lambda v: f"{v:.0%}",
    )
    return grid + chart


def _days(doc: Mapping[str, Any]) -> str:
    b, cur = doc["business"], doc["business"]["currency"]
    days = doc["volume"]["days"]
    names = [f"{date.fromisoformat(d['date']):%a %d}" for d in days]
    estimated = [d["basis"] in ("estimated", "mixed") for d in days]
    volume = svg.bars(
        "daily-volume",
        f"{b['units'].capitalize()} a day: flagged for review and passed",
        names,
        [
            ("flagged", [d["flagged"] for d in days], svg.ORANGE),
            ("passed", [d["rows"] - d["flagged"] for d in days], svg.BLUE),
        ],
        fmt=lambda v: f"{v:,.0f}",
        hatched=estimated,
    )
    cost = svg.bars(
        "daily-cost",
        f"Cost a day ({cur}); lighter bars are estimated",
        names,
        [("cost", [max(d["cost"], 0.0) for d in days], svg.RED)],
        fmt=lambda v: f"{v:,.0f}",
        hatched=estimated,
    )
    rows = [
        [
            escape(n),
            count(d["rows"]),
            tag(d["basis"]),
            pct(d["realized_share"]) if d["rows"] else "",
            count(d["flagged"]),
            count(d["caught"]),
            count(d["missed"]),
            count(d["false_alarms"]),
            money(d["cost"], cur),
        ]
        for n, d in zip(names, days, strict=True)
    ]
    grid = table(
        [
            "day",
            escape(b["units"]),
            "basis",
            "labels matured",
            "flagged",
            "caught",
            "missed",
            "false alarms",
            "cost",
        ],
        rows,
    )
    return volume + cost + grid


def _operations(doc: Mapping[str, Any]) -> str:
    incidents = doc["incidents"]
    out = []
    if incidents:
        out.append(
            table(
                ["alert", "severity", "opened", "resolved", "what"],
                [
                    [
                        escape(
                            i["rule"].replace("_", " ")
                            + ("" if i["scope"] in ("dataset", i["rule"]) else f" {i['scope']}")
                        ),
                        escape(i["severity"]),
                        escape(str(i["opened_at"])[:16]),
                        escape(str(i["resolved_at"] or "open")[:16]),
                        escape(i["summary"]),
                    ]
                    for i in incidents
                ],
            )
        )
    else:
        out.append("<p>No incident was open this week.</p>")
    sent = sum(n for kind in doc["messages"].values() for n in kind.values())
    out.append(f"<p>{sent} alert message(s) queued this week.</p>")
    r = doc["review"]
    queued = (
        ", ".join(f"{n} {reason.replace('_', ' ')}" for reason, n in r["queued"].items()) or "none"
    )
    reviewed = ", ".join(f"{n} {state}" for state, n in r["reviewed"].items()) or "none"
    out.append(
        f"<h3>Review queue</h3><p>Queued this week: {escape(queued)}. Reviewed this week: "
        f"{escape(reviewed)}. Pending at the end of the week: {r['pending_at_end']}.</p>"
    )
    return "".join(out)


def _lifecycle(doc: Mapping[str, Any]) -> str:
    life = doc["lifecycle"]
    served = ", ".join(
        f"version {s['model_version']} ({s['variant'] or 'no variant'}): {count(s['rows'])}"
        for s in life["served"]
    )
    out = [f"<p>Served this week: {escape(served) or 'nothing'}.</p>"]
    for t in life["retrainings"]:
        outcome = (
            f"candidate registered as version {t['version']} (challenger)"
            if t["version"]
            else t["outcome"]
        )
        out.append(
            f"<p>Retraining started {escape(t['started_at'][:16].replace('T', ' '))} "
            f"({escape(t['trigger'])}: {escape(t['reason'])}): {escape(outcome)}.</p>"
        )
    if not life["retrainings"]:
        out.append("<p>Nothing was retrained this week.</p>")
    out.append(
        "<p>Shadow evaluation, A/B tests and promotions are not run by driftd yet: none "
        "to report.</p>"
    )
    return "".join(out)


def render(doc: Mapping[str, Any]) -> str:
    b = doc["business"]
    title = f"{doc['model']}: weekly report {doc['title']}"
    body = [
        f"<h1>{escape(title)}</h1>",
        f'<p class="muted">As of {escape(str(doc["as_of"])[:16])} UTC; {escape(b["unit"])} = one prediction; '
        f"costs per outcome in {escape(b['currency'])}: "
        + ", ".join(f"{k.upper()} {v:g}" for k, v in b["costs"].items())
        + (
            f" plus the {escape(b['value_column'])} of a missed {escape(b['positive'])}"
            if b["value_column"]
            else ""
        )
        + ".</p>",
        f'<p class="lead">{escape(doc["headline"])}</p>',
    ]
    if doc["volume"]["rows"]:
        body += [
            _kpis(doc),
            section("Error rates", _rates(doc)),
            section("Day by day", _days(doc)),
            section("What changed, and why", drivers(doc)),
            section("What if the threshold were different", threshold(doc)),
        ]
    body += [
        section("Alerts and review", _operations(doc)),
        section("Retraining, shadow and A/B tests", _lifecycle(doc)),
        section(
            "Caveats",
            '<ul class="caveats">'
            + "".join(f"<li>{escape(c)}</li>" for c in doc["caveats"])
            + "</ul>",
        ),
        f'<p class="muted">Every number is in the JSON twin: {escape(doc.get("files", {}).get("json", ""))}</p>',
    ]
    return (
        '<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8">'
        f"<title>{escape(title)}</title><style>{CSS}</style></head><body>"
        + "\n".join(body)
        + "</body></html>\n"
    )
