"""The weekly business-impact report: what the model's errors meant this week, in the
business's units and money.

:func:`generate` builds the report of one week (:mod:`driftd.report.build`), writes
its HTML and JSON (:mod:`driftd.report.files`) and sends its five-line summary through
the alerts pipeline. The ``weekly_report`` job (:mod:`driftd.jobs.report`) and
``driftd report weekly`` call it.
"""

from __future__ import annotations

from datetime import datetime
from typing import TYPE_CHECKING

from driftd.report.files import Written, listing, write
from driftd.report.weeks import Week, last_complete, parse_week

if TYPE_CHECKING:
    from driftd.app import App


def generate(
    app: App, week: Week, *, notify: bool = True, as_of: datetime | None = None
) -> Written:
    """Build, write and (when ``notify``) announce the report of ``week``."""
    from driftd.report.build import build

    document = build(app, week, as_of=as_of or app.clock())
    return write(app, week, document, notify=notify)


__all__ = ["Week", "Written", "generate", "last_complete", "listing", "parse_week"]
