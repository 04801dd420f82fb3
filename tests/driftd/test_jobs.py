"""The job interface as a team adding its own job uses it: one module and its config
section, installed as a ``driftd.jobs`` entry point; nothing of driftd edited."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import pytest
import yaml

from driftd.app import App
from driftd.config import JobSchedule, parse
from driftd.jobs import JobResult
from driftd.jobs.base import Job
from driftd.jobs.runner import JobRunner
from storage.errors import TransientStorageError

CLI = [sys.executable, "-c", "from driftd.cli import main; main()"]

TOY = """
from datetime import timedelta
from pathlib import Path

from pydantic import BaseModel, ConfigDict

from driftd.config import JobSchedule
from driftd.jobs import Job, JobResult, register


class ToySettings(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)
    greeting: str = "hello"
    marker: str


@register
class Toy(Job):
    name = "toy"
    schedule = JobSchedule(interval=timedelta(hours=6))
    section = "toy"
    settings = ToySettings

    def run(self, context):
        settings = context.config.section("toy")
        with Path(settings.marker).open("a") as fh:
            fh.write(settings.greeting + "\\n")
        return JobResult({"greeting": settings.greeting})
"""


@pytest.fixture
def plugin(tmp_path: Path) -> dict[str, str]:
    """An installed distribution whose entry point adds the `toy` job."""
    site = tmp_path / "site"
    (site / "toy_job-0.1.dist-info").mkdir(parents=True)
    (site / "toy_job.py").write_text(TOY)
    info = site / "toy_job-0.1.dist-info"
    (info / "METADATA").write_text("Metadata-Version: 2.1\nName: toy-job\nVersion: 0.1\n")
    (info / "entry_points.txt").write_text("[driftd.jobs]\ntoy = toy_job:Toy\n")
    path = os.pathsep.join(p for p in (str(site), os.environ.get("PYTHONPATH")) if p)
    return {**os.environ, "PYTHONPATH": path}


def write_config(tmp_path: Path, db_url: str, **extra: object) -> Path:
    (tmp_path / "logs").mkdir(exist_ok=True)
    (tmp_path / "logs" / "p.jsonl").write_text(
        '{"id": "a", "ts": "2026-11-02T10:00:00Z", "features": {"x": 1}, "prediction": 1}\n'
    )
    config = {
        "model": {"name": "m"},
        "sources": {"predictions": [{"paths": ["logs/*.jsonl"]}]},
        "schema": {"x": "numeric"},
        "storage": {"url": db_url},
        **extra,
    }
    path = tmp_path / "driftd.yaml"
    path.write_text(yaml.safe_dump(config))
    return path


def cli(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [*CLI, *args], env=env, capture_output=True, text=True, timeout=300, check=False
    )


def test_a_plugin_job_runs_once_is_recorded_and_shown(
    tmp_path: Path, db_url: str, plugin: dict[str, str]
) -> None:
    marker = tmp_path / "toy.out"
    cfg = write_config(
        tmp_path,
        db_url,
        toy={"greeting": "hi", "marker": str(marker)},
        schedule={"toy": {"interval": "2h"}},
    )
    once = cli(plugin, "once", "--json", "-c", str(cfg))
    assert once.returncode == 0, once.stderr
    results = json.loads(once.stdout)
    assert list(results) == ["ingest", "toy", "alerts"]  # the cycle's order
    assert results["toy"]["outcome"] == "ok"
    assert results["toy"]["summary"]["greeting"] == "hi"
    assert marker.read_text() == "hi\n"
    status = cli(plugin, "status", "--json", "-c", str(cfg))
    assert status.returncode == 0, status.stderr
    toy = json.loads(status.stdout)["jobs"]["toy"]
    assert toy["outcome"] == "ok" and toy["run"] > 0


def test_a_plugin_section_and_schedule_are_validated_by_name(
    tmp_path: Path, sqlite_url: str, plugin: dict[str, str]
) -> None:
    bad = write_config(tmp_path, sqlite_url, toy={"greting": "typo", "marker": "x"})
    refused = cli(plugin, "check", "-c", str(bad))
    assert refused.returncode == 2
    assert "toy.greting: Extra inputs are not permitted" in refused.stderr
    # without the plugin installed, its schedule names no job
    unknown = write_config(tmp_path, sqlite_url, schedule={"toy": {"interval": "1h"}})
    env = {k: v for k, v in plugin.items() if k != "PYTHONPATH"}
    env["PYTHONPATH"] = os.environ.get("PYTHONPATH", "")
    refused = cli(env, "check", "-c", str(unknown))
    assert refused.returncode == 2
    assert "schedule: no job named 'toy'; jobs: alerts, experiment, ingest" in refused.stderr


@pytest.fixture
def daemon_log(tmp_path: Path) -> Iterator[Path]:
    yield tmp_path / "daemon.log"


def test_the_daemon_schedules_a_plugin_job(
    tmp_path: Path, sqlite_url: str, plugin: dict[str, str], daemon_log: Path
) -> None:
    marker = tmp_path / "toy.out"
    cfg = write_config(tmp_path, sqlite_url, toy={"marker": str(marker)})
    with daemon_log.open("wb") as log:
        proc = subprocess.Popen(
            [*CLI, "run", "-c", str(cfg)], env=plugin, stdout=log, stderr=subprocess.STDOUT
        )
    try:
        deadline = time.monotonic() + 120
        while not (marker.exists() and marker.read_text()) and time.monotonic() < deadline:
            assert proc.poll() is None, daemon_log.read_text()
            time.sleep(0.1)  # polling a condition with a deadline, not waiting for time
        assert marker.read_text() == "hello\n", daemon_log.read_text()
    finally:
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=120) == 0, daemon_log.read_text()
    assert "jobs ingest, toy, alerts" in daemon_log.read_text()


class Flaky(Job):
    name = "flaky"
    schedule = JobSchedule(interval=timedelta(minutes=1))

    def __init__(self, failures: int) -> None:
        self.failures = failures
        self.calls = 0

    def run(self, context: App) -> JobResult:
        self.calls += 1
        if self.calls <= self.failures:
            raise TransientStorageError("connection lost")
        return JobResult({"calls": self.calls})


def small_app(tmp_path: Path) -> App:
    cfg = parse(
        {"model": {"name": "m"}, "sources": {"predictions": [{"paths": ["x"]}]}}, base=tmp_path
    )
    return App(cfg).open()


def test_transient_storage_errors_are_retried_with_backoff(tmp_path: Path) -> None:
    app = small_app(tmp_path)
    waits: list[float] = []
    runner = JobRunner(app, attempts=4, backoff=2.0, sleep=waits.append)
    summary = runner.run(Flaky(failures=2))
    assert summary["calls"] == 3 and waits == [2.0, 4.0]
    assert summary["alerts"]["delivery"] is not None  # the run's outcome was evaluated
    with pytest.raises(TransientStorageError):
        runner.run(Flaky(failures=4))
    assert waits == [2.0, 4.0, 2.0, 4.0, 8.0]
    incidents = app.alert_repository.incidents(model="m", state="open")
    assert [(i.rule, i.scope) for i in incidents] == [("job_failed", "flaky")]
    app.close()
