"""The report in sentences: the manager's headline, the five Slack lines, the caveats.
Functions of the report document only (:func:`driftd.report.build.build`)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

GAP_SD = 3.0  # realized misses this many standard deviations from CBPE's: say so


def money(value: float | None, currency: str, *, signed: bool = False) -> str:
    if value is None:
        return "n/a"
    return f"{value:+,.0f} {currency}" if signed else f"{value:,.0f} {currency}"


def pct(value: float | None) -> str:
    return "n/a" if value is None else f"{value:.1%}"


def count(value: float | None) -> str:
    return "n/a" if value is None else f"{value:,.0f}"


def interval(rate: Mapping[str, Any]) -> str:
    if rate["value"] is None:
        return "n/a"
    return f"{pct(rate['value'])} [{pct(rate['lower'])}-{pct(rate['upper'])}]"


def basis_phrase(doc: Mapping[str, Any]) -> str:
    """Which days are realized and which estimated."""
    days = [d for d in doc["volume"]["days"] if d["rows"]]
    kinds = [d["basis"] for d in days]
    realized, estimated = kinds.count("realized"), kinds.count("estimated")
    mixed = len(kinds) - realized - estimated

    def n_days(n: int) -> str:
        return f"{n} day{'s' * (n != 1)}"

    parts = []
    if realized:
        parts.append(f"realized from matured labels for {n_days(realized)}")
    if mixed:
        parts.append(f"partly estimated for {n_days(mixed)}")
    if estimated:
        parts.append(f"CBPE-estimated for {n_days(estimated)}")
    return ", ".join(parts) or "no data"


def top_driver(doc: Mapping[str, Any]) -> Mapping[str, Any] | None:
    """The segment whose cost change most exceeds its share of the total change (its
    share of the volume times the total), in the total's direction: a segment that is
    most of the traffic does not win by being most of the traffic."""
    drivers = doc["drivers"]
    total = doc["money"]["change"]
    if total is None:
        total = doc["money"]["change_vs_reference"]
    rows = doc["volume"]["rows"]
    if total is None or not rows or not drivers["segments"]:
        return None
    candidates = [
        {**change, "column": column, "excess": change["change"] - total * change["rows"] / rows}
        for column, changes in drivers["segments"].items()
        for change in changes
        if change["change"] * total > 0
    ]
    return max(candidates, key=lambda c: abs(c["excess"]) * (c["excess"] * total > 0), default=None)


def driver_phrase(doc: Mapping[str, Any]) -> str:
    currency = doc["business"]["currency"]
    top = top_driver(doc)
    drifted = [f["column"] for f in doc["drivers"]["drifted_features"]["features"]][:4]
    parts = []
    if top is not None:
        parts.append(
            f"mostly in {top['column']}={top['segment']} "
            f"({money(top['change'], currency, signed=True)})"
        )
    if drifted:
        listed = drifted[0] if len(drifted) == 1 else f"{', '.join(drifted[:-1])} and {drifted[-1]}"
        parts.append(f"while {listed} drifted")
    return ", ".join(parts)


def _change(doc: Mapping[str, Any]) -> str:
    m, currency = doc["money"], doc["business"]["currency"]
    if m["change"] is not None:
        word = "more" if m["change"] >= 0 else "less"
        return f"{money(abs(m['change']), currency)} {word} than last week"
    if m["change_vs_reference"] is not None:
        word = "more" if m["change_vs_reference"] >= 0 else "less"
        return (
            f"{money(abs(m['change_vs_reference']), currency)} {word} than the reference's "
            "error rates would have cost at this volume (no previous week)"
        )
    return "with nothing to compare it to"


def headline(doc: Mapping[str, Any]) -> str:
    b = doc["business"]
    week = doc["performance"]["this_week"]
    if not doc["volume"]["rows"]:
        return f"No {b['units']} were scored in {doc['week']}."
    rates, day = week["rates"], week["per_day"]
    capacity = f" (capacity {count(b['review_capacity'])})" if b["review_capacity"] else ""
    drivers = driver_phrase(doc)
    return (
        f"At the current threshold ({b['threshold']:.2f}) the model missed "
        f"{pct(rates['fnr']['value'])} of {b['positive']}s and flagged "
        f"{pct(rates['fpr']['value'])} of {b['negative']}: on average {count(day['flagged'])} "
        f"{b['units']} a day went to manual review{capacity}, {count(day['missed'])} "
        f"{b['positive']}s a day were missed and {count(day['caught'])} caught. That cost "
        f"{money(doc['money']['cost'], b['currency'])} this week, {_change(doc)}"
        + (f", {drivers}" if drivers else "")
        + f". ({basis_phrase(doc)}.)"
    )


def slack_lines(doc: Mapping[str, Any]) -> list[str]:
    """Five lines of key numbers (the link is added by the message)."""
    b, v = doc["business"], doc["volume"]
    week = doc["performance"]["this_week"]
    if not v["rows"]:
        return [f"{doc['model']} {doc['week']}: no {b['units']} scored"]
    rates, day = week["rates"], week["per_day"]
    capacity = f" (capacity {count(b['review_capacity'])})" if b["review_capacity"] else ""
    what_if = _what_if(doc)
    drivers = driver_phrase(doc)
    return [
        f"{doc['model']} {doc['title']}: {count(v['rows'])} {b['units']} ({basis_phrase(doc)})",
        f"Missed {interval(rates['fnr'])} of {b['positive']}s, flagged {interval(rates['fpr'])} "
        f"of {b['negative']} at threshold {b['threshold']:.2f}",
        f"Per day: {count(day['flagged'])} flagged for review{capacity}, {count(day['caught'])} "
        f"{b['positive']}s caught, {count(day['missed'])} missed, {count(day['false_alarms'])} false alarms",
        f"Cost: {money(doc['money']['cost'], b['currency'])} this week, {_change(doc)}"
        + (f"; {drivers}" if drivers else ""),
        what_if,
    ]


def _what_if(doc: Mapping[str, Any]) -> str:
    b, t = doc["business"], doc["threshold"]
    best, capacity, cur = t["best"], b["review_capacity"], b["currency"]
    if best is None:
        return "Threshold what-if: no scores to compute it from"
    now = doc["performance"]["this_week"]["per_day"]["cost"]
    line = (
        f"Cheapest threshold {best['threshold']:.2f}: {money(best['cost_per_day'], cur)} a day "
        f"instead of {money(now, cur)}, {count(best['flagged_per_day'])} reviews a day"
    )
    if capacity is None:
        return line
    if best["flagged_per_day"] <= capacity:
        return line + f" (capacity {count(capacity)})"
    within = t["best_within_capacity"]
    if within is None:
        return line + f", over the capacity of {count(capacity)} at every threshold"
    return (
        line + f", over the capacity of {count(capacity)}; within it: {within['threshold']:.2f}, "
        f"{money(within['cost_per_day'], cur)} a day"
    )


def caveats(doc: Mapping[str, Any]) -> list[str]:
    """What the reader must know before trusting the numbers."""
    b, labels, v = doc["business"], doc["labels"], doc["volume"]
    out = []
    if labels["estimated"]:
        share = labels["estimated"] / v["rows"]
        out.append(
            f"{count(labels['estimated'])} {b['units']} ({share:.0%}) have no matured label yet "
            f"(labels mature {labels['label_delay_hours']:.0f} h after the prediction): their "
            "outcomes are CBPE estimates from the calibrated scores, marked 'estimated'."
        )
    if labels["unknown"]:
        out.append(
            f"{count(labels['unknown'])} {b['units']} have neither a matured label nor a score "
            "that can be calibrated: they are left out and the others scaled up to the volume."
        )
    checks = [(d["date"], d["calibration_check"]) for d in v["days"] if d["calibration_check"]]
    off = [
        (day, c)
        for day, c in checks
        if c["gap_in_sd"] is not None and abs(c["gap_in_sd"]) >= GAP_SD
    ]
    if off:
        day, c = off[-1]  # the latest: the closest to the estimated days
        direction = "too optimistic" if c["gap_in_sd"] > 0 else "too pessimistic"
        out.append(
            f"On {day} (matured), {count(c['missed_realized'])} of the {count(c['rows'])} "
            f"{b['units']} the model let through were {b['positive']}s where the calibrated "
            f"scores expected {count(c['missed_expected'])}: the scores no longer mean what they "
            f"did on the reference (concept drift), so estimated figures are probably {direction}"
            + (f" (also on {', '.join(d for d, _ in off[:-1])})" if len(off) > 1 else "")
            + "."
        )
    empty = [d["date"] for d in v["days"] if not d["rows"]]
    if empty and v["rows"]:
        out.append(
            f"No {b['units']} on {', '.join(empty)}: per-day figures are averages over the "
            f"{v['days_with_data']} days with data."
        )
    perf = doc["performance"]
    if perf["previous_week"] is None:
        out.append("No predictions in the previous week: changes are against the reference.")
    if perf["reference"] is None:
        out.append("No labelled reference with the model's outputs: no reference figures.")
    out.append(
        f"Intervals are {b['confidence']:.0%} Wilson score intervals on the week's counts; for "
        "estimated rows they leave out the risk that the calibration no longer holds."
    )
    return out
