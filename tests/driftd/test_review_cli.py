"""The review queue as a reviewer meets it: list, show, label, export, import, training set.

A workspace is ingested with ``driftd ingest``; the queue is then filled the way the
daemon fills it, by :meth:`monitor.review.ReviewQueue.refresh` on the window.
"""

from __future__ import annotations

import csv
import json
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import yaml
from typer.testing import CliRunner, Result

from driftd.app import App
from driftd.cli import app
from driftd.config import Config, load
from monitor.drift.profile import fit_profile
from monitor.records import FeatureType
from monitor.review import Candidate, ReviewQueue, ReviewSettings
from storage.review import ReviewRepository

runner = CliRunner()
WINDOW = datetime(2026, 11, 28, 10, tzinfo=UTC)

# id: (score, country, label); the served prediction is score >= 0.5
PREDICTIONS: dict[str, tuple[float, str, int | None]] = {
    "p0": (0.52, "DE", None),  # low confidence
    "p1": (0.45, "FR", None),  # low confidence
    "p2": (0.90, "DE", 0),  # a false positive (costs 5)
    "p3": (0.10, "FR", 1),  # a false negative (costs 50)
    "p4": (0.80, "DE", 1),  # right
    "p5": (0.20, "XX", None),  # a country the reference never had
    "p6": (0.05, "DE", None),  # nothing to review
}


@pytest.fixture
def workspace(tmp_path: Path, db_url: str) -> str:
    (tmp_path / "logs").mkdir()
    predictions = [
        {
            "id": rid,
            "ts": f"2026-11-28T10:{i:02d}:00Z",
            "features": {"amount": 10.0 * (i + 1), "country": country},
            "prediction": int(score >= 0.5),
            "score": score,
        }
        for i, (rid, (score, country, _)) in enumerate(PREDICTIONS.items())
    ]
    labels = [
        {"id": rid, "label": label, "ts": "2026-11-29T10:00:00Z"}
        for rid, (_, _, label) in PREDICTIONS.items()
        if label is not None
    ]
    for name, records in (("predictions", predictions), ("labels", labels)):
        text = "".join(json.dumps(r) + "\n" for r in records)
        (tmp_path / "logs" / f"{name}.jsonl").write_text(text)
    config = {
        "model": {"name": "fraud", "threshold": 0.5},
        "sources": {
            "predictions": [{"paths": ["logs/predictions*.jsonl"]}],
            "labels": [{"paths": ["logs/labels*.jsonl"]}],
        },
        "schema": {"amount": "numeric", "country": "categorical"},
        "storage": {"url": db_url},
        "performance": {"cost": {"fn": 50, "fp": 5, "currency": "EUR"}},
        "review": {"per_window": 10, "margin": 0.1},
    }
    path = tmp_path / "driftd.yaml"
    path.write_text(yaml.safe_dump(config))
    cfg = str(path)
    assert invoke("ingest", "-c", cfg).exit_code == 0
    refresh(load(cfg))
    return cfg


def settings_of(config: Config) -> ReviewSettings:
    """What the daemon builds from the config."""
    cost = config.performance.cost
    return ReviewSettings(
        task=config.model.task,
        threshold=config.model.threshold,
        cost_fn=cost.fn,
        cost_fp=cost.fp,
        currency=cost.currency,
        per_window=config.review.per_window,
        margin=config.review.margin,
        out_of_distribution=config.review.out_of_distribution,
    )


def refresh(config: Config) -> dict[str, Any]:
    reference = {
        "amount": np.linspace(0.0, 100.0, 50),
        "country": np.array(["DE", "FR"] * 25, dtype=object),
    }
    schema = {"amount": FeatureType.NUMERIC, "country": FeatureType.CATEGORICAL}
    profile = fit_profile(reference, schema, model_version="1")
    with App(config) as application:
        queue = ReviewQueue(ReviewRepository(application.store), settings_of(config))
        return queue.refresh(
            config.model.name, WINDOW, profile=profile, now=WINDOW + timedelta(days=2)
        )


def invoke(*args: str) -> Result:
    return runner.invoke(app, list(args))


def ok(*args: str) -> Result:
    result = invoke(*args)
    assert result.exit_code == 0, result.output
    return result


def training_set(cfg: str, path: Path) -> dict[str, dict[str, str]]:
    ok("training-set", "-c", cfg, "-o", str(path))
    with path.open(newline="") as f:
        return {row["id"]: row for row in csv.DictReader(f)}


