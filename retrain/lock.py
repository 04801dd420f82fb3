"""One training per model at a time, across processes.

:func:`single_flight` is a context manager that yields ``True`` when this process holds
the model's training lock and ``False`` when another holds it (it never waits):

- PostgreSQL: ``pg_try_advisory_lock`` on a dedicated connection held for the duration;
  the server releases it if the process dies.
- SQLite: ``fcntl.flock`` on ``<workspace>/locks/retrain-<model>.lock``; the kernel
  releases it if the process dies.
"""

from __future__ import annotations

import fcntl
import hashlib
import logging
import os
import re
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from sqlalchemy import text

from retrain.errors import RetrainError
from storage.store import Store

logger = logging.getLogger(__name__)


def advisory_key(model: str) -> int:
    """A stable signed 64-bit key for ``model`` (PostgreSQL advisory locks take bigint)."""
    digest = hashlib.sha256(f"driftd.retrain:{model}".encode()).digest()
    return int.from_bytes(digest[:8], "big", signed=True)


def lock_path(workspace: Path, model: str) -> Path:
    safe = re.sub(r"[^A-Za-z0-9_.-]", "_", model)
    return workspace / "locks" / f"retrain-{safe}.lock"


@contextmanager
def single_flight(store: Store, model: str, *, workspace: Path) -> Iterator[bool]:
    """Hold the training lock of ``model`` inside the block; yields whether it is held."""
    if store.dialect == "postgresql":
        with _advisory(store, model) as held:
            yield held
    else:
        with _flock(lock_path(workspace, model)) as held:
            yield held


@contextmanager
def _advisory(store: Store, model: str) -> Iterator[bool]:
    key = advisory_key(model)
    with store.connect(f"taking the training lock of {model!r}") as conn:
        # a session-level lock: it lives as long as this connection, outside transactions
        held = bool(conn.execute(text("SELECT pg_try_advisory_lock(:k)"), {"k": key}).scalar())
        conn.commit()
        try:
            yield held
        finally:
            if held:
                conn.execute(text("SELECT pg_advisory_unlock(:k)"), {"k": key})
                conn.commit()


@contextmanager
def _flock(path: Path) -> Iterator[bool]:
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
    except OSError as exc:
        raise RetrainError(f"cannot open the training lock file {path}: {exc.strerror}") from exc
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            logger.info("training lock %s is held by another process", path)
            yield False
            return
        try:
            os.ftruncate(fd, 0)
            os.write(fd, f"{os.getpid()}\n".encode())
            yield True
        finally:
            fcntl.flock(fd, fcntl.LOCK_UN)
    finally:
        os.close(fd)
