"""The weekly report's numbers, recomputed independently from the stored rows of a
seeded week: counts, rates and intervals, money, per day, the threshold what-if, the
cost change by segment; regeneration; the summary through the alerts pipeline."""

from __future__ import annotations

import json
import math
from datetime import datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import numpy as np
import pandas as pd
import pytest
from report_seed import AS_OF, CAPACITY, COSTS, Seeded
from scipy.stats import binomtest, norm
from sklearn.isotonic import IsotonicRegression
from sqlalchemy import and_, create_engine, select

from driftd.report import generate, parse_week
from storage import schema

approx = pytest.approx


def stored_rows(url: str, start: datetime, end: datetime) -> pd.DataFrame:
    """Predictions of [start, end) with their labels, read with plain SQL."""
    p, lab = schema.predictions, schema.labels
    engine = create_engine(url)
    try:
        with engine.connect() as conn:
            rows = conn.execute(
                select(p.c.ts, p.c.score, p.c.prediction, p.c.features, lab.c.label)
                .select_from(p.outerjoin(lab, and_(lab.c.id == p.c.id, lab.c.model == p.c.model)))
                .where(p.c.ts >= start, p.c.ts < end)
            ).all()
    finally:
        engine.dispose()
    out = pd.DataFrame(
        {
            "ts": [schema.TS.process_result_value(r.ts, engine.dialect) for r in rows],
            "score": [r.score for r in rows],
            "flagged": [json.loads(r.prediction) == 1 for r in rows],
            "label": [None if r.label is None else json.loads(r.label) for r in rows],
            "amount": [json.loads(r.features)["amount"] for r in rows],
            "channel": [json.loads(r.features)["channel"] for r in rows],
        }
    )
    return out


def iso(reference: pd.DataFrame) -> IsotonicRegression:
    model = IsotonicRegression(out_of_bounds="clip", y_min=0.0, y_max=1.0)
    return model.fit(reference["score"], reference["is_fraud"])


def probabilities(frame: pd.DataFrame, reference: pd.DataFrame) -> np.ndarray:
    """Label where matured (2 days), else the isotonic calibration of the score."""
    matured = np.array(
        [
            lab is not None and ts + timedelta(days=2) <= AS_OF
            for lab, ts in zip(frame["label"], frame["ts"], strict=True)
        ]
    )
    q = iso(reference).predict(frame["score"].to_numpy())
    q[matured] = [float(lab) for lab, m in zip(frame["label"], matured, strict=True) if m]
    return q


def cells(q: np.ndarray, flagged: np.ndarray, amount: np.ndarray) -> dict[str, float]:
    tp, fp = float(q[flagged].sum()), float((1 - q[flagged]).sum())
    fn, tn = float(q[~flagged].sum()), float((1 - q[~flagged]).sum())
    missed = float((q[~flagged] * (COSTS["fn"] + amount[~flagged])).sum())
    cost = COSTS["tp"] * tp + COSTS["fp"] * fp + missed + COSTS["tn"] * tn
    return {"tp": tp, "fp": fp, "fn": fn, "tn": tn, "cost": cost}


def wilson(k: float, n: float) -> tuple[float, float]:
    z = norm.ppf(0.975)
    p = k / n
    centre = (p + z * z / (2 * n)) / (1 + z * z / n)
    half = z / (1 + z * z / n) * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n))
    return centre - half, centre + half


def check_rates(rates: dict[str, Any], c: dict[str, float]) -> None:
    expected = {
        "fnr": (c["fn"], c["tp"] + c["fn"]),
        "fpr": (c["fp"], c["fp"] + c["tn"]),
        "precision": (c["tp"], c["tp"] + c["fp"]),
        "recall": (c["tp"], c["tp"] + c["fn"]),
    }
    for name, (k, n) in expected.items():
        lower, upper = wilson(k, n)
        got = rates[name]
        assert got["value"] == approx(k / n, rel=1e-9), name
        assert (got["lower"], got["upper"]) == approx((lower, upper), rel=1e-9), name


