"""The weekly report's numbers: one JSON-able document from the stored rows of a week,
the previous week and the reference (the HTML and the Slack summary render it).

Each prediction of the week gets ``q``, the probability that it is positive (realized
from its matured label, or estimated by CBPE: :mod:`driftd.report.rows`). Counts,
rates, money, the threshold what-if and the decomposition of the cost change all come
from ``q`` (see :mod:`monitor.business`).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from dataclasses import asdict
from datetime import datetime
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from driftd.report.rows import (
    ESTIMATED,
    REALIZED,
    UNKNOWN,
    Inputs,
    calibration_check,
    inputs,
    reference_rows,
    row_arrays,
)
from driftd.report.weeks import Week
from monitor.business import Outcomes, cost_curve, decompose, outcomes, segment_costs
from storage.report import ReportQueries

if TYPE_CHECKING:
    from driftd.app import App
    from monitor.results import WindowResults

FORMAT = 1
MAX_SEGMENTS = 12  # values per segment column shown; the rest are "other"


def _outcomes(rows: dict[str, np.ndarray], mask: np.ndarray, inp: Inputs) -> Outcomes:
    return outcomes(
        rows["q"][mask], rows["flagged"][mask], costs=inp.costs, miss_value=rows["miss_value"][mask]
    )


def summary_of(o: Outcomes, inp: Inputs, *, days: float | None = None) -> dict[str, Any]:
    """Counts (scaled to every row), rates with intervals, cost; per day when ``days``."""
    out: dict[str, Any] = {
        "rows": o.rows,
        "known": o.known,
        "counts": {cell: o.count(cell) for cell in ("tp", "fp", "fn", "tn")},
        "flagged": o.flagged,
        "cost": o.cost,
        "rates": {name: asdict(rate) for name, rate in o.rates(inp.confidence).items()},
    }
    if days:
        out["per_day"] = {
            "rows": o.rows / days,
            "flagged": o.flagged / days,
            "caught": o.count("tp") / days,
            "missed": o.count("fn") / days,
            "false_alarms": o.count("fp") / days,
            "cost": o.cost / days,
        }
    return out


def _basis(rows: dict[str, np.ndarray], mask: np.ndarray) -> tuple[str, float]:
    kinds = rows["basis"][mask]
    known = kinds != UNKNOWN
    realized = float((kinds == REALIZED).sum() / known.sum()) if known.any() else 0.0
    kind = REALIZED if realized == 1 else ESTIMATED if realized == 0 else "mixed"
    return (kind if known.any() else UNKNOWN), realized


def _segments(frame: pd.DataFrame, column: str) -> list[str]:
    values = ["(missing)" if v is None or v != v else str(v) for v in frame[column].tolist()]
    top = {v for v, _ in Counter(values).most_common(MAX_SEGMENTS)}
    return [v if v in top else "other" for v in values]


def _period_segments(
    frame: pd.DataFrame, rows: dict[str, np.ndarray], inp: Inputs
) -> dict[str, dict[str, tuple[float, float]]]:
    return {
        column: segment_costs(
            _segments(frame, column),
            rows["q"],
            rows["flagged"],
            costs=inp.costs,
            miss_value=rows["miss_value"],
        )
        for column in inp.segments
        if column in frame
    }


def build(app: App, week: Week, *, as_of: datetime) -> dict[str, Any]:
    """The report of ``week`` as known at ``as_of`` (see the module docstring)."""
    from driftd.report.narrative import caveats, headline, slack_lines

    inp = inputs(app)
    queries = ReportQueries(app.store)
    model = app.model
    wanted = sorted(
        {*inp.segments, *([inp.settings.value_column] if inp.settings.value_column else [])}
    )
    frame = queries.rows(model, week.start, week.end, wanted)
    rows = row_arrays(frame, inp, as_of)
    ts = frame["ts"]
    days = []
    for day in week.days:
        lo, hi = week.day_bounds(day)
        mask = ((ts >= lo) & (ts < hi)).to_numpy(dtype=bool) if len(frame) else np.zeros(0, bool)
        basis, share = _basis(rows, mask)
        o = _outcomes(rows, mask, inp)
        days.append(
            {
                "date": day.isoformat(),
                "rows": o.rows,
                "labelled": int(rows["labelled"][mask].sum()),
                "realized_share": share,
                "basis": basis if o.rows else None,
                "calibration_check": calibration_check(rows, inp, mask),
                "flagged": o.flagged,
                "caught": o.count("tp"),
                "missed": o.count("fn"),
                "false_alarms": o.count("fp"),
                "cost": o.cost,
            }
        )
    active = sum(1 for d in days if d["rows"])
    everything = np.ones(len(frame), dtype=bool)
    this = _outcomes(rows, everything, inp)
    basis, share = _basis(rows, everything)
    performance: dict[str, Any] = {
        "this_week": {**summary_of(this, inp, days=active or None), "basis": basis},
        "realized": summary_of(_outcomes(rows, rows["basis"] == REALIZED, inp), inp),
        "estimated": summary_of(_outcomes(rows, rows["basis"] == ESTIMATED, inp), inp),
    }
    previous_week = week.previous()
    before = queries.rows(model, previous_week.start, previous_week.end, wanted)
    before_rows = row_arrays(before, inp, as_of)
    before_days = len({t.astimezone(week_zone(week)).date() for t in before["ts"]})
    prev = _outcomes(before_rows, np.ones(len(before), dtype=bool), inp) if len(before) else None
    performance["previous_week"] = (
        None
        if prev is None
        else {
            **summary_of(prev, inp, days=before_days),
            "basis": _basis(before_rows, np.ones(len(before), bool))[0],
        }
    )
    reference = reference_rows(app, inp)
    ref = None
    if reference is not None:
        ref_frame, ref_rows = reference
        ref = outcomes(
            ref_rows["q"], ref_rows["flagged"], costs=inp.costs, miss_value=ref_rows["miss_value"]
        )
        performance["reference"] = {**summary_of(ref, inp), "basis": REALIZED}
    else:
        performance["reference"] = None

    # the cost change and where it comes from
    ref_cost = ref.cost / ref.rows * this.rows if ref is not None and ref.rows else None
    money = {
        "cost": this.cost,
        "previous_week": None if prev is None else prev.cost,
        "change": None if prev is None else this.cost - prev.cost,
        "reference_at_this_volume": ref_cost,
        "change_vs_reference": None if ref_cost is None else this.cost - ref_cost,
    }
    segments_now = _period_segments(frame, rows, inp)
    if prev is not None:
        baseline, base = "previous_week", _period_segments(before, before_rows, inp)
    elif reference is not None and ref is not None and ref.rows:
        factor = this.rows / ref.rows
        ref_segments = _period_segments(reference[0], {**reference[1]}, inp)
        baseline = "reference"
        base = {
            column: {v: (n * factor, c * factor) for v, (n, c) in values.items()}
            for column, values in ref_segments.items()
        }
    else:
        baseline, base = None, {}
    decomposition = (
        {
            column: [asdict(c) for c in decompose(values, base.get(column, {}))]
            for column, values in segments_now.items()
        }
        if baseline
        else {}
    )
    drivers = {
        "baseline": baseline,
        "segments": decomposition,
        "drifted_features": drifted_features(queries.window_results(model, week.start, week.end)),
    }

    # what if the threshold were different
    grid = [
        round(i / (inp.settings.thresholds + 1), 6) for i in range(1, inp.settings.thresholds + 1)
    ]
    curve = (
        cost_curve(
            rows["q"],
            rows["scores"],
            sorted({*grid, inp.threshold}),
            days=active or 1,
            costs=inp.costs,
            miss_value=rows["miss_value"],
            capacity=inp.settings.review_capacity,
        )
        if len(frame) and np.isfinite(rows["scores"]).any()
        else None
    )
    threshold = {
        "current": inp.threshold,
        "capacity": inp.settings.review_capacity,
        "points": [] if curve is None else [asdict(p) for p in curve.points],
        "best": None if curve is None else asdict(curve.best),
        "best_within_capacity": None
        if curve is None or curve.best_within_capacity is None
        else asdict(curve.best_within_capacity),
    }
    s = inp.settings
    document: dict[str, Any] = {
        "format": FORMAT,
        "model": model,
        "week": week.label,
        "title": week.title(),
        "start": week.start,
        "end": week.end,
        "timezone": week.timezone,
        "as_of": as_of,
        "business": {
            "unit": s.unit,
            "units": s.plural,
            "positive": s.positive,
            "negative": s.negative_name,
            "currency": inp.currency,
            "costs": asdict(inp.costs),
            "value_column": s.value_column,
            "review_capacity": s.review_capacity,
            "threshold": inp.threshold,
            "confidence": inp.confidence,
        },
        "volume": {"rows": len(frame), "days_with_data": active, "days": days},
        "labels": {
            "labelled": int(rows["labelled"].sum()),
            "realized": int((rows["basis"] == REALIZED).sum()),
            "estimated": int((rows["basis"] == ESTIMATED).sum()),
            "unknown": int((rows["basis"] == UNKNOWN).sum()),
            "realized_share": share,
            "label_delay_hours": inp.label_delay.total_seconds() / 3600,
        },
        "performance": performance,
        "money": money,
        "drivers": drivers,
        "threshold": threshold,
        "calibration_check": calibration_check(rows, inp),
        "incidents": queries.incidents(model, week.start, week.end),
        "messages": queries.messages(model, week.start, week.end),
        "review": queries.review(model, week.start, week.end),
        "lifecycle": lifecycle(frame, trainings(app, week)),
    }
    document["caveats"] = caveats(document)
    document["headline"] = headline(document)
    document["summary"] = slack_lines(document)
    return document


def week_zone(week: Week) -> Any:
    from zoneinfo import ZoneInfo

    return ZoneInfo(week.timezone)


def drifted_features(results: Sequence[WindowResults]) -> dict[str, Any]:
    """Per feature: in how many of the week's windows it drifted, and its worst score."""
    features: dict[str, dict[str, Any]] = {}
    dataset = 0
    for r in results:
        dataset += r.drift.drifted
        for c in r.drift.columns:
            if not c.drifted:
                continue
            f = features.setdefault(
                c.column, {"column": c.column, "windows": 0, "method": c.method, "max_score": None}
            )
            f["windows"] += 1
            if c.score is not None and (f["max_score"] is None or c.score > f["max_score"]):
                f["max_score"] = c.score
    ranked = sorted(features.values(), key=lambda f: (-f["windows"], f["column"]))
    return {"windows": len(results), "dataset_drift_windows": dataset, "features": ranked}


