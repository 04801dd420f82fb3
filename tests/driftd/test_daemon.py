"""The daemon: recorded runs, failures that do not stop it, clean and forced stops,
and a persistent schedule. Subprocesses are driven by files, never by sleeping."""

from __future__ import annotations

import pickle
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy import text

from driftd.daemon import Daemon
from storage.runs import RunLog
from storage.store import Store

SCRIPT = Path(__file__).with_name("daemon_script.py")
WAIT = 60.0  # generous upper bound for a condition; tests never wait for time itself


def wait_for(condition: Callable[[], bool], what: str, timeout: float = WAIT) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.02)


def start(
    url: str, workdir: Path, trigger: str = "interval", *options: str
) -> subprocess.Popen[bytes]:
    """The daemon script in a subprocess, its output going to WORKDIR/daemon.log."""
    with open(workdir / "daemon.log", "ab") as log:
        return subprocess.Popen(
            [sys.executable, str(SCRIPT), url, str(workdir), trigger, *options],
            stdout=log,
            stderr=subprocess.STDOUT,
        )


def log_of(workdir: Path) -> str:
    return (workdir / "daemon.log").read_text()


def outcomes(url: str, job: str) -> list[str]:
    store = Store(url)
    try:
        return [r.outcome for r in reversed(RunLog(store).recent(1000)) if r.job == job]
    finally:
        store.dispose()


def test_run_once_records_runs_and_a_failing_job_does_not_stop_the_others(
    store: Store,
) -> None:
    calls: list[str] = []

    def boom() -> None:
        calls.append("boom")
        raise ValueError("bad input")

    def ok() -> dict[str, int]:
        calls.append("ok")
        return {"rows": 3}

    daemon = Daemon(jobs={"boom": boom, "ok": ok}, triggers={}, runs=RunLog(store))
    results = daemon.run_once()
    assert calls == ["boom", "ok"]
    assert results["boom"] == ("failed", None)
    assert results["ok"] == ("ok", {"rows": 3})
    runs = RunLog(store)
    failed = runs.last("boom")
    assert failed is not None and failed.outcome == "failed"
    assert failed.error == "ValueError: bad input"
    assert failed.finished_at is not None and failed.finished_at >= failed.started_at
    done = runs.last("ok")
    assert done is not None and done.summary == {"rows": 3}


def test_first_signal_lets_the_running_job_finish_and_starts_no_new_one(
    sqlite_url: str, tmp_path: Path
) -> None:
    proc = start(sqlite_url, tmp_path)
    try:
        wait_for(lambda: (tmp_path / "started-1").exists(), "the first gate run")
        proc.send_signal(signal.SIGTERM)
        wait_for(lambda: "stopping" in log_of(tmp_path), "the stop request to be logged")
        (tmp_path / "release").touch()
        assert proc.wait(timeout=WAIT) == 0
    finally:
        proc.kill()
    log = log_of(tmp_path)
    assert (tmp_path / "done-1").exists()
    assert not (tmp_path / "started-2").exists(), "a new job started after the stop request"
    assert "driftd stopped" in log
    assert outcomes(sqlite_url, "gate") == ["ok"]
    # `boom` may have run (and failed) before, or been dropped from the queue; it never
    # stopped the daemon
    assert set(outcomes(sqlite_url, "boom")) <= {"failed", "skipped"}
    assert "cannot schedule new futures" not in log


def stored_next_run(url: str, job: str) -> float | None:
    store = Store(url)
    try:
        with store.connect() as conn:
            return conn.execute(
                text("SELECT next_run_time FROM apscheduler_jobs WHERE id = :id"), {"id": job}
            ).scalar()
    finally:
        store.dispose()


