"""Config: one file, validated at start, errors that name the key and the bad value."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import pytest
import yaml
from typer.testing import CliRunner

from driftd.cli import app
from driftd.config import load, parse
from driftd.errors import ConfigError
from driftd.jobs.ingest import Ingest
from monitor.records import FeatureType

MINIMAL = {"model": {"name": "fraud"}, "sources": {"predictions": [{"paths": ["logs/*.jsonl"]}]}}


def write(tmp_path: Path, data: dict | str) -> Path:
    path = tmp_path / "driftd.yaml"
    path.write_text(data if isinstance(data, str) else yaml.safe_dump(data))
    return path


def test_defaults_and_paths_resolve_against_the_config_file(tmp_path: Path) -> None:
    config = load(write(tmp_path, MINIMAL))
    assert config.model.task == "binary"
    assert config.windows.size == timedelta(hours=1)
    assert config.storage_url == f"sqlite:///{tmp_path.resolve() / 'driftd.db'}"
    assert config.sources.predictions[0].paths == [str(tmp_path.resolve() / "logs/*.jsonl")]
    assert config.sources.labels == []


def test_config_is_immutable(tmp_path: Path) -> None:
    config = load(write(tmp_path, MINIMAL))
    with pytest.raises(Exception, match="frozen"):
        config.model.name = "other"  # type: ignore[misc]


def test_full_example_from_init_parses(tmp_path: Path) -> None:
    result = CliRunner().invoke(app, ["init", str(tmp_path)])
    assert result.exit_code == 0, result.output
    config = load(tmp_path / "driftd.yaml")
    assert config.model.name == "my-model"
    assert config.schedule.of("ingest", Ingest.schedule).interval == timedelta(minutes=5)
    again = CliRunner().invoke(app, ["init", str(tmp_path)])
    assert again.exit_code == 1 and "exists" in again.output


@pytest.mark.parametrize(
    ("change", "expected"),
    [
        ({"model": {"name": "fraud", "task": "cls"}}, "model.task: Input should be 'binary'"),
        ({"windows": {"size": "1 hour"}}, "windows.size: '1 hour' is not a duration"),
        ({"windows": {"size": "1500ms"}}, "windows.size"),
        ({"storage": {"url": "mysql://db/x"}}, "storage.url: must be a sqlite:/// or postgresql"),
        ({"schema": {"amount": "number"}}, "schema.amount: Input should be 'numeric'"),
        ({"schedule": {"ingest": {"cron": "61 * * * *"}}}, "schedule.ingest: cron '61 * * * *'"),
        ({"schedule": {"ingest": {}}}, "schedule.ingest: give exactly one of"),
        ({"ingest": {"chunk_rows": 0}}, "ingest.chunk_rows: Input should be greater than"),
        ({"sources": {"predictions": []}}, "sources.predictions: List should have at least 1"),
        (
            {"sources": {"predictions": [{"paths": ["a"], "format": "xml"}]}},
            "sources.predictions.0.format: Input should be 'jsonl', 'csv' or 'parquet' (got 'xml')",
        ),
        ({"modle": {"name": "typo"}}, "modle: Extra inputs are not permitted"),
        ({"schedule": {"ingets": {"interval": "5m"}}}, "schedule: no job named 'ingets'; jobs:"),
    ],
)
def test_bad_config_is_refused_naming_the_key(tmp_path: Path, change: dict, expected: str) -> None:
    path = write(tmp_path, {**MINIMAL, **change})
    with pytest.raises(ConfigError) as info:
        load(path)
    assert expected in str(info.value)
    assert str(path) in str(info.value)


def test_not_yaml_and_missing_file(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="not valid YAML"):
        load(write(tmp_path, "model: [unclosed"))
    with pytest.raises(ConfigError, match="expected a mapping"):
        load(write(tmp_path, "- a list"))
    with pytest.raises(ConfigError, match="cannot read config"):
        load(tmp_path / "nope.yaml")


def test_cli_refuses_bad_config_at_start_with_exit_2(tmp_path: Path) -> None:
    path = write(tmp_path, {**MINIMAL, "windows": {"size": "soon"}})
    for command in (["run"], ["once"], ["ingest"], ["status"], ["check"]):
        result = CliRunner().invoke(app, [*command, "-c", str(path)])
        assert result.exit_code == 2, (command, result.output)
        assert "windows.size" in result.output


def test_schema_from_config_and_mapping(tmp_path: Path) -> None:
    config = parse(
        {
            **MINIMAL,
            "schema": {"amount": "numeric", "country": "categorical"},
            "sources": {
                "predictions": [
                    {"paths": ["p.csv"], "format": "csv", "columns": {"id": "request_id"}}
                ]
            },
        },
        base=tmp_path,
    )
    assert config.schema_ == {"amount": FeatureType.NUMERIC, "country": FeatureType.CATEGORICAL}
    fields = config.fields_for(config.sources.predictions[0])
    assert fields.id == "request_id" and fields.ts == "ts"


def test_relative_sqlite_url_resolves_against_config_dir(tmp_path: Path) -> None:
    config = parse({**MINIMAL, "storage": {"url": "sqlite:///db/d.db"}}, base=tmp_path)
    assert config.storage_url == f"sqlite:///{tmp_path.resolve() / 'db/d.db'}"


def test_an_unknown_performance_metric_is_refused_by_name(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"performance\.metrics: unknown metric\(s\) \['auc'\]"):
        parse({**MINIMAL, "performance": {"metrics": ["roc_auc", "auc"]}}, base=tmp_path)


def test_a_slack_channel_without_the_token_is_refused(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("SLACK_BOT_TOKEN", raising=False)
    monkeypatch.setenv("SLACK_WEBHOOK_URL", "https://hooks.slack.example/services/T0/B0/x")
    cfg = write(tmp_path, {**MINIMAL, "alerts": {"slack": {"channel": "#ml-alerts"}}})
    for command in (["once"], ["check"], ["alerts", "test"]):
        refused = CliRunner().invoke(app, [*command, "-c", str(cfg)])
        assert refused.exit_code == 2, refused.output
        assert "alerts.slack.channel" in refused.stderr and "SLACK_BOT_TOKEN" in refused.stderr
    assert not (tmp_path / "driftd.db").exists()  # refused before touching anything


def test_secrets_in_the_file_are_refused_without_being_repeated(tmp_path: Path) -> None:
    token = "xoxb-SECRET-4f1d9c2b7a"
    cfg = write(tmp_path, {**MINIMAL, "secrets": {"slack_bot_token": token}})
    refused = CliRunner().invoke(app, ["check", "-c", str(cfg)])
    assert refused.exit_code == 2
    assert "secrets: secrets are read from the environment" in refused.stderr
    assert "SLACK_BOT_TOKEN" in refused.stderr and token not in refused.output