def test_list_and_show(workspace: str) -> None:
    listed = json.loads(ok("review", "list", "-c", workspace, "--json").stdout)
    assert [(i["prediction_id"], i["reason"]) for i in listed] == [
        ("p3", "misclassified"),
        ("p2", "misclassified"),
        ("p5", "out_of_distribution"),
        ("p0", "low_confidence"),
        ("p1", "low_confidence"),
    ]
    human = ok("review", "list", "-c", workspace, "--reason", "misclassified").stdout
    assert "false negative: predicted 0, label 1 (score 0.1, threshold 0.5); costs 50 EUR" in human
    assert "p0" not in human

    shown = json.loads(ok("review", "show", "p2", "-c", workspace, "--json").stdout)
    assert shown["features"] == {"amount": 30.0, "country": "DE"}
    assert (shown["prediction"], shown["score"], shown["production_label"]) == (1, 0.9, 0)
    assert shown["item"]["reason"] == "misclassified"
    assert shown["item"]["why"]["error"] == "false_positive"
    assert [e["event"] for e in shown["item"]["history"]] == ["queued"]
    by_number = json.loads(
        ok("review", "show", str(shown["item"]["pk"]), "-c", workspace, "--json").stdout
    )
    assert by_number == shown
    text = ok("review", "show", "p5", "-c", workspace).stdout
    assert "country='XX' not in the reference" in text
    assert "country: 'XX'" in text and "queued" in text

    missing = invoke("review", "show", "nope", "-c", workspace)
    assert missing.exit_code == 1 and "no review item 'nope'" in missing.output
    bad = invoke("review", "list", "-c", workspace, "--state", "done")
    assert bad.exit_code == 2 and "--state: 'done'" in bad.output


def test_reviews_change_the_training_set(workspace: str, tmp_path: Path) -> None:
    before = training_set(workspace, tmp_path / "before.csv")
    assert list(before) == ["p2", "p3", "p4"]  # the labelled predictions
    assert before["p2"]["label"] == "0" and before["p2"]["source"] == "production"
    assert before["p2"]["holdout_eligible"] == "true"
    assert (before["p2"]["amount"], before["p2"]["country"]) == ("30.0", "DE")

    relabelled = ok("review", "label", "p2", "--as", "1", "--by", "ann", "-c", workspace)
    assert "relabelled 1 by ann" in relabelled.stdout
    ok("review", "confirm", "p3", "--by", "bob", "-c", workspace)
    ok("review", "label", "p0", "--as", "0", "--by", "ann", "-c", workspace)  # unlabelled

    after = training_set(workspace, tmp_path / "after.csv")
    assert list(after) == ["p0", "p2", "p3", "p4"]
    p2 = after["p2"]
    assert (p2["label"], p2["source"], p2["review_state"]) == ("1", "review", "relabelled")
    assert (p2["reviewer"], p2["holdout_eligible"]) == ("ann", "false")
    assert p2["reviewed_at"].startswith("20")
    assert (after["p3"]["label"], after["p3"]["source"]) == ("1", "review")
    assert after["p3"]["review_state"] == "confirmed"
    assert (after["p0"]["label"], after["p0"]["source"]) == ("0", "review")
    assert after["p4"] == before["p4"]

    shown = json.loads(ok("review", "show", "p2", "-c", workspace, "--json").stdout)
    assert shown["item"]["new_label"] == 1  # "1" was read as JSON: the number 1
    ok("review", "discard", "p3", "--by", "cy", "-c", workspace)
    assert list(training_set(workspace, tmp_path / "last.csv")) == ["p0", "p2", "p4"]
    pending = json.loads(ok("review", "list", "-c", workspace, "--json").stdout)
    assert [i["prediction_id"] for i in pending] == ["p5", "p1"]
    every = json.loads(ok("review", "list", "-c", workspace, "--state", "all", "--json").stdout)
    assert len(every) == 5


def test_export_csv(workspace: str, tmp_path: Path) -> None:
    out = tmp_path / "queue.csv"
    result = ok(
        "review", "export", "--format", "csv", "-o", str(out), "--state", "all", "-c", workspace
    )
    assert "wrote 5 review items" in result.stdout
    with out.open(newline="") as f:
        rows = list(csv.DictReader(f))
    assert [r["prediction_id"] for r in rows] == ["p3", "p2", "p5", "p0", "p1"]
    p3 = rows[0]
    assert (p3["reason"], p3["state"], p3["prediction"], p3["production_label"]) == (
        "misclassified",
        "pending",
        "0",
        "1",
    )
    assert (p3["amount"], p3["country"], p3["score"]) == ("40.0", "FR", "0.1")
    bad = invoke("review", "export", "--format", "xml", "-o", str(out), "-c", workspace)
    assert bad.exit_code == 2


