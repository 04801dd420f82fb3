"""Contract of :class:`storage.runs.RunLog`: job run records that survive a restart."""

from __future__ import annotations

import os
import subprocess
import sys
from datetime import UTC, datetime, timedelta

from sqlalchemy import select

from storage import schema
from storage.runs import ABANDONED, FAILED, OK, RUNNING, RunLog
from storage.store import Store

T0 = datetime(2026, 11, 28, 10, 0, 0, 123_456, tzinfo=UTC)


def dead_pid() -> int:
    """The pid of a process that has exited and been reaped."""
    proc = subprocess.Popen([sys.executable, "-c", "pass"])
    proc.wait()
    return proc.pid


def insert_run(store: Store, *, host: str, pid: int | None, job: str = "ingest") -> int:
    t = schema.job_runs
    with store.transaction() as conn:
        result = conn.execute(
            t.insert().values(job=job, started_at=T0, outcome=RUNNING, host=host, pid=pid)
        )
        return int(result.inserted_primary_key[0])


def outcome_of(store: Store, pk: int) -> str:
    t = schema.job_runs
    with store.connect() as conn:
        return conn.execute(select(t.c.outcome).where(t.c.pk == pk)).scalar_one()


def test_start_and_finish_record_a_run(store: Store) -> None:
    log = RunLog(store)
    pk = log.start("ingest", now=T0)

    (run,) = log.running()
    assert (run.pk, run.job, run.started_at, run.outcome) == (pk, "ingest", T0, RUNNING)
    assert (run.finished_at, run.error, run.summary) == (None, None, None)
    assert (run.host, run.pid) == (log.host, os.getpid())

    end = T0 + timedelta(seconds=42, microseconds=1)
    log.finish(pk, OK, summary={"rows": 1200, "window": T0}, now=end)

    run = log.last("ingest")
    assert run is not None
    assert (run.pk, run.outcome, run.started_at, run.finished_at) == (pk, OK, T0, end)
    assert run.summary == {"rows": 1200, "window": T0.isoformat()}  # datetimes as RFC 3339
    assert run.finished_at is not None and run.finished_at.tzinfo is not None
    assert log.running() == []


def test_a_failed_run_keeps_its_error(store: Store) -> None:
    log = RunLog(store)
    pk = log.start("retrain", now=T0)
    log.finish(pk, FAILED, error="Traceback ...\nRetrainError: no labels", now=T0)

    run = log.last("retrain")
    assert run is not None
    assert (run.outcome, run.error) == (FAILED, "Traceback ...\nRetrainError: no labels")


def test_last_is_the_latest_run_of_the_job_with_that_outcome(store: Store) -> None:
    log = RunLog(store)
    assert log.last("ingest") is None
    a = log.start("ingest", now=T0)
    log.finish(a, OK, now=T0)
    b = log.start("ingest", now=T0 + timedelta(minutes=1))
    log.finish(b, FAILED, error="boom", now=T0)
    other = log.start("report", now=T0 + timedelta(minutes=2))

    assert log.last("ingest").pk == b  # type: ignore[union-attr]
    assert log.last("ingest", outcome=OK).pk == a  # type: ignore[union-attr]
    assert log.last("ingest", outcome=ABANDONED) is None
    assert log.last("report").pk == other  # type: ignore[union-attr]


def test_recent_is_newest_first_and_limited(store: Store) -> None:
    log = RunLog(store)
    pks = [log.start(f"job{i}", now=T0 + timedelta(minutes=i)) for i in range(5)]

    assert [r.pk for r in log.recent()] == pks[::-1]
    assert [r.pk for r in log.recent(limit=2)] == [pks[4], pks[3]]


def test_counts_per_job_and_outcome(store: Store) -> None:
    log = RunLog(store)
    for outcome in [OK, OK, FAILED]:
        log.finish(log.start("ingest", now=T0), outcome, now=T0)
    log.finish(log.start("report", now=T0), OK, now=T0)
    log.start("report", now=T0)

    assert log.counts() == {"ingest": {OK: 2, FAILED: 1}, "report": {OK: 1, RUNNING: 1}}


def test_abandon_dead_marks_only_runs_of_dead_processes_of_this_host(store: Store) -> None:
    log = RunLog(store)
    alive = log.start("ingest", now=T0)  # this process: still running
    dead = insert_run(store, host=log.host, pid=dead_pid())
    no_pid = insert_run(store, host=log.host, pid=None)
    elsewhere = insert_run(store, host=f"{log.host}-other", pid=dead_pid())
    finished = log.start("report", now=T0)
    log.finish(finished, OK, now=T0)
    now = T0 + timedelta(hours=1)

    assert log.abandon_dead(now=now) == 2

    assert outcome_of(store, alive) == RUNNING
    assert outcome_of(store, dead) == ABANDONED
    assert outcome_of(store, no_pid) == ABANDONED
    assert outcome_of(store, elsewhere) == RUNNING  # another host's pids mean nothing here
    assert outcome_of(store, finished) == OK
    run = log.last("ingest", outcome=ABANDONED)
    assert run is not None
    assert run.finished_at == now
    assert run.error
    assert {r.pk for r in log.running()} == {alive, elsewhere}
    assert log.abandon_dead(now=now) == 0  # idempotent
