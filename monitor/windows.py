"""Windows of predictions: by event time, or by row count in arrival order (pure).

:class:`TimeWindows` assigns a record to its window from its event time alone, so the
parser does it. :class:`RowWindows` depends on what is stored already (which rows are
duplicates, how full the current window is), so the store assigns those windows when it
commits a chunk, in the chunk's transaction (:mod:`storage.ingest`).
"""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta

_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 7 * 86400}
_DURATION = re.compile(r"^\s*(\d+)\s*([smhdw])\s*$")
EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


def parse_duration(text: str) -> timedelta:
    """``"15m"``, ``"1h"``, ``"7d"`` as a timedelta; raises ValueError otherwise."""
    match = _DURATION.match(text)
    if not match or int(match.group(1)) == 0:
        raise ValueError(f"{text!r} is not a duration such as 30s, 15m, 1h, 1d or 1w")
    return timedelta(seconds=int(match.group(1)) * _UNITS[match.group(2)])


class TimeWindows:
    """Fixed windows of ``size`` aligned to the Unix epoch (``1d`` windows start at 00:00 UTC).

    A record belongs to the window that contains its event time, however late it arrives.
    """

    def __init__(self, size: timedelta) -> None:
        if size <= timedelta(0):
            raise ValueError("window size must be positive")
        if size % timedelta(seconds=1):
            raise ValueError("window size must be a whole number of seconds")
        self.size = size
        self._seconds = int(size.total_seconds())
        self._starts: dict[int, datetime] = {}

    def start_of(self, ts: datetime) -> datetime:
        delta = ts - EPOCH  # exact: days and seconds are integers
        index = (delta.days * 86400 + delta.seconds) // self._seconds
        start = self._starts.get(index)
        if start is None:
            if len(self._starts) > 100_000:
                self._starts.clear()
            start = self._starts[index] = EPOCH + timedelta(seconds=index * self._seconds)
        return start

    def end_of(self, start: datetime) -> datetime:
        return start + self.size


class RowWindows:
    """Windows of ``rows`` consecutive stored predictions of a model, in arrival order.

    Arrival order is the order in which ingestion reads the records (files in discovery
    order, lines in file order). Duplicates are not stored, so they do not count; a late
    record (an old event time) goes into the window being filled, like any other. Every
    window holds exactly ``rows`` predictions except the last one, which is filling.

    A window is keyed by a start time like a time window: the event time of its first
    row, moved to 1 microsecond after the previous window's start when it is not later,
    so starts grow strictly in arrival order. Its end is the latest event time among its
    rows (at least its start).
    """

    def __init__(self, rows: int) -> None:
        if isinstance(rows, bool) or not isinstance(rows, int) or rows < 1:
            raise ValueError(f"a row window holds a positive whole number of rows, not {rows!r}")
        self.rows = rows


Windows = TimeWindows | RowWindows


def format_duration(delta: timedelta) -> str:
    """A duration as people read it in a health line: 45s, 12m, 3h05m, 2d."""
    seconds = int(delta.total_seconds())
    if seconds >= 86400 and seconds % 86400 == 0:
        return f"{seconds // 86400}d"
    if seconds < 120:
        return f"{seconds}s"
    if seconds < 7200:
        return f"{seconds // 60}m"
    return f"{seconds // 3600}h{(seconds % 3600) // 60:02d}m"