def test_first_signal_drops_the_job_queued_behind_the_running_one(
    sqlite_url: str, tmp_path: Path
) -> None:
    proc = start(sqlite_url, tmp_path, "queue")
    try:
        wait_for(lambda: (tmp_path / "started-1").exists(), "the long gate run")
        # `queued` fell due with `gate` and waits for the one worker: the scheduler has
        # moved its due time an hour on
        wait_for(
            lambda: (stored_next_run(sqlite_url, "queued") or 0) > time.time() + 1800,
            "`queued` to be handed to the executor",
        )
        proc.send_signal(signal.SIGTERM)
        wait_for(lambda: "stopping" in log_of(tmp_path), "the stop request to be logged")
        (tmp_path / "release").touch()  # the long job ends now
        released = time.monotonic()
        assert proc.wait(timeout=WAIT) == 0
        exited_after = time.monotonic() - released
    finally:
        proc.kill()
    log = log_of(tmp_path)
    assert not (tmp_path / "queued-started").exists(), "a queued job started after SIGTERM"
    assert outcomes(sqlite_url, "gate") == ["ok"]
    assert outcomes(sqlite_url, "queued") == ["skipped"]
    assert "job queued not started: driftd was stopping" in log
    assert "cannot schedule new futures" not in log
    # nothing else to wait for once the long job is done (the bound only catches a
    # daemon that runs the queue: a real queued job takes minutes)
    assert exited_after < 15, f"exited {exited_after:.1f}s after the long job ended"


def test_second_signal_exits_at_once_and_the_run_is_abandoned_at_next_start(
    sqlite_url: str, tmp_path: Path
) -> None:
    proc = start(sqlite_url, tmp_path)
    try:
        wait_for(lambda: (tmp_path / "started-1").exists(), "the first gate run")
        proc.send_signal(signal.SIGTERM)
        wait_for(lambda: "stopping" in log_of(tmp_path), "the stop request to be logged")
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=WAIT) == 1
    finally:
        proc.kill()
    assert not (tmp_path / "done-1").exists()
    assert "forced stop" in log_of(tmp_path)
    assert outcomes(sqlite_url, "gate") == ["running"]
    store = Store(sqlite_url)
    try:
        assert RunLog(store).abandon_dead() == 1
    finally:
        store.dispose()
    assert outcomes(sqlite_url, "gate") == ["abandoned"]


def test_a_run_missed_while_down_happens_once_at_restart(sqlite_url: str, tmp_path: Path) -> None:
    # first start: the yearly jobs are stored with their next due time
    proc = start(sqlite_url, tmp_path, "yearly")
    try:
        wait_for(lambda: "driftd running" in log_of(tmp_path), "the daemon to start")
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=WAIT) == 0
    finally:
        proc.kill()
    store = Store(sqlite_url)
    try:
        with store.transaction() as conn:
            stored = dict(
                conn.execute(text("SELECT id, next_run_time FROM apscheduler_jobs")).all()
            )
            assert set(stored) == {"gate", "boom"}
            next_year = datetime(datetime.now(UTC).year + 1, 1, 1, tzinfo=UTC).timestamp()
            assert stored["gate"] == pytest.approx(next_year)
            # the daemon was down when `gate` was due ten minutes ago (the job store keeps
            # the due time both in a column and in the pickled job state)
            missed = datetime.now(UTC) - timedelta(minutes=10)
            state = pickle.loads(
                conn.execute(
                    text("SELECT job_state FROM apscheduler_jobs WHERE id = 'gate'")
                ).scalar_one()
            )
            state["next_run_time"] = missed
            conn.execute(
                text(
                    "UPDATE apscheduler_jobs SET next_run_time = :t, job_state = :s "
                    "WHERE id = 'gate'"
                ),
                {"t": missed.timestamp(), "s": pickle.dumps(state)},
            )
    finally:
        store.dispose()
    (tmp_path / "release").touch()
    proc = start(sqlite_url, tmp_path, "yearly")
    try:
        wait_for(lambda: (tmp_path / "done-1").exists(), "the missed run")
        wait_for(lambda: outcomes(sqlite_url, "gate") == ["ok"], "the run to be recorded")
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=WAIT) == 0
    finally:
        proc.kill()
    assert not (tmp_path / "started-2").exists()
    assert outcomes(sqlite_url, "boom") == []
