"""Assigning records to windows by event time (pure)."""

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
