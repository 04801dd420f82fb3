"""The job interface: what the daemon, ``driftd once`` and the demo run.

A job is a class with a ``name``, a default ``schedule``, an ``order`` among the jobs of
one cycle, and ``run(context) -> JobResult``. Jobs register themselves with
:func:`register` when their module is imported. driftd's own jobs are the modules of
the :mod:`driftd.jobs` package; a team's own jobs are modules named by the
``driftd.jobs`` entry point group of an installed distribution, so adding a job is one
module plus, when it needs settings, its own config section: no central list to edit.

A job's settings live in a top-level config section named by ``section`` and validated
by ``settings`` (a pydantic model); the schedule of every registered job can be set
under ``schedule.<name>`` (``interval`` or ``cron``). Unknown job names are refused.
"""

from __future__ import annotations

import logging
import pkgutil
from abc import ABC, abstractmethod
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from importlib import import_module
from importlib.metadata import entry_points
from typing import TYPE_CHECKING, Any, ClassVar

from pydantic import BaseModel

from driftd.config import Config, JobSchedule

if TYPE_CHECKING:
    from alerts.signals import Evaluation
    from driftd.app import App

logger = logging.getLogger(__name__)

ENTRY_POINTS = "driftd.jobs"


@dataclass(frozen=True)
class JobResult:
    """What one run of a job did.

    ``summary`` is stored with the run, printed by ``driftd once --json`` and read by the
    demo's narration (plain JSON values); ``evaluations`` are the alert evaluations the
    run produced: the runner folds them into incidents with the run's own outcome.
    """

    summary: Mapping[str, Any] = field(default_factory=dict)
    evaluations: Sequence[Evaluation] = ()


class Job(ABC):
    """One kind of work the daemon schedules. Subclasses set the class attributes."""

    name: ClassVar[str]
    schedule: ClassVar[JobSchedule]  # the default; `schedule.<name>` overrides it
    order: ClassVar[int] = 500  # position within a cycle (`once`, the demo): lower first
    section: ClassVar[str | None] = None  # the job's own top-level config section
    settings: ClassVar[type[BaseModel] | None] = None  # validates that section
    alerts_on_failure: ClassVar[bool] = True  # a failed run fires `job_failed`

    @classmethod
    def enabled(cls, config: Config) -> bool:
        """Whether this configuration has what the job needs (e.g. a labels source)."""
        return True

    @abstractmethod
    def run(self, context: App) -> JobResult:
        """Do the work once; raise to fail the run (the daemon logs it and goes on)."""


_registry: dict[str, type[Job]] = {}
_discovered = False


def register(job: type[Job]) -> type[Job]:
    """Make ``job`` known by its name (usable as a class decorator)."""
    name = getattr(job, "name", None)
    if not isinstance(name, str) or not name.isidentifier():
        raise TypeError(f"job {job.__qualname__} needs a `name` that is an identifier")
    if not isinstance(getattr(job, "schedule", None), JobSchedule):
        raise TypeError(f"job {name!r} needs a default `schedule`")
    known = _registry.get(name)
    if known is not None and known is not job:
        raise TypeError(f"two jobs are named {name!r}: {known.__module__}, {job.__module__}")
    _registry[name] = job
    return job


def registered() -> dict[str, type[Job]]:
    """Every known job by name, driftd's own and those of installed entry points."""
    global _discovered
    if not _discovered:
        _discovered = True
        import driftd.jobs as package

        for module in pkgutil.iter_modules(package.__path__):
            if module.name not in {"base", "runner"}:
                import_module(f"{package.__name__}.{module.name}")
        for point in entry_points(group=ENTRY_POINTS):
            try:
                loaded = point.load()
            except Exception:  # one broken plugin must not stop driftd
                logger.exception("could not load the job plugin %s", point.value)
                continue
            if isinstance(loaded, type) and issubclass(loaded, Job):
                register(loaded)
    return dict(sorted(_registry.items(), key=lambda item: (item[1].order, item[0])))


def sections() -> dict[str, type[BaseModel]]:
    """The config sections that registered jobs add, by section name."""
    out = {}
    for job in registered().values():
        if job.section is not None and job.settings is not None:
            out[job.section] = job.settings
    return out
