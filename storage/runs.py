"""Job run records: started, finished, outcome, so a restart finds abandoned runs."""

from __future__ import annotations

import os
import socket
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import orjson
from sqlalchemy import func, select, update

from storage import schema
from storage.store import Store

RUNNING, OK, FAILED, ABANDONED = "running", "ok", "failed", "abandoned"
SKIPPED = "skipped"  # due, but not started: the daemon was stopping or had lost its lease


@dataclass(frozen=True)
class Run:
    pk: int
    job: str
    started_at: datetime
    finished_at: datetime | None
    outcome: str
    error: str | None
    summary: dict[str, Any] | None
    host: str | None
    pid: int | None


def _run(row: Any) -> Run:
    return Run(
        row.pk,
        row.job,
        row.started_at,
        row.finished_at,
        row.outcome,
        row.error,
        orjson.loads(row.summary) if row.summary else None,
        row.host,
        row.pid,
    )


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


class RunLog:
    """Persistent records of job runs."""

    def __init__(self, store: Store) -> None:
        self.store = store
        self.host = socket.gethostname()

    def start(self, job: str, *, now: datetime | None = None) -> int:
        t = schema.job_runs
        with self.store.transaction(f"recording the start of job {job!r}") as conn:
            result = conn.execute(
                t.insert().values(
                    job=job,
                    started_at=now or datetime.now(UTC),
                    outcome=RUNNING,
                    host=self.host,
                    pid=os.getpid(),
                )
            )
            key = result.inserted_primary_key
            assert key is not None
            return int(key[0])

    def finish(
        self,
        pk: int,
        outcome: str,
        *,
        error: str | None = None,
        summary: dict[str, Any] | None = None,
        now: datetime | None = None,
    ) -> None:
        t = schema.job_runs
        with self.store.transaction("recording the end of a job run") as conn:
            conn.execute(
                update(t)
                .where(t.c.pk == pk)
                .values(
                    finished_at=now or datetime.now(UTC),
                    outcome=outcome,
                    error=error,
                    summary=None
                    if summary is None
                    else orjson.dumps(summary, default=str).decode(),
                )
            )

    def skip(self, job: str, reason: str, *, now: datetime | None = None) -> int:
        """Record a run that was due but not started, and why."""
        t = schema.job_runs
        now = now or datetime.now(UTC)
        with self.store.transaction(f"recording a skipped run of job {job!r}") as conn:
            result = conn.execute(
                t.insert().values(
                    job=job,
                    started_at=now,
                    finished_at=now,
                    outcome=SKIPPED,
                    error=reason,
                    host=self.host,
                    pid=os.getpid(),
                )
            )
            key = result.inserted_primary_key
            assert key is not None
            return int(key[0])

    def abandon_dead(self, *, now: datetime | None = None) -> int:
        """Mark runs left 'running' by a process of this host that no longer exists."""
        t = schema.job_runs
        with self.store.transaction("marking abandoned job runs") as conn:
            rows = conn.execute(
                select(t.c.pk, t.c.pid).where(t.c.outcome == RUNNING, t.c.host == self.host)
            ).all()
            dead = [r.pk for r in rows if r.pid is None or not _pid_alive(r.pid)]
            if dead:
                conn.execute(
                    update(t)
                    .where(t.c.pk.in_(dead))
                    .values(
                        outcome=ABANDONED,
                        finished_at=now or datetime.now(UTC),
                        error="the process running this job ended before it finished",
                    )
                )
            return len(dead)

    def running(self) -> list[Run]:
        t = schema.job_runs
        with self.store.connect("reading job runs") as conn:
            rows = conn.execute(select(t).where(t.c.outcome == RUNNING).order_by(t.c.pk))
            return [_run(r) for r in rows]

    def last(self, job: str, *, outcome: str | None = None) -> Run | None:
        t = schema.job_runs
        query = select(t).where(t.c.job == job)
        if outcome is not None:
            query = query.where(t.c.outcome == outcome)
        with self.store.connect("reading job runs") as conn:
            row = conn.execute(query.order_by(t.c.pk.desc()).limit(1)).first()
            return None if row is None else _run(row)

    def recent(self, limit: int = 20) -> list[Run]:
        t = schema.job_runs
        with self.store.connect("reading job runs") as conn:
            rows = conn.execute(select(t).order_by(t.c.pk.desc()).limit(limit))
            return [_run(r) for r in rows]

    def counts(self) -> dict[str, dict[str, int]]:
        """Runs per job and outcome."""
        t = schema.job_runs
        with self.store.connect("reading job runs") as conn:
            rows = conn.execute(
                select(t.c.job, t.c.outcome, func.count()).group_by(t.c.job, t.c.outcome)
            )
            out: dict[str, dict[str, int]] = {}
            for job, outcome, n in rows:
                out.setdefault(job, {})[outcome] = n
            return out
