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
        "alerts": {"min_interval": 0},  # no pacing between console lines: nothing to wait for
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


def test_status_shows_the_windows_asked_for(workspace: Path) -> None:
    cfg = str(workspace / "driftd.yaml")
    assert runner.invoke(app, ["ingest", "-c", cfg]).exit_code == 0

    def starts(*options: str) -> list[str]:
        result = runner.invoke(app, ["status", "-c", cfg, "--json", *options])
        assert result.exit_code == 0, result.output
        return [w["start"] for w in json.loads(result.stdout)["windows"]]

    ten, eleven = "2026-11-28T10:00:00+00:00", "2026-11-28T11:00:00+00:00"
    assert starts() == [ten, eleven]
    assert starts("--windows", "1") == [eleven]
    assert starts("--since", "2026-11-28T10:00Z") == [ten, eleven]
    assert starts("--since", "2026-11-28T10:30") == [eleven]  # no offset: UTC
    assert starts("--since", "2026-11-28T06:00-05:00") == [eleven]
    assert starts("--since", "1000w") == [ten, eleven]  # a duration ago
    assert starts("--since", "1h") == []
    bad = runner.invoke(app, ["status", "-c", cfg, "--since", "soon"])
    assert bad.exit_code == 2 and "neither an ISO 8601 time" in bad.output
    assert runner.invoke(app, ["status", "-c", cfg, "--windows", "0"]).exit_code == 2


def test_quarantine_list_and_show(workspace: Path) -> None:
    cfg = str(workspace / "driftd.yaml")
    assert runner.invoke(app, ["ingest", "-c", cfg]).exit_code == 0
    log = workspace / "logs" / "predictions.jsonl"

    listed = runner.invoke(app, ["quarantine", "list", "-c", cfg, "--json"])
    assert listed.exit_code == 0, listed.output
    records = json.loads(listed.stdout)
    assert [(r["reason"], r["line"], r["source"]) for r in records] == [
        ("bad_ts", 10, "predictions"),
        ("bad_json", 6, "predictions"),
    ]
    bad_json = records[1]
    assert bad_json["path"] == str(log) and bad_json["excerpt"] == "{not json"
    assert bad_json["byte_offset"] == log.read_bytes().index(b"{not json")
    assert "yesterday" in records[0]["excerpt"] and records[0]["detail"]

    only = runner.invoke(app, ["quarantine", "list", "-c", cfg, "--reason", "bad_json"])
    assert only.exit_code == 0 and "bad_json" in only.stdout and "bad_ts" not in only.stdout
    assert f"{log}:6 (byte {bad_json['byte_offset']})" in only.stdout
    assert "{not json" in only.stdout
    one = runner.invoke(app, ["quarantine", "list", "-c", cfg, "--limit", "1", "--json"])
    assert [r["reason"] for r in json.loads(one.stdout)] == ["bad_ts"]
    recent = runner.invoke(app, ["quarantine", "list", "-c", cfg, "--since", "1h", "--json"])
    assert len(json.loads(recent.stdout)) == 2  # quarantined just now
    future = runner.invoke(app, ["quarantine", "list", "-c", cfg, "--since", "2999-01-01"])
    assert "no quarantined records" in future.stdout
    none = runner.invoke(app, ["quarantine", "list", "-c", cfg, "--source", "labels"])
    assert none.exit_code == 0 and "no quarantined records with source 'labels'" in none.stdout

    shown = runner.invoke(app, ["quarantine", "show", str(bad_json["pk"]), "-c", cfg, "--json"])
    assert shown.exit_code == 0 and json.loads(shown.stdout) == bad_json
    human = runner.invoke(app, ["quarantine", "show", str(bad_json["pk"]), "-c", cfg])
    assert "reason:  bad_json" in human.stdout and "excerpt: {not json" in human.stdout
    missing = runner.invoke(app, ["quarantine", "show", "999999", "-c", cfg])
    assert missing.exit_code == 1 and "no quarantined record 999999 of model 'm'" in missing.output


def test_quarantine_shows_excerpts_without_secrets_or_terminal_controls(workspace: Path) -> None:
    cfg = str(workspace / "driftd.yaml")
    token = "xoxb-1234567890-abcdefghij"
    env = {"SLACK_BOT_TOKEN": token}
    line = '{"id": "x1", "ts": "bad", "note": "' + token + ' \\u001b[2J", "name": "Zoë"}'
    (workspace / "logs" / "predictions-2.jsonl").write_text(line.replace("\\u001b", "\x1b") + "\n")
    assert runner.invoke(app, ["ingest", "-c", cfg], env=env).exit_code == 0

    listed = runner.invoke(app, ["quarantine", "list", "-c", cfg, "--json"], env=env)
    [record] = [r for r in json.loads(listed.stdout) if "predictions-2" in r["path"]]
    assert "Zoë" in record["excerpt"] and "[redacted]" in record["excerpt"]
    for command in (["list"], ["show", str(record["pk"])]):
        for options in ([], ["--json"]):
            result = runner.invoke(app, ["quarantine", *command, "-c", cfg, *options], env=env)
            assert result.exit_code == 0, result.output
            assert token not in result.output and "\x1b" not in result.output
            assert "Zoë" in result.output
