"""`driftd demo` (what `make run` runs): everything the stream produced is accounted for."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import pytest

from driftd.demo import data
from driftd.demo.run import LABEL_DELAY_HOURS, START, run_demo
from storage.errors import DriftdError


def test_demo_stores_every_good_record_and_quarantines_every_bad_one(tmp_path: Path) -> None:
    lines: list[str] = []
    status = run_demo(
        tmp_path / "ws",
        days=2,
        rows_per_hour=60,
        seed=3,
        drift_at_hour=24,
        drift_until_hour=36,
        out=lines.append,
    )

    # the same stream, replayed independently: what should have been stored
    model = data.train_baseline(data.make_reference(20_000, seed=3), seed=3)
    stream = data.ProductionStream(
        model=model,
        start=START,
        rows_per_hour=60,
        drift_at_hour=24,
        drift_until_hour=36,
        seed=3,
        label_delay_hours=LABEL_DELAY_HOURS,
    )
    batches = [stream.hour(h) for h in range(48)]
    predictions = sum(len(b.predictions) for b in batches)
    labels = sum(len(b.labels) for b in batches)
    malformed = sum(len(b.malformed) for b in batches)

    assert status["counts"] == {
        "predictions": predictions,
        "labels": labels,
        "quarantined": malformed,
    }
    ingestion = status["ingestion"]
    assert ingestion["predictions"]["duplicates"] == 60 // 20  # the demo's retried records
    assert ingestion["predictions"]["files"] == 2  # one log file per simulated day
    assert len(status["windows"]) == 8  # 48 hours in 6-hour windows
    assert all(w["predictions"] == 6 * 60 for w in status["windows"])
    # drift is found where the stream drifts (hours 24 to 36), and nowhere else
    drift_start, drift_end = START + timedelta(hours=24), START + timedelta(hours=36)
    for window in status["windows"]:
        stats = window["statistics"]
        drifted = {c["column"] for c in stats["drifted_columns"]}
        if not drift_start <= window["start"] < drift_end:
            assert not stats["dataset_drift"] and not drifted, window
            assert not stats["prediction_drift"] and not stats["multivariate_drift"], window
        else:
            assert stats["dataset_drift"] and {"amount", "country"} <= drifted, window
            assert "@score" in stats["prediction_drift"], window  # and the decisions, often
    reports = sorted(p for p in (tmp_path / "ws" / "reports").iterdir() if p.is_file())
    assert [r.name for r in reports] == [f"drift-card-fraud-{drift_start:%Y%m%dT%H%M}.html"]
    narration = "\n".join(lines)
    assert "production starts drifting" in narration
    # one grouped drift alert when it starts, its resolve after two clear windows
    alerts = [line for line in lines if line.startswith("  ALERT")]
    drift_alerts = [a for a in alerts if "dataset drift" in a]
    assert [a.split("]")[0] for a in drift_alerts] == ["  ALERT [critical", "  ALERT [resolved"]
    # status --json: per window, performance with coverage and intervals, review counts
    first, drifting = status["windows"][0], status["windows"][4]
    for window in (first, drifting):
        perf = window["performance"]
        assert perf["state"] in ("pending", "incomplete", "complete")
        assert 0 <= perf["coverage"] <= 1 and perf["estimated"]["roc_auc"]["value"] > 0.5
        auc = perf["realized"]["roc_auc"]
        assert auc["lower"] <= auc["value"] <= auc["upper"]
        assert sum(window["review"].values()) > 0
    realized = [w["performance"]["realized"]["roc_auc"]["value"] for w in (first, drifting)]
    assert realized[1] < realized[0] - 0.1  # the new fraud pattern defeats the model
    # the review queue holds misclassified transactions, and a review reaches training
    assert status["review"]["pending"] > 0 and "misclassified" in narration
    assert "source review" in narration
    assert "duplicates skipped" in narration
    # the weekly report of the replayed week, its summary through the console sink
    weekly = tmp_path / "ws" / "reports" / "weekly"
    assert sorted(p.name for p in weekly.iterdir()) == [
        "card-fraud-2026-W45.html",
        "card-fraud-2026-W45.json",
    ]
    assert any(
        line.startswith("  At the current threshold (0.50) the model missed ") for line in lines
    )
    summary = [
        a for a in alerts if a.startswith("  ALERT driftd weekly report: card-fraud 2026-W45")
    ]
    assert len(summary) == 1 and "frauds caught" in summary[0] and "EUR" in summary[0]
    assert "quarantined" in narration
    assert narration.rstrip().splitlines()[-2] == "health: ok"


def test_demo_refuses_a_directory_it_did_not_make(tmp_path: Path) -> None:
    (tmp_path / "precious.txt").write_text("keep me")
    with pytest.raises(DriftdError, match="not made by `driftd demo`"):
        run_demo(tmp_path, days=1, rows_per_hour=10, out=lambda _: None)
    assert (tmp_path / "precious.txt").read_text() == "keep me"
