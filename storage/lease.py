"""One driftd per model and store: the lease a second instance cannot take.

Two daemons on one database would both run every job (every row ingested twice counts
as a duplicate). Whoever runs jobs (``driftd run``, ``once``, ``ingest``) holds the
model's lease first; a second instance refuses to start, naming the holder, or stands
by and takes over when the holder ends.

The lease lives where the database does, and dies with its holder, SIGKILL included:

- PostgreSQL: a session-level advisory lock, keyed by a 64-bit hash of
  ("driftd", schema, model), held on a dedicated connection for the holder's life. The
  server releases it when that connection ends. The holder is named by the connection's
  ``application_name`` (``pg_stat_activity``).
- SQLite: ``fcntl.flock`` on a file beside the database, released by the kernel when
  the holder's process ends; the file describes the holder. (flock does not work over
  NFS; keep a shared SQLite file on a local disk, or use PostgreSQL.)
- An in-memory SQLite database belongs to one process and needs none.

No table is involved, so there is no migration and no expiry to tune.
"""

from __future__ import annotations

import fcntl
import hashlib
import logging
import os
import re
import socket
import threading
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Protocol

import orjson
from sqlalchemy import Connection, create_engine, text
from sqlalchemy import exc as sa_exc
from sqlalchemy.pool import NullPool

from storage.errors import DriftdError, StorageError
from storage.store import Store, redact_url, translate

logger = logging.getLogger(__name__)

POLL = timedelta(seconds=5)


class LeaseHeldError(DriftdError):
    """Another driftd holds the lease of this model and store."""


@dataclass(frozen=True)
class Holder:
    """Who holds a lease: what for (``run``, ``once``, ``ingest``), where, since when."""

    purpose: str
    pid: int | None = None
    host: str | None = None
    since: datetime | None = None

    def __str__(self) -> str:
        where = f"pid {self.pid}" if self.pid is not None else "unknown pid"
        if self.host:
            where += f" on {self.host}"
        if self.since is not None:
            where += f", since {self.since.astimezone(UTC):%Y-%m-%d %H:%M:%S} UTC"
        return f"driftd {self.purpose} ({where})"


class _Lock(Protocol):
    def try_lock(self, purpose: str) -> bool: ...
    def alive(self) -> bool: ...
    def holder(self) -> Holder | None: ...
    def unlock(self) -> None: ...


