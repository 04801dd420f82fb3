"""The command line as an operator uses it: ingest, status, check, once."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
import yaml
from typer.testing import CliRunner

from driftd.app import App
from driftd.cli import app
from driftd.config import load
from driftd.jobs.statistics import Statistics

runner = CliRunner()


def prediction(i: int, hour: int = 10) -> dict:
    return {
        "id": f"p{i}",
        "ts": f"2026-11-28T{hour:02d}:{i % 60:02d}:00Z",
        "model_version": "1",
        "variant": "champion",
        "features": {"amount": 10.0 + i, "country": "DE"},
        "prediction": i % 2,
        "score": 0.25 if i % 2 == 0 else 0.75,
    }


@pytest.fixture
def workspace(tmp_path: Path, db_url: str) -> Path:
    (tmp_path / "logs").mkdir()
    lines = [json.dumps(prediction(i)) for i in range(30)]
    lines += [json.dumps(prediction(i, hour=11)).replace(f'"p{i}"', f'"q{i}"') for i in range(10)]
    lines.insert(5, "{not json")
    lines.insert(9, json.dumps({**prediction(99), "ts": "yesterday"}))
    (tmp_path / "logs" / "predictions.jsonl").write_text("\n".join(lines) + "\n")
    labels = [
        json.dumps({"id": f"p{i}", "label": i % 2, "ts": "2026-11-28T12:00:00Z"})
        for i in range(0, 30, 2)
    ]
    (tmp_path / "logs" / "labels.jsonl").write_text("\n".join(labels) + "\n")
    config = {
        "model": {"name": "m"},
        "sources": {
            "predictions": [{"paths": ["logs/predictions*.jsonl"]}],
            "labels": [{"paths": ["logs/labels*.jsonl"]}],
        },
        "schema": {"amount": "numeric", "country": "categorical"},
        "storage": {"url": db_url},
    }
    (tmp_path / "driftd.yaml").write_text(yaml.safe_dump(config))
    return tmp_path


def test_ingest_json_summary(workspace: Path) -> None:
    result = runner.invoke(app, ["ingest", "-c", str(workspace / "driftd.yaml"), "--json"])
    assert result.exit_code == 0, result.output
    summary = json.loads(result.stdout)
    assert summary["rows"] == 40 + 15
    assert summary["quarantined"] == 2
    preds = summary["sources"]["predictions"]
    assert preds["rows"] == 40 and preds["quarantined"] == {"bad_json": 1, "bad_ts": 1}
    assert summary["sources"]["labels"]["rows"] == 15
    assert summary["windows"] == {
        "2026-11-28T10:00:00+00:00": 30,
        "2026-11-28T11:00:00+00:00": 10,
    }
    again = runner.invoke(app, ["ingest", "-c", str(workspace / "driftd.yaml"), "--json"])
    assert json.loads(again.stdout)["rows"] == 0


def test_status_json_after_ingest(workspace: Path) -> None:
    cfg = str(workspace / "driftd.yaml")
    assert runner.invoke(app, ["ingest", "-c", cfg]).exit_code == 0
    result = runner.invoke(app, ["status", "-c", cfg, "--json"])
    assert result.exit_code == 0, result.output
    status = json.loads(result.stdout)
    assert status["counts"] == {"predictions": 40, "labels": 15, "quarantined": 2}
    assert status["ingestion"]["predictions"]["quarantined"] == {"bad_json": 1, "bad_ts": 1}
    [checkpoint] = status["ingestion"]["predictions"]["checkpoints"]
    assert checkpoint["position"] == (workspace / "logs" / "predictions.jsonl").stat().st_size
    assert checkpoint["line"] == 42
    windows = {w["start"]: w for w in status["windows"]}
    ten = windows["2026-11-28T10:00:00+00:00"]
    assert (ten["predictions"], ten["labelled"], ten["label_coverage"]) == (30, 15, 0.5)
    assert status["jobs"]["ingest"]["outcome"] == "ok"
    human = runner.invoke(app, ["status", "-c", cfg])
    assert human.exit_code == 0 and "bad_json 1" in human.stdout


def test_check_exit_codes(workspace: Path) -> None:
    cfg = str(workspace / "driftd.yaml")
    fresh = runner.invoke(app, ["check", "-c", cfg])
    assert fresh.exit_code == 1 and "schema is at revision none" in fresh.stdout
    App(load(cfg)).open().close()  # migrated, nothing ingested yet
    never = runner.invoke(app, ["check", "-c", cfg])
    assert never.exit_code == 1 and "ingest has never completed" in never.stdout
    assert runner.invoke(app, ["once", "-c", cfg]).exit_code == 0
    healthy = runner.invoke(app, ["check", "-c", cfg])
    assert healthy.exit_code == 0, healthy.stdout
    # an hour later, with no ingest since, the same store is unhealthy
    with App(load(cfg)) as application:
        later = datetime.now(UTC) + timedelta(hours=1)
        problems = application.health(now=later)
    assert any("last successful ingest finished" in p for p in problems)


def test_check_reports_an_unreachable_database(tmp_path: Path) -> None:
    config = {
        "model": {"name": "m"},
        "sources": {"predictions": [{"paths": ["*.jsonl"]}]},
        "storage": {"url": "postgresql://driftd:s3cret@127.0.0.1:1/none"},
    }
    (tmp_path / "driftd.yaml").write_text(yaml.safe_dump(config))
    result = runner.invoke(app, ["check", "-c", str(tmp_path / "driftd.yaml")])
    assert result.exit_code == 1
    assert "does not answer" in result.stdout
    assert "s3cret" not in result.output


def test_once_json(workspace: Path) -> None:
    result = runner.invoke(app, ["once", "-c", str(workspace / "driftd.yaml"), "--json"])
    assert result.exit_code == 0, result.output
    out = json.loads(result.stdout)
    assert out["ingest"]["outcome"] == "ok"
    assert out["ingest"]["summary"]["rows"] == 55


def test_help_lists_the_commands() -> None:
    result = runner.invoke(app, ["--help"])
    for command in ("init", "run", "once", "ingest", "status", "check", "demo"):
        assert command in result.stdout


def test_a_failing_job_makes_the_daemon_unhealthy_without_stopping_the_others(
    workspace: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    cfg = workspace / "driftd.yaml"
    config = yaml.safe_load(cfg.read_text())
    (workspace / "ref.csv").write_text("amount,country\n" + "12.5,DE\n30.0,FR\n" * 50)
    config["reference"] = {"path": "ref.csv"}
    cfg.write_text(yaml.safe_dump(config))

    def broken(self: object, context: object) -> None:
        raise OSError("disk full while writing missing.csv")

    monkeypatch.setattr(Statistics, "run", broken)
    result = runner.invoke(app, ["once", "-c", str(cfg), "--json"])
    assert result.exit_code == 1
    out = json.loads(result.stdout)
    assert out["ingest"]["outcome"] == "ok" and out["ingest"]["summary"]["rows"] == 55
    assert out["statistics"]["outcome"] == "failed"
    assert out["alerts"]["outcome"] == "ok"  # the jobs after it still ran
    check = runner.invoke(app, ["check", "-c", str(cfg)])
    assert check.exit_code == 1
    assert "last statistics run" in check.stdout and "missing.csv" in check.stdout
