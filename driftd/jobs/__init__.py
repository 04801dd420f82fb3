"""driftd's jobs: one module each, registered by name (see :mod:`driftd.jobs.base`).

ingest (10) -> performance (20) -> statistics (30) -> alerts (900): the order of one
cycle in ``driftd once`` and the demo; the daemon schedules each on its own trigger.
"""

from driftd.jobs.base import Job, JobResult, register, registered, sections

__all__ = ["Job", "JobResult", "register", "registered", "sections"]
