"""Running a job: retries of transient storage errors, and its outcome as an alert.

:class:`JobRunner` turns each enabled :class:`~driftd.jobs.base.Job` into the callable
the :class:`~driftd.daemon.Daemon` records and schedules. Around ``job.run``:

- a :class:`~storage.errors.TransientStorageError` (a lost connection, a lock timeout)
  is retried with exponential backoff before the run counts as failed;
- the run's evaluations and its own outcome (``job_failed`` fires on a failure and
  clears on the next success) are folded into incidents and delivered; alerting about a
  job never changes the job's outcome.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Mapping, Sequence
from typing import TYPE_CHECKING, Any

from driftd.jobs.base import Job, JobResult
from storage.errors import TransientStorageError

if TYPE_CHECKING:
    from alerts.signals import Evaluation
    from driftd.app import App

logger = logging.getLogger(__name__)


class JobRunner:
    def __init__(
        self,
        app: App,
        *,
        attempts: int = 4,
        backoff: float = 2.0,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self.app = app
        self.attempts = attempts
        self.backoff = backoff
        self.sleep = sleep

    def callable(self, job: Job) -> Callable[[], Mapping[str, Any]]:
        """``job`` as the daemon runs it: no arguments, a summary back."""
        return lambda: self.run(job)

    def run(self, job: Job) -> Mapping[str, Any]:
        try:
            result = self._with_retries(job)
        except Exception as exc:
            self._alert(job, [], failed=f"{exc}")
            raise
        alerts = self._alert(job, result.evaluations)
        return result.summary if alerts is None else {**result.summary, "alerts": alerts}

    def _with_retries(self, job: Job) -> JobResult:
        delay = self.backoff
        for attempt in range(1, self.attempts + 1):
            try:
                return job.run(self.app)
            except TransientStorageError as exc:
                if attempt == self.attempts:
                    raise
                logger.warning(
                    "job %s: %s; retrying in %.0fs (attempt %d of %d)",
                    job.name,
                    exc,
                    delay,
                    attempt + 1,
                    self.attempts,
                )
                self.sleep(delay)
                delay *= 2
        raise AssertionError("unreachable")  # the loop returns or raises

    def _alert(
        self, job: Job, evaluations: Sequence[Evaluation], *, failed: str | None = None
    ) -> Mapping[str, Any] | None:
        from alerts.signals import run_evaluation

        looks = list(evaluations)
        if job.alerts_on_failure:
            outcome = "ok" if failed is None else "failed"
            looks.append(run_evaluation(self.app.model, job.name, outcome, failed))
        if not looks:
            return None
        try:
            return self.app.alert(looks)
        except Exception:  # alerting about a job must not change the job's outcome
            logger.exception("could not evaluate the alerts of job %s", job.name)
            return None