def test_label_studio_round_trip(workspace: str, tmp_path: Path) -> None:
    exported = tmp_path / "tasks.json"
    ok("review", "export", "--format", "label-studio", "-o", str(exported), "-c", workspace)
    tasks = json.loads(exported.read_text())
    assert [t["data"]["driftd_id"] for t in tasks] == ["p3", "p2", "p5", "p0", "p1"]
    p5 = tasks[2]
    assert p5["data"] == {
        "amount": 60.0,
        "country": "XX",
        "prediction": 0,
        "score": 0.2,
        "driftd_id": "p5",
    }
    assert p5["meta"]["reason"] == "out_of_distribution" and p5["id"] == p5["meta"]["driftd_item"]

    # what Label Studio exports after labelling: its own task ids, annotations with choices
    def annotated(task: dict[str, Any], ls_id: int, *annotations: dict[str, Any]) -> dict:
        return {"id": ls_id, "data": task["data"], "annotations": list(annotations)}

    def choice(value: str, at: str, cancelled: bool = False) -> dict[str, Any]:
        result = [{"type": "choices", "from_name": "label", "to_name": "item",
                   "value": {"choices": [value]}}]  # fmt: skip
        return {"id": at[-2:], "result": result, "was_cancelled": cancelled,
                "completed_by": 7, "updated_at": at}  # fmt: skip

    export = [
        annotated(tasks[0], 101, choice("1", "2026-12-01T10:00:01")),  # p3: = production label
        annotated(tasks[1], 102, choice("0", "2026-12-01T10:00:02")),  # p2: = production label
        annotated(tasks[2], 103, choice("0", "2026-12-01T10:00:03")),  # p5: = the prediction
        annotated(  # p0: the latest annotation says 0, the model said 1
            tasks[3], 104, choice("1", "2026-12-01T10:00:04"), choice("0", "2026-12-01T10:00:09")
        ),
        annotated(tasks[4], 105, choice("1", "2026-12-01T10:00:05", cancelled=True)),  # skipped
        {"id": 106, "data": {"driftd_id": "gone"}, "annotations": []},
        {"id": 107, "data": {"text": "not ours"}},
    ]
    path = tmp_path / "export.json"
    path.write_text(json.dumps(export))
    result = ok("review", "import", str(path), "--by", "ann", "-c", workspace)
    assert "p3: confirmed 1" in result.stdout
    assert "p2: confirmed 0" in result.stdout
    assert "p5: confirmed 0" in result.stdout
    assert "p0: relabelled 1 -> 0" in result.stdout
    assert "3 confirmed, 1 relabelled, 0 unchanged, 3 skipped" in result.stdout
    assert "skipped task 105 (p1): no label chosen" in result.output
    assert "skipped task 106 (gone): no such review item" in result.output
    assert "skipped task 107 (None): no data.driftd_id" in result.output

    p0 = json.loads(ok("review", "show", "p0", "-c", workspace, "--json").stdout)["item"]
    assert (p0["state"], p0["new_label"], p0["reviewer"]) == ("relabelled", 0, "ann")
    note = p0["history"][-1]["note"]
    assert note == {"source": "label-studio", "task": 104, "id": "09", "completed_by": 7}
    again = ok("review", "import", str(path), "--by", "ann", "-c", workspace)
    assert "0 confirmed, 0 relabelled, 4 unchanged, 3 skipped" in again.stdout

    broken = tmp_path / "broken.json"
    broken.write_text("{")
    assert invoke("review", "import", str(broken), "-c", workspace).exit_code == 1


def test_refresh_is_idempotent_and_help_lists_the_commands(workspace: str) -> None:
    again = refresh(load(workspace))
    assert (again["added"], again["upgraded"]) == (0, 0)
    assert again["candidates"] == {
        "misclassified": 2,
        "out_of_distribution": 1,
        "low_confidence": 2,
    }
    text = ok("review", "--help").stdout
    for command in ("list", "show", "label", "confirm", "discard", "export", "import"):
        assert command in text
    assert "training-set" in ok("--help").stdout


