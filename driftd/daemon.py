"""The daemon: scheduled, recorded, idempotent jobs, and a clean stop.

:class:`Daemon` receives its jobs (name -> callable) and their triggers; it does not
build them. Every run of a job is recorded (started, finished, outcome, error) through
:class:`storage.runs.RunLog`; a failing job is logged with its traceback and the daemon
goes on. The scheduler is APScheduler 3's ``BlockingScheduler`` with a persistent
SQLAlchemy job store, ``coalesce``, ``max_instances=1`` and a misfire grace time, so
a run that was due while the daemon was down happens once when it comes back.

Stopping: the first SIGTERM/SIGINT starts no new job and lets the running one finish;
a second one exits at once (the interrupted run is marked abandoned at next start).
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

from apscheduler.triggers.base import BaseTrigger

from storage.errors import DriftdError
from storage.runs import FAILED, OK, RunLog

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
    RUNNING = "running"
    STOPPING = "stopping"


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
    ) -> None:
        unknown = set(triggers) - set(jobs)
        if unknown:
            raise DriftdError(f"triggers for unknown jobs: {', '.join(sorted(unknown))}")
        self.jobs = dict(jobs)
        self.triggers = dict(triggers)
        self.runs = runs
        self.engine = engine
        self.misfire_grace = misfire_grace
        self.state = State.STOPPED
        self._scheduler: Any = None
        self._lock = threading.Lock()
        self._signals = 0
        self._stopper: threading.Thread | None = None

    # -- running jobs -------------------------------------------------------------------

    def run_job(self, name: str) -> tuple[str, Mapping[str, Any] | None]:
        """Run one job now and record it; returns (outcome, summary). Never raises for a
        failure of the job itself."""
        job = self.jobs[name]
        with self._lock:  # jobs of one daemon never overlap (SQLite has one writer)
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

    def run_once(self, names: list[str] | None = None) -> dict[str, tuple[str, Any]]:
        """Run the given jobs (default: all, in order) once, now."""
        self.runs.abandon_dead()
        return {name: self.run_job(name) for name in (names or list(self.jobs))}

    # -- the scheduler ------------------------------------------------------------------

    def run(self) -> None:
        """Run until stopped by a signal or :meth:`request_stop`."""
        global _current
        from apscheduler.executors.pool import ThreadPoolExecutor
        from apscheduler.schedulers.blocking import BlockingScheduler

        abandoned = self.runs.abandon_dead()
        if abandoned:
            logger.warning("%d job run(s) of an earlier process were abandoned", abandoned)
        scheduler = BlockingScheduler(
            timezone=UTC,
            executors={"default": ThreadPoolExecutor(max_workers=1)},
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
        from apscheduler.events import EVENT_SCHEDULER_STARTED

        # a signal may arrive while start() is still starting the scheduler
        scheduler.add_listener(lambda _event: self._shutdown_if_started(), EVENT_SCHEDULER_STARTED)
        self._scheduler = scheduler
        _current = self
        previous = {s: signal.signal(s, self._on_signal) for s in (signal.SIGTERM, signal.SIGINT)}
        self.state = State.RUNNING
        logger.info("driftd running: jobs %s", ", ".join(self.triggers) or "(none)")
        outcome = "crashed"
        try:
            scheduler.start()
            if self._stopper is not None:
                self._stopper.join()  # the running job has finished when this returns
            outcome = "stopped"
        finally:
            self.state = State.STOPPED
            _current = None
            for sig, handler in previous.items():
                signal.signal(sig, handler)
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
        if self.state is not State.RUNNING:
            return
        self.state = State.STOPPING
        logger.info("stopping: waiting for the running job to finish (signal again to force)")
        self._shutdown_if_started()

    def _shutdown_if_started(self) -> None:
        scheduler = self._scheduler
        if self.state is not State.STOPPING or self._stopper is not None:
            return
        if scheduler is None or not scheduler.running:
            return  # the scheduler's start event will call this again
        # shutdown(wait=True) blocks until the running job is done: not in a signal handler
        self._stopper = threading.Thread(target=scheduler.shutdown, name="driftd-stop", daemon=True)
        self._stopper.start()

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