def test_every_number_is_recomputed_from_the_stored_rows(seeded: Seeded, db_url: str) -> None:
    week = parse_week("2026-W46", "Europe/Berlin")
    written = generate(seeded.app, week)
    doc = json.loads(written.json.read_text())
    reference = pd.read_csv(seeded.workspace / "reference.csv")
    rows = stored_rows(db_url, week.start, week.end)
    assert week.start == datetime(2026, 11, 8, 23, 0, tzinfo=ZoneInfo("UTC"))
    assert doc["volume"]["rows"] == len(rows) == 1400
    q = probabilities(rows, reference)
    flagged, amount = rows["flagged"].to_numpy(bool), rows["amount"].to_numpy(float)

    # realized where matured, estimated elsewhere; realized rates are plain Wilson on counts
    matured = np.array(
        [
            lab is not None and ts + timedelta(days=2) <= AS_OF
            for lab, ts in zip(rows["label"], rows["ts"], strict=True)
        ]
    )
    assert (
        doc["labels"]["realized"] == matured.sum()
        and doc["labels"]["estimated"] == (~matured).sum()
    )
    assert 0 < matured.sum() < len(rows)
    realized = cells(q[matured], flagged[matured], amount[matured])
    r = doc["performance"]["realized"]
    for name in ("tp", "fp", "fn", "tn"):
        assert r["counts"][name] == approx(realized[name], rel=1e-9)
    fn, tp = int(realized["fn"]), int(realized["tp"])
    ci = binomtest(fn, fn + tp).proportion_ci(confidence_level=0.95, method="wilson")
    assert (r["rates"]["fnr"]["lower"], r["rates"]["fnr"]["upper"]) == approx(
        (ci.low, ci.high), rel=1e-9
    )
    check_rates(r["rates"], realized)

    # the whole week: expected counts, rates and intervals, money
    week_cells = cells(q, flagged, amount)
    this = doc["performance"]["this_week"]
    assert this["basis"] == "mixed"
    for name in ("tp", "fp", "fn", "tn"):
        assert this["counts"][name] == approx(week_cells[name], rel=1e-9)
    check_rates(this["rates"], week_cells)
    assert doc["money"]["cost"] == approx(week_cells["cost"], rel=1e-9)
    days = doc["volume"]["days_with_data"]
    assert days == 7
    per_day = this["per_day"]
    assert per_day["flagged"] == approx(flagged.sum() / 7, rel=1e-9)
    assert per_day["missed"] == approx(week_cells["fn"] / 7, rel=1e-9)
    assert per_day["caught"] == approx(week_cells["tp"] / 7, rel=1e-9)
    assert per_day["false_alarms"] == approx(week_cells["fp"] / 7, rel=1e-9)
    assert per_day["cost"] == approx(week_cells["cost"] / 7, rel=1e-9)

    # local days (Berlin): volume and cost of each
    local = rows["ts"].map(lambda t: t.astimezone(ZoneInfo("Europe/Berlin")).date().isoformat())
    for day in doc["volume"]["days"]:
        mask = (local == day["date"]).to_numpy()
        assert day["rows"] == mask.sum()
        assert day["cost"] == approx(cells(q[mask], flagged[mask], amount[mask])["cost"], rel=1e-9)
        # matured misses against those the calibrated scores expected (the concept check)
        let_through = mask & matured & ~flagged
        check = day["calibration_check"]
        if let_through.any():
            expected = iso(reference).predict(rows["score"].to_numpy()[let_through]).sum()
            assert check["missed_expected"] == approx(expected, rel=1e-9)
            assert check["missed_realized"] == q[let_through].sum()
        else:
            assert check is None
        assert day["basis"] == (
            "realized"
            if matured[mask].all()
            else "estimated"
            if not matured[mask].any()
            else "mixed"
        )

    # the previous week and the change, split by channel
    before = stored_rows(db_url, week.previous().start, week.previous().end)
    q0 = probabilities(before, reference)
    prev = cells(q0, before["flagged"].to_numpy(bool), before["amount"].to_numpy(float))
    assert doc["money"]["previous_week"] == approx(prev["cost"], rel=1e-9)
    assert doc["money"]["change"] == approx(week_cells["cost"] - prev["cost"], rel=1e-9)
    segments = {s["segment"]: s for s in doc["drivers"]["segments"]["channel"]}
    for channel, s in segments.items():
        now_mask, then_mask = (
            (rows["channel"] == channel).to_numpy(),
            (before["channel"] == channel).to_numpy(),
        )
        c1 = cells(q[now_mask], flagged[now_mask], amount[now_mask])["cost"]
        c0 = cells(
            q0[then_mask],
            before["flagged"].to_numpy(bool)[then_mask],
            before["amount"].to_numpy(float)[then_mask],
        )["cost"]
        assert (s["cost"], s["base_cost"]) == approx((c1, c0), rel=1e-9)
        assert s["volume_effect"] + s["rate_effect"] == approx(c1 - c0, rel=1e-9)
    assert sum(s["change"] for s in segments.values()) == approx(doc["money"]["change"], rel=1e-9)
    assert doc["drivers"]["segments"]["channel"][0]["segment"] == "online"  # the drift's segment

    # the reference at this week's volume
    ref = cells(
        reference["is_fraud"].to_numpy(float),
        reference["prediction"].to_numpy() == 1,
        reference["amount"].to_numpy(float),
    )
    assert doc["money"]["reference_at_this_volume"] == approx(
        ref["cost"] / len(reference) * 1400, rel=1e-9
    )

    # the threshold what-if: brute force over the same thresholds
    scores = rows["score"].to_numpy(float)
    best: tuple[float, float] | None = None
    for point in doc["threshold"]["points"]:
        t = point["threshold"]
        c = cells(q, scores >= t, amount)
        assert point["cost_per_day"] == approx(c["cost"] / 7, rel=1e-9)
        assert point["flagged_per_day"] == approx((scores >= t).sum() / 7, rel=1e-9)
        if best is None or c["cost"] < best[1]:
            best = (t, c["cost"])
    assert best is not None and doc["threshold"]["best"]["threshold"] == best[0]
    within = [p for p in doc["threshold"]["points"] if p["flagged_per_day"] <= CAPACITY]
    assert doc["threshold"]["best_within_capacity"] == min(within, key=lambda p: p["cost_per_day"])