class Lease:
    """The lease of ``model`` in ``store``; the constructor does no I/O.

    ``with lease.hold("once"): ...`` holds it for a block or raises
    :class:`LeaseHeldError`; :meth:`acquire` with ``standby=True`` waits for it.
    """

    def __init__(self, store: Store, model: str) -> None:
        self.store = store
        self.model = model
        self._lock: _Lock | None = None
        self._purpose: str | None = None  # held, for this purpose
        self._wanted: str | None = None  # acquired and not released, even if lost since

    def __repr__(self) -> str:
        return f"Lease({self.model!r} in {redact_url(self.store.url)})"

    @property
    def held(self) -> bool:
        return self._purpose is not None

    def _backend(self) -> _Lock:
        if self._lock is None:
            url = self.store.engine.url
            if url.get_backend_name() == "postgresql":
                self._lock = _AdvisoryLock(self.store, self.model)
            elif url.get_backend_name() == "sqlite":
                db = url.database or ""
                memory = db in ("", ":memory:") or db.startswith("file::memory:")
                self._lock = _NoLock() if memory else _FileLock(Path(db), self.model)
            else:
                raise StorageError(f"no lease for {url.get_backend_name()} databases")
        return self._lock

    def try_acquire(self, purpose: str) -> bool:
        """Take the lease if it is free (True), or leave it to its holder (False)."""
        if self.held:
            return True
        if self._backend().try_lock(purpose):
            self._purpose = self._wanted = purpose
            return True
        return False

    def acquire(
        self,
        purpose: str,
        *,
        standby: bool = False,
        poll: timedelta = POLL,
        stop: threading.Event | None = None,
    ) -> bool:
        """Take the lease, or raise :class:`LeaseHeldError` naming its holder.

        With ``standby``, wait instead: try again every ``poll`` until the holder ends
        (True) or ``stop`` is set (False).
        """
        if self.try_acquire(purpose):
            return True
        if not standby:
            raise LeaseHeldError(self.refusal(purpose))
        logger.info(
            "standing by: %s holds model %r in %s; trying every %.3gs",
            self.holder() or "another driftd",
            self.model,
            redact_url(self.store.url),
            poll.total_seconds(),
        )
        stop = stop or threading.Event()
        while not stop.wait(poll.total_seconds()):
            try:
                if self.try_acquire(purpose):
                    logger.warning("took over: this process now holds model %r", self.model)
                    return True
            except StorageError as exc:  # the database is away: a standby keeps waiting
                logger.warning("standby: cannot reach the database: %s", exc)
        return False

    def refusal(self, purpose: str) -> str:
        """Why ``driftd <purpose>`` cannot run now, naming the holder."""
        hint = ", or start this one with --standby to take over when it ends"
        return (
            f"model {self.model!r} in {redact_url(self.store.url)} is held by "
            f"{self.holder() or 'another driftd'}: a second driftd would run the same "
            f"jobs twice; stop that one first{hint if purpose == 'run' else ''}"
        )

    def holder(self) -> Holder | None:
        """Who holds the lease now (this process included), or None when it is free."""
        return self._backend().holder()

    def ensure(self) -> bool:
        """Whether this process still holds the lease it acquired, taking it again if
        its connection was lost and nobody else took it meanwhile. Raises
        :class:`StorageError` when the database cannot be reached to know."""
        if self._wanted is None:
            return False
        lock = self._backend()
        if self._purpose is not None:
            if lock.alive():
                return True
            self._purpose = None
            lock.unlock()
            logger.warning("lost the lease of model %r: its connection ended", self.model)
        if self.try_acquire(self._wanted):
            logger.warning("took the lease of model %r again", self.model)
            return True
        return False

    def release(self) -> None:
        self._wanted = None
        if self._purpose is not None:
            self._purpose = None
            self._backend().unlock()

    @contextmanager
    def hold(self, purpose: str) -> Iterator[Lease]:
        """Hold the lease for a block, or raise :class:`LeaseHeldError`."""
        self.acquire(purpose)
        try:
            yield self
        finally:
            self.release()


def _me(purpose: str) -> Holder:
    return Holder(purpose, os.getpid(), socket.gethostname(), datetime.now(UTC))


class _NoLock:
    """An in-memory database: nobody else can open it."""

    def __init__(self) -> None:
        self._me: Holder | None = None

    def try_lock(self, purpose: str) -> bool:
        self._me = _me(purpose)
        return True

    def alive(self) -> bool:
        return True

    def holder(self) -> Holder | None:
        return self._me

    def unlock(self) -> None:
        self._me = None


class _FileLock:
    """``flock`` on ``<database>.<model>.lease``; the file describes the holder."""

    def __init__(self, database: Path, model: str) -> None:
        slug = re.sub(r"[^A-Za-z0-9_.-]", "_", model)[:100]
        self.path = database.with_name(f"{database.name}.{slug}.lease")
        self._fd: int | None = None
        self._me: Holder | None = None

    def try_lock(self, purpose: str) -> bool:
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
        except OSError as exc:
            raise StorageError(f"cannot open the lease file {self.path}: {exc}") from exc
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(fd)
            return False
        me = _me(purpose)
        data = orjson.dumps(
            {"purpose": me.purpose, "pid": me.pid, "host": me.host, "since": me.since}
        )
        os.pwrite(fd, data, 0)
        os.ftruncate(fd, len(data))
        self._fd, self._me = fd, me
        return True

    def alive(self) -> bool:
        return self._fd is not None  # the kernel keeps it while the file is open

    def holder(self) -> Holder | None:
        if self._me is not None:
            return self._me
        try:
            fd = os.open(self.path, os.O_RDONLY)
        except FileNotFoundError:
            return None
        try:
            try:
                fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
            except BlockingIOError:
                return _described(os.pread(fd, 4096, 0))
            fcntl.flock(fd, fcntl.LOCK_UN)
            return None  # a shared lock was free: nobody holds the lease
        finally:
            os.close(fd)

    def unlock(self) -> None:
        fd, self._fd, self._me = self._fd, None, None
        if fd is not None:
            os.close(fd)  # closing the last descriptor releases the flock