def test_a_label_that_is_not_a_class_of_the_task_is_refused(workspace: str, tmp_path: Path) -> None:
    before = training_set(workspace, tmp_path / "before.csv")
    for typed in ("banana", "2", "[1]", "null"):
        refused = invoke("review", "label", "p2", "--as", typed, "--by", "ann", "-c", workspace)
        assert refused.exit_code == 1, refused.output
        assert "is not a class of this binary task; classes: 0, 1" in refused.stderr
    shown = json.loads(ok("review", "show", "p2", "-c", workspace, "--json").stdout)["item"]
    assert (shown["state"], shown["new_label"]) == ("pending", None)
    assert training_set(workspace, tmp_path / "after.csv") == before  # nothing landed
    # as people type it: true is the positive class 1
    assert (
        "relabelled 1 by ann"
        in ok("review", "label", "p2", "--as", "true", "--by", "ann", "-c", workspace).stdout
    )

    # a Label Studio export with a choice that is no class: skipped, not imported
    tasks = tmp_path / "tasks.json"
    ok("review", "export", "--format", "label-studio", "-o", str(tasks), "-c", workspace)
    p0 = next(t for t in json.loads(tasks.read_text()) if t["data"]["driftd_id"] == "p0")
    choice = {"type": "choices", "value": {"choices": ["maybe"]}}
    export = [{"id": 9, "data": p0["data"], "annotations": [{"id": 1, "result": [choice]}]}]
    (tmp_path / "export.json").write_text(json.dumps(export))
    imported = ok("review", "import", str(tmp_path / "export.json"), "-c", workspace)
    assert "skipped task 9 (p0): label 'maybe' is not a class" in imported.stderr
    assert "0 confirmed, 0 relabelled, 0 unchanged, 1 skipped" in imported.stdout


def test_an_unknown_reason_is_refused(workspace: str) -> None:
    refused = invoke("review", "list", "-c", workspace, "--reason", "bogus")
    assert refused.exit_code == 2
    assert refused.stderr.strip() == (
        "driftd: --reason: 'bogus' is not one of misclassified, out_of_distribution, low_confidence"
    )


def test_labels_come_from_the_reference_target_or_are_numbers(tmp_path: Path) -> None:
    """Multiclass with a reference target: its classes; regression: finite numbers."""
    (tmp_path / "reference.csv").write_text(
        "amount,kind\n" + "".join(f"{i},{k}\n" for i, k in enumerate(["cat", "dog", "owl"] * 5))
    )
    prediction = {"id": "r1", "ts": "2026-11-28T10:00:00Z", "features": {"amount": 3.0}}
    (tmp_path / "p.jsonl").write_text(json.dumps({**prediction, "prediction": "dog"}) + "\n")
    for task in ("multiclass", "regression"):
        config = {
            "model": {"name": f"m-{task}", "task": task},
            "sources": {"predictions": [{"paths": ["p.jsonl"]}]},
            "schema": {"amount": "numeric"},
            "reference": {"path": "reference.csv", "target": "kind"},
            "storage": {"url": f"sqlite:///{tmp_path / task}.db"},
        }
        path = tmp_path / f"{task}.yaml"
        path.write_text(yaml.safe_dump(config))
        cfg = str(path)
        ok("ingest", "-c", cfg)
        with App(load(cfg)) as application:  # an item, as the out-of-distribution rule queues it
            ReviewRepository(application.store).enqueue(
                f"m-{task}",
                WINDOW,
                [Candidate("r1", WINDOW, "out_of_distribution", 1.0, None, {})],
                per_window=5,
                now=WINDOW,
            )
        if task == "multiclass":
            refused = invoke("review", "label", "r1", "--as", "fish", "-c", cfg)
            assert refused.exit_code == 1
            assert "classes: 'cat', 'dog', 'owl'" in refused.stderr
            assert (
                "relabelled 'owl'" in ok("review", "label", "r1", "--as", "owl", "-c", cfg).stdout
            )
        else:
            for typed in ("owl", "nan", "true"):
                refused = invoke("review", "label", "r1", "--as", typed, "-c", cfg)
                assert refused.exit_code == 1 and "is not a finite number" in refused.stderr
            assert (
                "relabelled 12.5" in ok("review", "label", "r1", "--as", "12.5", "-c", cfg).stdout
            )
