"""The weekly report as the daemon and a user run it: the job writes each week once, at
Monday 08:00 in the configured time zone; ``driftd report weekly`` and ``list``; the
``business`` section is validated by name."""

from __future__ import annotations

import json
import subprocess
import sys
from datetime import UTC, datetime
from pathlib import Path

import pytest
import yaml
from report_seed import Seeded

from driftd.config import parse
from driftd.errors import ConfigError
from driftd.report.weeks import last_due

CLI = [sys.executable, "-c", "from driftd.cli import main; main()"]


def at(text: str) -> datetime:
    return datetime.fromisoformat(text).replace(tzinfo=UTC)


@pytest.mark.parametrize("db_url", ["sqlite"], indirect=True)
def test_the_job_writes_each_week_once_at_monday_eight_local_time(seeded: Seeded) -> None:
    daemon = seeded.app.daemon()  # the job is registered and enabled by the config
    folder = seeded.workspace / "reports" / "weekly"

    # 07:59 in Berlin (06:59 UTC): this Monday's report is not due yet; last Monday's is
    seeded.now[0] = at("2026-11-16T06:59:00")
    outcome, summary = daemon.run_once(["weekly_report"])["weekly_report"]
    assert outcome == "ok" and summary["week"] == "2026-W45" and "skipped" not in summary
    assert summary["due"] == "2026-11-09T07:00:00+00:00"
    # 08:00 in Berlin: W46 is written, and its summary announced
    seeded.now[0] = at("2026-11-16T07:00:00")
    outcome, summary = daemon.run_once(["weekly_report"])["weekly_report"]
    assert (outcome, summary["week"], summary["notified"]) == ("ok", "2026-W46", True)
    assert len(summary["summary"]) == 5
    # an hour later: nothing to do
    seeded.now[0] = at("2026-11-16T08:00:00")
    outcome, summary = daemon.run_once(["weekly_report"])["weekly_report"]
    assert summary["skipped"] == "already written"
    assert sorted(p.name for p in folder.iterdir()) == [
        "fraud-2026-W45.html",
        "fraud-2026-W45.json",
        "fraud-2026-W46.html",
        "fraud-2026-W46.json",
    ]
    titles = [m.splitlines()[0] for m in seeded.messages]
    assert titles == [
        "driftd weekly report: fraud 2026-W45",
        "driftd weekly report: fraud 2026-W46",
    ]
    # a week without predictions is skipped
    seeded.now[0] = at("2026-11-30T08:00:00")
    outcome, summary = daemon.run_once(["weekly_report"])["weekly_report"]
    assert {k: v for k, v in summary.items() if k != "alerts"} == {
        "due": "2026-11-30T07:00:00+00:00",
        "week": "2026-W48",
        "skipped": "no predictions",
    }


def test_due_times_follow_daylight_saving_time() -> None:
    # 08:00 in Berlin is 06:00 UTC in summer and 07:00 UTC in winter
    assert last_due("0 8 * * 1", "Europe/Berlin", at("2026-10-20T12:00:00")) == at(
        "2026-10-19T06:00:00"
    )
    assert last_due("0 8 * * 1", "Europe/Berlin", at("2026-11-03T12:00:00")) == at(
        "2026-11-02T07:00:00"
    )
    assert last_due("0 8 * * 1", "UTC", at("2026-11-02T07:59:59")) == at("2026-10-26T08:00:00")


def test_the_business_section_is_validated_by_key(tmp_path: Path) -> None:
    data = {
        "model": {"name": "m"},
        "sources": {"predictions": [{"paths": ["x.jsonl"]}]},
        "business": {"timezone": "Mars/Olympus", "review_capacity": -1, "unti": "typo"},
    }
    with pytest.raises(ConfigError) as refused:
        parse(data, base=tmp_path)
    message = str(refused.value)
    assert "business.timezone: unknown time zone 'Mars/Olympus'" in message
    assert "business.review_capacity: Input should be greater than 0 (got -1)" in message
    assert "business.unti: Extra inputs are not permitted" in message


def run(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([*CLI, *args], capture_output=True, text=True, timeout=300, check=False)


@pytest.mark.parametrize("db_url", ["sqlite"], indirect=True)
def test_report_weekly_and_list_from_the_command_line(seeded: Seeded) -> None:
    cfg = str(seeded.config)
    done = run("report", "weekly", "-c", cfg, "--week", "2026-W46", "--json")
    assert done.returncode == 0, done.stderr
    doc = json.loads(done.stdout)
    assert doc["week"] == "2026-W46" and doc["volume"]["rows"] == 1400
    # run now, long after the week: every label that arrived has matured
    labels = doc["labels"]
    assert (
        labels["realized"] == labels["labelled"]
        and labels["estimated"] == 1400 - labels["labelled"]
    )
    assert "driftd weekly report: fraud 2026-W46" in done.stderr  # the console sink
    text = run("report", "weekly", "-c", cfg, "--week", "2026-W45", "--no-notify")
    assert text.returncode == 0, text.stderr
    assert text.stdout.startswith("At the current threshold (0.20) the model missed ")
    assert "driftd weekly report" not in text.stderr
    listed = run("report", "list", "-c", cfg)
    assert listed.returncode == 0, listed.stderr
    lines = listed.stdout.splitlines()
    assert [line.split(":")[0] for line in lines] == ["2026-W45", "2026-W46"]
    assert "1,400 rows" in lines[1] and "vs previous week" in lines[1]
    bad = run("report", "weekly", "-c", cfg, "--week", "2026-W60")
    assert bad.returncode == 2 and "--week '2026-W60'" in bad.stderr


def test_crontab_weekdays_count_from_sunday() -> None:
    monday_8 = at("2026-11-02T08:00:00")  # a Monday
    assert last_due("0 8 * * 1", "UTC", monday_8) == monday_8
    assert last_due("0 8 * * 0", "UTC", monday_8) == at("2026-11-01T08:00:00")
    assert last_due("0 8 * * 7", "UTC", monday_8) == at("2026-11-01T08:00:00")
    assert last_due("0 8 * * 1-5", "UTC", at("2026-11-07T12:00:00")) == at("2026-11-06T08:00:00")
    assert last_due("0 8 * * mon", "UTC", monday_8) == monday_8
    with pytest.raises(ValueError, match="days are 0-7"):
        last_due("0 8 * * 9", "UTC", monday_8)


@pytest.mark.parametrize("db_url", ["sqlite"], indirect=True)
def test_a_segment_that_is_no_feature_is_refused_by_name(seeded: Seeded) -> None:
    config = yaml.safe_load(seeded.config.read_text())
    config["business"]["segments"] = ["channel", "chanel"]
    seeded.config.write_text(yaml.safe_dump(config))
    done = run("report", "weekly", "-c", str(seeded.config), "--week", "2026-W46")
    assert done.returncode == 2
    assert "business: no feature 'chanel' in the schema" in done.stderr