def _described(data: bytes) -> Holder:
    try:
        d = orjson.loads(data)
        since = datetime.fromisoformat(d["since"]) if d.get("since") else None
        return Holder(str(d["purpose"]), d.get("pid"), d.get("host"), since)
    except (orjson.JSONDecodeError, KeyError, TypeError, ValueError):
        return Holder("(being written)")


def advisory_key(schema: str, model: str) -> int:
    """A stable signed 64-bit key for ``pg_try_advisory_lock``."""
    digest = hashlib.blake2b(f"driftd\0{schema}\0{model}".encode(), digest_size=8).digest()
    return int.from_bytes(digest, "big", signed=True)


_HOLDER = text(
    "SELECT a.application_name, a.backend_start FROM pg_locks l "
    "JOIN pg_stat_activity a ON a.pid = l.pid "
    "WHERE l.locktype = 'advisory' AND l.granted AND l.objsubid = 1 "
    "AND l.database = (SELECT oid FROM pg_database WHERE datname = current_database()) "
    "AND l.classid::bigint = :hi AND l.objid::bigint = :lo"
)
_NAME = re.compile(r"driftd (\S+) pid (\d+) on (.*)")


class _AdvisoryLock:
    """A session-level advisory lock on a connection of its own (autocommit, so it
    never sits idle in a transaction)."""

    def __init__(self, store: Store, model: str) -> None:
        self.store = store
        self.model = model
        self._conn: Connection | None = None
        self._me: Holder | None = None

    def _connect(self, purpose: str) -> Connection:
        me = _me(purpose)
        name = f"driftd {purpose} pid {me.pid} on {me.host}"[:63]
        engine = create_engine(
            self.store.engine.url, poolclass=NullPool, connect_args={"application_name": name}
        )
        try:
            return engine.connect().execution_options(isolation_level="AUTOCOMMIT")
        except sa_exc.SQLAlchemyError as exc:
            raise translate(exc, f"connecting to take the lease of model {self.model!r}") from exc

    def _key(self, conn: Connection) -> int:
        schema = conn.execute(text("SELECT current_schema()")).scalar_one()
        return advisory_key(str(schema), self.model)

    def try_lock(self, purpose: str) -> bool:
        conn = self._connect(purpose)
        try:
            key = self._key(conn)
            got = conn.execute(text("SELECT pg_try_advisory_lock(:k)"), {"k": key}).scalar_one()
        except sa_exc.SQLAlchemyError as exc:
            conn.close()
            raise translate(exc, f"taking the lease of model {self.model!r}") from exc
        if not got:
            conn.close()
            return False
        self._conn, self._me = conn, _me(purpose)
        return True

    def alive(self) -> bool:
        if self._conn is None:
            return False
        try:
            self._conn.execute(text("SELECT 1"))
        except sa_exc.SQLAlchemyError:
            return False
        return True

    def holder(self) -> Holder | None:
        if self._me is not None:
            return self._me
        conn = self._connect("status")
        try:
            key = self._key(conn)
            row = conn.execute(
                _HOLDER, {"hi": (key >> 32) & 0xFFFFFFFF, "lo": key & 0xFFFFFFFF}
            ).first()
        except sa_exc.SQLAlchemyError as exc:
            raise translate(exc, f"reading the lease of model {self.model!r}") from exc
        finally:
            conn.close()
        if row is None:
            return None
        match = _NAME.fullmatch(row.application_name or "")
        if match is None:
            return Holder(row.application_name or "(unnamed)", since=row.backend_start)
        return Holder(match[1], int(match[2]), match[3], row.backend_start)

    def unlock(self) -> None:
        conn, self._conn, self._me = self._conn, None, None
        if conn is not None:
            with suppress(sa_exc.SQLAlchemyError):  # a dead connection holds nothing
                conn.execute(text("SELECT pg_advisory_unlock_all()"))
            with suppress(sa_exc.SQLAlchemyError):
                conn.close()
            conn.engine.dispose()