def test_regenerating_a_week_replaces_it_and_announces_it_once(seeded: Seeded) -> None:
    week = parse_week("2026-W46", "Europe/Berlin")
    first = generate(seeded.app, week)
    html, data = first.html.read_bytes(), first.json.read_bytes()
    again = generate(seeded.app, week)
    assert (again.html.read_bytes(), again.json.read_bytes()) == (html, data)
    assert sorted(p.name for p in first.html.parent.iterdir()) == [
        "fraud-2026-W46.html",
        "fraud-2026-W46.json",
    ]
    assert first.notified and not again.notified
    # the summary went through the alerts pipeline to the console sink, once
    assert len(seeded.messages) == 1
    message = seeded.messages[0].splitlines()
    assert message[0] == "driftd weekly report: fraud 2026-W46"
    assert len(message) == 7 and message[-1] == f"  see: detail report: {first.html}"
    assert message[1].startswith(
        "fraud 2026-W46 (Mon 09 Nov - Sun 15 Nov 2026, Europe/Berlin): 1,400 payments"
    )
    flagged = first.document["performance"]["this_week"]["per_day"]["flagged"]
    assert message[3].startswith(f"Per day: {flagged:,.0f} flagged for review (capacity 40), ")
    assert "more than last week; mostly in channel=online" in message[4]
    outbox = seeded.app.alert_repository.outbox()
    assert [(m.kind, m.status) for m in outbox] == [("report", "sent")]
    assert len(html) < 2_000_000


def test_the_weeks_retrainings_are_reported(seeded: Seeded) -> None:
    from storage.models import ModelRepository

    week = parse_week("2026-W46", "Europe/Berlin")
    repository = ModelRepository(seeded.app.store)
    inside = week.start + timedelta(days=2)
    pk = repository.start_training(
        "fraud", trigger="realized", reason="roc_auc 0.54 < 0.8", now=inside, data_end=inside
    )
    gates = {"gates": {"gates": [{"name": "champion:roc_auc", "candidate": 0.77,
                                  "reference": 0.76, "passed": True}]}}  # fmt: skip
    repository.finish_training(pk, outcome="registered", now=inside, version="2", details=gates)
    before = week.start - timedelta(days=3)  # the week before: not this week's
    repository.start_training("fraud", trigger="manual", reason="x", now=before, data_end=before)
    written = generate(seeded.app, week)
    [training] = written.document["lifecycle"]["retrainings"]
    assert (training["trigger"], training["outcome"], training["version"]) == (
        "realized",
        "registered",
        "2",
    )
    assert training["gates"][0]["name"] == "champion:roc_auc"
    html = written.html.read_text()
    assert "(realized: roc_auc 0.54 &lt; 0.8): candidate registered as version 2" in html
