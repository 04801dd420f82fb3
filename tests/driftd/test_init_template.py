"""``driftd init``: the example config documents every key a user can set, is valid as
written, and puts the workspace where the shipped systemd unit lets driftd write."""

from __future__ import annotations

import configparser
import types
import typing
from pathlib import Path
from typing import Any

import yaml
from pydantic import BaseModel
from typer.testing import CliRunner

from driftd.cli import app
from driftd.config import Config, JobSchedule, ScheduleConfig, load, parse
from driftd.jobs import registered

runner = CliRunner()
ROOT = Path(__file__).resolve().parents[2]


def models_in(annotation: Any) -> list[type[BaseModel]]:
    """The config sections an annotation holds (``X``, ``X | None``, ``list[X]``)."""
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return [annotation]
    if typing.get_origin(annotation) in (typing.Union, types.UnionType, list):
        return [m for arg in typing.get_args(annotation) for m in models_in(arg)]
    return []


def undocumented(
    section: type[BaseModel], written: Any, where: str, seen: set[type] | None = None
) -> list[str]:
    """Keys of ``section`` missing from the template's mapping ``written``; a kind of
    section (a source, a job's schedule) is documented once, where it first appears."""
    seen = set() if seen is None else seen
    if section in seen:
        return []
    if isinstance(written, list):
        return undocumented(section, written[0], where, seen) if written else [f"{where}[0]"]
    seen.add(section)
    missing = []
    if section is ScheduleConfig:  # schedule.<job> for every registered job
        jobs = {name: written.get(name) for name in registered()}
        written = {"misfire_grace": written.get("misfire_grace"), "jobs": jobs}
        missing += [f"{where}{name}" for name, value in jobs.items() if value is None]
        for value in filter(None, jobs.values()):
            missing += undocumented(JobSchedule, value, f"{where}ingest.", seen)
        return missing + (["misfire_grace"] if written["misfire_grace"] is None else [])
    for name, field in section.model_fields.items():
        if field.exclude:
            continue  # config_path, secrets: not in the file
        key = field.alias or name
        if not isinstance(written, dict) or key not in written:
            missing.append(f"{where}{key}")
            continue
        for model in models_in(field.annotation):
            if written[key] is not None:
                missing += undocumented(model, written[key], f"{where}{key}.", seen)
    return missing


def test_init_writes_a_valid_config_documenting_every_key(tmp_path: Path) -> None:
    result = runner.invoke(app, ["init", str(tmp_path)])
    assert result.exit_code == 0, result.output
    text = (tmp_path / "driftd.yaml").read_text()
    written = yaml.safe_load(text)
    missing = undocumented(Config, written, "")
    # a job runs on an interval or a cron expression: the template shows cron in a comment
    assert missing == ["schedule.ingest.cron"] and "{cron: " in text

    config = load(tmp_path / "driftd.yaml")  # what `driftd check` and `run` load
    assert config.alerts.slack.timeout == 15 and config.alerts.min_interval == 1.0
    assert config.reference is not None and config.reference.score_column is None
    # apart from what a user must set, the values shown are the defaults
    required = {
        "model": {"name": "my-model"},
        "reference": {"path": "data/reference.csv", "target": "label"},
        "sources": {
            "predictions": [{"paths": ["logs/predictions*.jsonl"]}],
            "labels": [{"paths": ["logs/labels*.jsonl"]}],
        },
        "workspace": "/var/lib/driftd",
    }
    shown, defaults = parse(written, base=tmp_path), parse(required, base=tmp_path)
    for name, job in registered().items():  # schedules: shown, each its job's default
        assert shown.schedule.of(name, job.schedule) == job.schedule, name
    assert shown.schedule.misfire_grace == defaults.schedule.misfire_grace
    assert shown.model_copy(update={"schedule": defaults.schedule}) == defaults


def test_the_template_workspace_is_the_systemd_units_state_directory(tmp_path: Path) -> None:
    unit = configparser.ConfigParser(strict=False, interpolation=None)
    unit.optionxform = str  # type: ignore[assignment,method-assign]
    unit.read(ROOT / "deploy" / "driftd.service")
    service = unit["Service"]
    state = Path("/var/lib") / service["StateDirectory"]
    assert runner.invoke(app, ["init", str(tmp_path / "etc")]).exit_code == 0
    config = load(tmp_path / "etc" / "driftd.yaml")
    assert config.workspace == state
    assert config.storage_url == f"sqlite:///{state}/driftd.db"
    assert str(state) in service["ReadWritePaths"].split()
    assert service["UMask"] == "0077" and service["StateDirectoryMode"] == "0700"
    assert service["ExecStart"].endswith("run -c /etc/driftd/driftd.yaml")


def test_init_writes_the_workspace_asked_for(tmp_path: Path) -> None:
    result = runner.invoke(app, ["init", str(tmp_path), "--workspace", "."])
    assert result.exit_code == 0 and "(workspace: .)" in result.stdout
    assert load(tmp_path / "driftd.yaml").workspace == tmp_path.resolve()
    odd = tmp_path / "odd"
    args = ["init", str(odd), "--workspace", "state: #1"]
    assert runner.invoke(app, args).exit_code == 0
    assert load(odd / "driftd.yaml").workspace == (odd / "state: #1").resolve()
