"""The daemon: scheduled, recorded, idempotent jobs, and a clean stop.

:class:`Daemon` receives its jobs (name -> callable) and their triggers; it does not
build them. Every run of a job is recorded (started, finished, outcome, error) through
:class:`storage.runs.RunLog`; a failing job is logged with its traceback and the daemon
goes on. The scheduler is APScheduler 3's ``BlockingScheduler`` with a persistent
SQLAlchemy job store, ``coalesce``, ``max_instances=1`` and a misfire grace time, so
a run that was due while the daemon was down happens once when it comes back.

One instance per model and store: given a :class:`storage.lease.Lease`, :meth:`Daemon.run`
and :meth:`Daemon.run_once` hold it while they run jobs. A second instance refuses to
start, naming the holder, or with ``standby`` waits and takes over when the holder ends.
Before each job the daemon checks that it still holds the lease (a PostgreSQL lease
lives on a connection that can be lost); a job is never started without it.

Stopping: the first SIGTERM/SIGINT starts no new job and lets the running one finish;
runs already queued behind it are dropped and recorded as skipped. A second signal
exits at once (the interrupted run is marked abandoned at next start).
"""

from __future__ import annotations

import logging
import os
import signal
import threading
import traceback
from collections.abc import Callable, Mapping
from datetime import UTC, datetime, timedelta
from enum import StrEnum
from types import FrameType
from typing import Any

from apscheduler.executors.pool import ThreadPoolExecutor
from apscheduler.triggers.base import BaseTrigger

from storage.errors import DriftdError, StorageError
from storage.lease import POLL, Lease, LeaseHeldError
from storage.runs import FAILED, OK, SKIPPED, RunLog
from storage.store import WRITE

logger = logging.getLogger(__name__)

JobFn = Callable[[], Mapping[str, Any] | None]
JOBSTORE_TABLE = "apscheduler_jobs"

_current: Daemon | None = None


def _scheduled(name: str) -> None:
    """What the job store references (by text, so stored jobs survive restarts)."""
    daemon = _current
    if daemon is None:  # a stored job fired in a process that has no daemon
        logger.warning("job %s fired with no daemon running; skipped", name)
        return
    daemon.run_job(name)


class State(StrEnum):
    STOPPED = "stopped"
    STARTING = "starting"  # taking the lease (standing by, maybe), setting up
    RUNNING = "running"
    STOPPING = "stopping"


class _Executor(ThreadPoolExecutor):  # type: ignore[misc]
    """One worker thread. A job that falls due while the daemon stops is not queued but
    recorded as skipped (submitting after the pool's shutdown would raise)."""

    def __init__(self, daemon: Daemon) -> None:
        super().__init__(max_workers=1)
        self.daemon = daemon

    def submit_job(self, job: Any, run_times: list[datetime]) -> None:
        name = job.id
        if self.daemon.state is not State.RUNNING:
            self.daemon.skip(name, "driftd was stopping")
            return
        busy = self.daemon.running_job
        if busy is not None:
            logger.info("job %s is due; it waits for job %s to finish", name, busy)
        super().submit_job(job, run_times)