def trainings(app: App, week: Week) -> list[dict[str, Any]]:
    """The retrainings that started this week, with their outcome and gates."""
    from storage.models import ModelRepository

    out = []
    for t in ModelRepository(app.store).trainings(app.model, limit=1000):
        if not week.start <= t.started_at < week.end:
            continue
        gates = ((t.details or {}).get("gates") or {}).get("gates") or []
        out.append(
            {
                "started_at": t.started_at.isoformat(),
                "trigger": t.trigger,
                "reason": t.reason,
                "outcome": t.outcome,
                "version": t.version,
                "gates": [
                    {k: g.get(k) for k in ("name", "candidate", "reference", "passed")}
                    for g in gates
                ],
            }
        )
    return out


def lifecycle(frame: pd.DataFrame, retrainings: list[dict[str, Any]]) -> dict[str, Any]:
    """What served the week, and the retraining loop's outcomes: the week's trainings
    (recorded by the retrain job); shadow, A/B and promotions stay empty until driftd
    runs them."""
    served = Counter(zip(frame["model_version"].tolist(), frame["variant"].tolist(), strict=True))
    return {
        "served": [
            {"model_version": v, "variant": a, "rows": n}
            for (v, a), n in sorted(served.items(), key=lambda kv: -kv[1])
        ],
        "recorded": True,
        "retrainings": retrainings,
        "shadow": [],
        "ab_tests": [],
        "promotions": [],
        "promotions_estimated_impact": None,
    }
