"""The prediction log ``driftd serve`` writes: JSON Lines in driftd's contract.

Every served prediction is one line, written (and by default flushed to disk) before the
response leaves, so a prediction the client received is in the log. A crash after the
write and before the response may make the client retry with the same id: the log then
holds that id twice and ingestion counts the second as a duplicate, which is right.

Files are never renamed nor appended to after a restart: each start and each rotation
(by size, and at each new UTC hour) creates a new file
``<stem>-<UTC time>-<nnnn><suffix>`` with an exclusive create, so a line cut short by a
crash stays the last line of its file (ingestion waits for a newline that never comes,
and ignores it) and never glues itself to the next record. :attr:`PredictionLog.glob` matches every file, for ``sources:``.
"""

from __future__ import annotations

import logging
import os
import threading
from collections.abc import Callable, Mapping, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import orjson

from storage.errors import DriftdError

logger = logging.getLogger(__name__)

Clock = Callable[[], datetime]


def utc_now() -> datetime:
    return datetime.now(UTC)


def rfc3339(moment: datetime) -> str:
    """``2026-11-28T10:00:00.123Z``: UTC, millisecond precision."""
    moment = moment.astimezone(UTC)
    return moment.strftime("%Y-%m-%dT%H:%M:%S.") + f"{moment.microsecond // 1000:03d}Z"


class LogWriteError(DriftdError):
    """A prediction could not be logged (so it must not be served)."""


class PredictionLog:
    """Appends contract records to rotating files; thread-safe.

    ``path`` names the stem and suffix (``logs/predictions.jsonl`` writes
    ``logs/predictions-20261205T031500Z-0000.jsonl``, ...). Nothing is opened until the first
    record.
    """

    def __init__(
        self,
        path: Path,
        *,
        max_bytes: int = 64 << 20,
        hourly: bool = True,
        fsync: bool = True,
        clock: Clock = utc_now,
    ) -> None:
        self.path = path
        self.max_bytes = max_bytes
        self.hourly = hourly
        self.fsync = fsync
        self.clock = clock
        self._lock = threading.Lock()
        self._fd: int | None = None
        self._size = 0
        self._hour: datetime | None = None
        self.current: Path | None = None
        self.written = 0

    @property
    def glob(self) -> str:
        """The glob that matches every file this log writes (for ``sources:``)."""
        return str(self.path.with_name(f"{self.path.stem}-*{self.path.suffix}"))

    def write(self, record: Mapping[str, Any]) -> None:
        """Append ``record`` as one line (see :meth:`write_many`)."""
        self.write_many([record])

    def write_many(self, records: Sequence[Mapping[str, Any]]) -> None:
        """Append one line per record; on return they are in the file (and on disk with
        ``fsync``). Raises :class:`LogWriteError` when they are not: then none of them
        counts as logged (a part may be, and is logged again if retried: a duplicate)."""
        lines = [orjson.dumps(record) + b"\n" for record in records]
        if not lines:
            return
        with self._lock:
            try:
                start = 0
                while start < len(lines):
                    fd = self._file_for(len(lines[start]))
                    end, size = start + 1, len(lines[start])
                    while (
                        end < len(lines) and self._size + size + len(lines[end]) <= self.max_bytes
                    ):
                        size += len(lines[end])
                        end += 1
                    view = memoryview(b"".join(lines[start:end]))
                    while view:
                        view = view[os.write(fd, view) :]
                    self._size += size
                    if self.fsync:
                        os.fdatasync(fd)
                    start = end
            except OSError as exc:
                self._close()  # what follows goes to a new file, not after a torn line
                raise LogWriteError(
                    f"cannot write the prediction log {self.current}: {exc.strerror or exc}"
                ) from exc
            self.written += len(lines)

    def _file_for(self, size: int) -> int:
        now = self.clock().astimezone(UTC)
        hour = now.replace(minute=0, second=0, microsecond=0)
        if self._fd is not None:
            if self._size and self._size + size > self.max_bytes:
                self._close()
            elif self.hourly and hour != self._hour:
                self._close()
        if self._fd is None:
            self._open(now)
            self._hour = hour
        assert self._fd is not None
        return self._fd

    def _open(self, now: datetime) -> None:
        directory = self.path.parent
        directory.mkdir(parents=True, exist_ok=True)
        stamp = now.strftime("%Y%m%dT%H%M%SZ")
        flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_APPEND | getattr(os, "O_CLOEXEC", 0)
        for n in range(10_000):
            candidate = directory / f"{self.path.stem}-{stamp}-{n:04d}{self.path.suffix}"
            try:
                self._fd = os.open(candidate, flags, 0o644)
            except FileExistsError:
                continue
            break
        else:
            raise OSError(f"no free file name for {self.path} at {stamp}")
        self.current, self._size = candidate, 0
        if self.fsync:  # the new name must survive a power cut as well as its lines
            dir_fd = os.open(directory, os.O_RDONLY)
            try:
                os.fsync(dir_fd)
            finally:
                os.close(dir_fd)
        logger.info("writing predictions to %s", candidate)

    def _close(self) -> None:
        if self._fd is None:
            return
        fd, self._fd = self._fd, None
        try:
            os.fsync(fd)
        except OSError:
            logger.warning("could not flush %s before closing it", self.current)
        finally:
            os.close(fd)

    def close(self) -> None:
        with self._lock:
            self._close()

    def __enter__(self) -> PredictionLog:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