class Daemon:
    """Runs named jobs on triggers and records every run."""

    def __init__(
        self,
        *,
        jobs: Mapping[str, JobFn],
        triggers: Mapping[str, BaseTrigger],
        runs: RunLog,
        engine: Any = None,
        misfire_grace: timedelta = timedelta(minutes=30),
        lease: Lease | None = None,
        on_start: Callable[[], None] | None = None,
    ) -> None:
        unknown = set(triggers) - set(jobs)
        if unknown:
            raise DriftdError(f"triggers for unknown jobs: {', '.join(sorted(unknown))}")
        self.jobs = dict(jobs)
        self.triggers = dict(triggers)
        self.runs = runs
        self.engine = engine
        self.misfire_grace = misfire_grace
        self.lease = lease
        # called once the lease is held, before the first job (run and run_once): repairs
        # that must happen at start, e.g. MLflow's aliases behind driftd's alias log
        self.on_start = on_start
        self.state = State.STOPPED
        self.running_job: str | None = None
        self.lease_lost: str | None = None  # why the daemon stopped, when it lost the lease
        self._scheduler: Any = None
        self._lock = threading.Lock()
        self._signals = 0
        self._stopper: threading.Thread | None = None
        self._stop_requested = threading.Event()

    # -- running jobs -------------------------------------------------------------------

    def run_job(self, name: str) -> tuple[str, Mapping[str, Any] | None]:
        """Run one job now and record it; returns (outcome, summary). Never raises for a
        failure of the job itself."""
        job = self.jobs[name]
        with self._lock:  # jobs of one daemon never overlap (SQLite has one writer)
            if self.state is State.STOPPING:  # queued behind the job that was running
                self.skip(name, "driftd was stopping")
                return SKIPPED, None
            if not self._lease_held(name):
                return SKIPPED, None
            self.running_job = name
            try:
                return self._run(name, job)
            finally:
                self.running_job = None

    def _run(self, name: str, job: JobFn) -> tuple[str, Mapping[str, Any] | None]:
        pk = self.runs.start(name)
        logger.info("job %s started (run %d)", name, pk)
        try:
            summary = job()
        except Exception as exc:  # one failing job must not stop the daemon
            logger.exception("job %s failed (run %d)", name, pk)
            detail = "".join(traceback.format_exception_only(exc)).strip()
            try:
                self.runs.finish(pk, FAILED, error=detail)
            except DriftdError:
                logger.exception("could not record the failure of run %d", pk)
            return FAILED, None
        self.runs.finish(pk, OK, summary=dict(summary) if summary else None)
        logger.info("job %s finished (run %d)", name, pk)
        return OK, summary

    def skip(self, name: str, reason: str) -> None:
        """Record that a due run of job ``name`` was not started, and why."""
        logger.warning("job %s not started: %s", name, reason)
        try:
            self.runs.skip(name, reason)
        except DriftdError:
            logger.exception("could not record the skipped run of job %s", name)

    def _lease_held(self, name: str) -> bool:
        """Whether this daemon still holds its lease (run and run_once take it); if
        another instance took it, stop."""
        if self.lease is None:
            return True
        try:
            if self.lease.ensure():
                return True
        except StorageError as exc:  # the database is away: this job would fail anyway
            logger.error("job %s not started: cannot verify the lease: %s", name, exc)
            return False
        holder = self.lease.holder()
        self.lease_lost = (
            f"lost the lease of model {self.lease.model!r} to {holder or 'another driftd'}"
        )
        self.skip(name, self.lease_lost)
        self.request_stop()
        return False

    def run_once(self, names: list[str] | None = None) -> dict[str, tuple[str, Any]]:
        """Run the given jobs (default: all, in order) once, now, holding the lease."""
        if self.lease is not None:
            self.lease.acquire("once")
        try:
            self.runs.abandon_dead()
            self._started()
            return {name: self.run_job(name) for name in (names or list(self.jobs))}
        finally:
            if self.lease is not None:
                self.lease.release()

    def _started(self) -> None:
        if self.on_start is None:
            return
        try:
            self.on_start()
        except Exception:  # noqa: BLE001 - a failed repair must not stop the jobs
            logger.exception("the start-up step failed; the jobs run anyway")

    # -- the scheduler ------------------------------------------------------------------

    def run(self, *, standby: bool = False, poll: timedelta = POLL) -> None:
        """Run until stopped by a signal or :meth:`request_stop`, holding the lease.

        When another instance holds the lease, raise :class:`LeaseHeldError` naming it,
        or with ``standby`` try again every ``poll`` until it is free (a signal ends the
        wait). Raises :class:`LeaseHeldError` too when the lease was lost while running.
        """
        self.state = State.STARTING
        previous = {s: signal.signal(s, self._on_signal) for s in (signal.SIGTERM, signal.SIGINT)}
        try:
            if self._take_lease(standby, poll):
                self._serve()
        finally:
            if self.lease is not None:
                self.lease.release()
            self.state = State.STOPPED
            for sig, handler in previous.items():
                signal.signal(sig, handler)
        if self.lease_lost is not None:
            raise LeaseHeldError(f"driftd stopped: it {self.lease_lost}")

    def _take_lease(self, standby: bool, poll: timedelta) -> bool:
        if self.lease is None:
            return True
        taken = self.lease.acquire("run", standby=standby, poll=poll, stop=self._stop_requested)
        if not taken or self._stop_requested.is_set():
            logger.info("driftd stopped while standing by")
            return False
        return True

    def _serve(self) -> None:
        global _current
        if self._stop_requested.is_set():  # a signal came while the lease was taken
            logger.info("driftd stopped before it started")
            return
        from apscheduler.events import EVENT_SCHEDULER_STARTED
        from apscheduler.schedulers.blocking import BlockingScheduler

        abandoned = self.runs.abandon_dead()
        if abandoned:
            logger.warning("%d job run(s) of an earlier process were abandoned", abandoned)
        self._started()
        scheduler = BlockingScheduler(
            timezone=UTC,
            executors={"default": _Executor(self)},
            job_defaults={
                "coalesce": True,
                "max_instances": 1,
                "misfire_grace_time": int(self.misfire_grace.total_seconds()),
            },
        )
        if self.engine is not None:
            self._sync_stored_jobs(scheduler)
        else:
            for name, trigger in self.triggers.items():
                self._add(scheduler, name, trigger, replace=True)
        # a signal may arrive while start() is still starting the scheduler
        scheduler.add_listener(lambda _event: self._shutdown_if_started(), EVENT_SCHEDULER_STARTED)
        self._scheduler = scheduler
        _current = self
        self.state = State.RUNNING
        if self._stop_requested.is_set():  # a signal came while this was starting
            self.state = State.STOPPING
        logger.info("driftd running: jobs %s", ", ".join(self.triggers) or "(none)")
        outcome = "crashed"
        try:
            scheduler.start()
            if self._stopper is not None:
                self._stopper.join()  # the running job has finished when this returns
            outcome = "stopped"
        finally:
            _current = None
            log = logger.info if outcome == "stopped" else logger.error
            log("driftd %s", outcome)

    def _add(self, scheduler: Any, name: str, trigger: BaseTrigger, *, replace: bool) -> None:
        kwargs: dict[str, Any] = {}
        if not hasattr(trigger, "fields"):  # interval triggers: first run now, not after one
            kwargs["next_run_time"] = datetime.now(UTC)
        scheduler.add_job(
            f"{__name__}:_scheduled",
            trigger,
            args=[name],
            id=name,
            name=name,
            replace_existing=replace,
            **kwargs,
        )

    def _sync_stored_jobs(self, scheduler: Any) -> None:
        """Keep stored jobs whose trigger is unchanged (their due time survives a restart);
        replace changed ones, drop ones no longer configured."""
        from apscheduler.jobstores.sqlalchemy import SQLAlchemyJobStore

        store = SQLAlchemyJobStore(engine=self.engine, tablename=JOBSTORE_TABLE)
        # create the job table in a write transaction: APScheduler's own check-then-create
        # upgrades a read transaction, which SQLite refuses at once (no busy wait) while
        # another driftd command holds the write lock (a `status` migrating, say)
        with self.engine.connect() as conn:
            conn.info[WRITE] = True
            try:
                with conn.begin():
                    store.jobs_t.create(conn, checkfirst=True)
            finally:
                conn.info.pop(WRITE, None)
        store.start(scheduler, "default")
        stored = {job.id: job for job in store.get_all_jobs()}
        for job_id in set(stored) - set(self.triggers):
            store.remove_job(job_id)
        scheduler.add_jobstore(
            SQLAlchemyJobStore(engine=self.engine, tablename=JOBSTORE_TABLE), "default"
        )
        for name, trigger in self.triggers.items():
            old = stored.get(name)
            if old is not None and str(old.trigger) == str(trigger):
                continue
            self._add(scheduler, name, trigger, replace=True)

    def request_stop(self) -> None:
        """Start no new job; let the running one finish; then leave :meth:`run`."""
        if self.state is State.STARTING:
            self._stop_requested.set()  # ends a standby's wait; run() checks it
            self.state = State.STOPPING
            return
        if self.state is not State.RUNNING:
            return
        self.state = State.STOPPING  # from here on, a job about to start is skipped
        running = self.running_job
        if running is None:
            logger.info("stopping: no job is running (signal again to force)")
        else:
            logger.info("stopping: waiting for job %s to finish (signal again to force)", running)
        self._shutdown_if_started()

    def _shutdown_if_started(self) -> None:
        scheduler = self._scheduler
        if self.state is not State.STOPPING or self._stopper is not None:
            return
        if scheduler is None or not scheduler.running:
            return  # the scheduler's start event will call this again
        # shutdown(wait=True) blocks until the running job is done: not in a signal handler
        self._stopper = threading.Thread(
            target=self._stop_scheduler, args=(scheduler,), name="driftd-stop", daemon=True
        )
        self._stopper.start()

    @staticmethod
    def _stop_scheduler(scheduler: Any) -> None:
        # paused, the scheduler looks for no due job while shutdown() waits for the
        # running one; runs queued behind it are skipped by run_job, instantly
        scheduler.pause()
        scheduler.shutdown(wait=True)

    def request_force_stop(self) -> None:
        logger.warning("forced stop: exiting now; the running job is abandoned")
        logging.shutdown()
        os._exit(1)

    def _on_signal(self, signum: int, _frame: FrameType | None) -> None:
        self._signals += 1
        logger.info("received %s", signal.Signals(signum).name)
        if self._signals == 1:
            self.request_stop()
        else:
            self.request_force_stop()
