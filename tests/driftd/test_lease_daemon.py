"""Two daemons on one store: the second refuses or stands by, nothing runs twice, no
duplicate is counted, and the standby takes over when the holder is SIGKILLed."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import pytest
import yaml
from sqlalchemy import text
from typer.testing import CliRunner

from driftd.cli import app
from driftd.daemon import Daemon
from storage.lease import Lease
from storage.runs import RunLog
from storage.store import Store

runner = CliRunner()
SCRIPT = Path(__file__).with_name("daemon_script.py")
WAIT = 60.0  # generous upper bound for a condition; tests never wait for time itself


def wait_for(condition: Callable[[], bool], what: str, timeout: float = WAIT) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.02)


def spawn(args: list[str], workdir: Path) -> subprocess.Popen[bytes]:
    with open(workdir / "daemon.log", "ab") as log:
        return subprocess.Popen(args, stdout=log, stderr=subprocess.STDOUT)


def start(url: str, workdir: Path, *options: str) -> subprocess.Popen[bytes]:
    """daemon_script.py (see there) in a subprocess, logging to WORKDIR/daemon.log."""
    return spawn([sys.executable, str(SCRIPT), url, str(workdir), *options], workdir)


def log_of(workdir: Path) -> str:
    return (workdir / "daemon.log").read_text()


def runs_by_pid(url: str) -> list[tuple[int | None, str, str]]:
    store = Store(url)
    try:
        return [(r.pid, r.job, r.outcome) for r in reversed(RunLog(store).recent(10_000))]
    finally:
        store.dispose()


def overlapping_runs(url: str) -> list[tuple[int, int]]:
    """Pairs of finished runs whose times overlap (one daemon never overlaps itself)."""
    store = Store(url)
    try:
        runs = sorted(
            (r for r in RunLog(store).recent(10_000) if r.outcome in ("ok", "failed")),
            key=lambda r: r.started_at,
        )
    finally:
        store.dispose()
    return [
        (a.pk, b.pk)
        for a, b in zip(runs, runs[1:], strict=False)
        if a.finished_at is not None and a.finished_at > b.started_at
    ]


def test_second_daemon_refuses_and_a_standby_takes_over_after_sigkill(
    db_url: str, tmp_path: Path
) -> None:
    dirs = {name: tmp_path / name for name in ("first", "second", "standby")}
    for d in dirs.values():
        d.mkdir()
        (d / "release").touch()  # `gate` returns at once: the daemons run it every second
    Store(db_url).migrate()
    first = start(db_url, dirs["first"], "interval", "lease")
    procs = [first]
    try:
        wait_for(lambda: (dirs["first"] / "done-2").exists(), "the first daemon's runs")
        second = start(db_url, dirs["second"], "interval", "lease")
        procs.append(second)
        assert second.wait(timeout=WAIT) == 1
        refusal = log_of(dirs["second"])
        assert f"held by driftd run (pid {first.pid} on {socket.gethostname()}" in refusal
        assert "--standby" in refusal
        standby = start(db_url, dirs["standby"], "interval", "standby")
        procs.append(standby)
        wait_for(lambda: "standing by" in log_of(dirs["standby"]), "the standby to wait")
        assert f"pid {first.pid}" in log_of(dirs["standby"])
        first.send_signal(signal.SIGKILL)
        first.wait(timeout=WAIT)
        wait_for(lambda: "took over" in log_of(dirs["standby"]), "the standby to take over")
        wait_for(lambda: (dirs["standby"] / "done-2").exists(), "the standby's runs")
        standby.send_signal(signal.SIGTERM)
        assert standby.wait(timeout=WAIT) == 0
    finally:
        for proc in procs:
            proc.kill()
    assert not (dirs["second"] / "started-1").exists()
    pids = [pid for pid, _job, _outcome in runs_by_pid(db_url)]
    assert second.pid not in pids, "the refused daemon recorded a run"
    switch = pids.index(standby.pid)
    assert set(pids[:switch]) == {first.pid}, "the standby ran jobs before taking over"
    assert set(pids[switch:]) == {standby.pid}, "the killed daemon ran on after the takeover"
    assert overlapping_runs(db_url) == []


def test_a_standby_stops_on_sigterm_without_running_anything(
    sqlite_url: str, tmp_path: Path
) -> None:
    (tmp_path / "release").touch()
    store = Store(sqlite_url)
    store.migrate()
    try:
        with Lease(store, "m").hold("once"):
            standby = start(sqlite_url, tmp_path, "interval", "standby")
            try:
                wait_for(lambda: "standing by" in log_of(tmp_path), "the standby to wait")
                assert f"driftd once (pid {os.getpid()}" in log_of(tmp_path)
                standby.send_signal(signal.SIGTERM)
                assert standby.wait(timeout=WAIT) == 0
            finally:
                standby.kill()
        assert RunLog(store).recent() == []
    finally:
        store.dispose()
    assert "stopped while standing by" in log_of(tmp_path)


@pytest.mark.postgres
def test_a_daemon_that_lost_its_lease_to_another_starts_no_job(pg_url: str) -> None:
    store, other_store = Store(pg_url), Store(pg_url)
    store.migrate()
    other = Lease(other_store, "m")
    ran: list[str] = []

    def lose_the_lease() -> None:
        # what a restarted server or a dropped connection does; a standby takes over
        with store.connect() as conn:
            conn.execute(
                text(
                    "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                    "WHERE application_name = :name"
                ),
                {"name": f"driftd once pid {os.getpid()} on {socket.gethostname()}"[:63]},
            )
            conn.commit()
        wait_for(lambda: other.try_acquire("run"), "the other instance to take the lease")
        ran.append("lose")

    daemon = Daemon(
        jobs={"lose": lose_the_lease, "after": lambda: ran.append("after") and None},
        triggers={},
        runs=RunLog(store),
        lease=Lease(store, "m"),
    )
    try:
        results = daemon.run_once()
        assert ran == ["lose"], "a job started without the lease"
        assert results["after"] == ("skipped", None)
        skipped = RunLog(store).last("after")
        assert skipped is not None and skipped.outcome == "skipped"
        assert skipped.error is not None and "lost the lease of model 'm' to driftd run" in (
            skipped.error
        )
    finally:
        other.release()
        store.dispose()
        other_store.dispose()


def prediction(i: int) -> str:
    return json.dumps(
        {
            "id": f"p{i}",
            "ts": f"2026-11-28T10:{i % 60:02d}:00Z",
            "features": {"amount": 10.0 + i, "country": "DE"},
            "prediction": i % 2,
            "score": 0.8 if i % 2 else 0.2,
        }
    )


def driftd(config: Path, *args: str) -> list[str]:
    return [sys.executable, "-c", "from driftd.cli import main; main()", *args, "-c", str(config)]


@pytest.mark.slow  # three CLI processes importing the whole stack: ~9 s per backend
def test_two_driftd_run_on_one_store_ingest_once_and_count_no_duplicate(
    db_url: str, tmp_path: Path
) -> None:
    logs = tmp_path / "logs"
    logs.mkdir()
    (logs / "predictions-1.jsonl").write_text("\n".join(prediction(i) for i in range(50)) + "\n")
    config = tmp_path / "driftd.yaml"
    config.write_text(
        yaml.safe_dump(
            {
                "model": {"name": "fraud"},
                "sources": {"predictions": [{"paths": ["logs/predictions-*.jsonl"]}]},
                "schema": {"amount": "numeric", "country": "categorical"},
                "storage": {"url": db_url},
                "schedule": {"ingest": {"interval": "1s"}},
            }
        )
    )
    dirs = {name: tmp_path / name for name in ("first", "second", "standby")}
    for d in dirs.values():
        d.mkdir()

    def ingested() -> dict[str, object]:
        out = runner.invoke(app, ["status", "-c", str(config), "--json"])
        assert out.exit_code == 0, out.output
        status: dict[str, object] = json.loads(out.stdout)
        return status

    def predictions() -> object:
        return ingested()["counts"]["predictions"]  # type: ignore[index]

    first = spawn(driftd(config, "run"), dirs["first"])
    procs = [first]
    try:
        wait_for(lambda: predictions() == 50, "the first daemon's ingest")
        holder = f"held by driftd run (pid {first.pid} on {socket.gethostname()}"
        for command in ("once", "ingest"):
            refused = runner.invoke(app, [command, "-c", str(config)])
            assert refused.exit_code == 1 and holder in refused.output, refused.output
        second = spawn(driftd(config, "run"), dirs["second"])
        procs.append(second)
        assert second.wait(timeout=WAIT) == 1
        assert holder in log_of(dirs["second"]) and "--standby" in log_of(dirs["second"])
        standby = spawn(
            driftd(config, "run", "--standby", "--standby-poll", "0.1"), dirs["standby"]
        )
        procs.append(standby)
        wait_for(lambda: "standing by" in log_of(dirs["standby"]), "the standby to wait")
        first.send_signal(signal.SIGKILL)
        first.wait(timeout=WAIT)
        (logs / "predictions-2.jsonl").write_text(
            "\n".join(prediction(i) for i in range(50, 80)) + "\n"
        )
        wait_for(lambda: "took over" in log_of(dirs["standby"]), "the standby to take over")
        wait_for(lambda: predictions() == 80, "the standby's ingest of the new file")
        standby.send_signal(signal.SIGTERM)
        assert standby.wait(timeout=WAIT) == 0
    finally:
        for proc in procs:
            proc.kill()
    status = ingested()
    assert status["counts"] == {"predictions": 80, "labels": 0, "quarantined": 0}
    assert status["ingestion"]["predictions"]["duplicates"] == 0  # type: ignore[index]
    pids = {pid for pid, job, outcome in runs_by_pid(db_url) if job == "ingest"}
    assert pids == {first.pid, standby.pid}, "an ingest ran outside the lease holders"
    assert overlapping_runs(db_url) == []
