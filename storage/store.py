"""The :class:`Store`: one object that owns the engine, transactions and migrations.

It accepts a URL or an existing engine and disposes only an engine it created; the
constructor does no I/O (the engine is created on first use). Third-party errors are
translated here: connection-level failures become :class:`TransientStorageError`,
everything else :class:`StorageError`.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import numpy as np
from sqlalchemy import Column, Connection, Engine, create_engine, event, func, select, text
from sqlalchemy import exc as sa_exc

from storage.errors import StorageError, TransientStorageError

logger = logging.getLogger(__name__)

MIGRATIONS = Path(__file__).with_name("migrations")


WRITE = "driftd_write"


CACHE_KIB = -65536  # SQLite's page cache per connection: 64 MiB (ingest: ~12% less CPU
# than 16 MiB at 1M rows, as the unique index's pages stay in memory)
READ_ONCE_CACHE_KIB = -4096


@contextmanager
def read_once(conn: Connection) -> Iterator[None]:
    """Reads of large values read once (feature blocks, a reference profile) through a
    small page cache: a 64 MiB cache filled with them stays allocated for nothing (at 1M
    rows it was a quarter of the statistics job's memory)."""
    if conn.dialect.name != "sqlite":
        yield
        return
    conn.exec_driver_sql(f"PRAGMA cache_size={READ_ONCE_CACHE_KIB}")
    try:
        yield
    finally:
        conn.exec_driver_sql(f"PRAGMA cache_size={CACHE_KIB}")


BLOB_STEP = 1 << 22  # bytes per read of a large value through SQLite's blob API


def read_large(conn: Connection, column: Column[Any], pk: int) -> memoryview | None:
    """The binary value of ``column`` in the row with primary key ``pk``, for values of
    many megabytes (a profile of a million reference rows is 160 MB).

    SQLite: read in :data:`BLOB_STEP` steps through the incremental blob API into one
    numpy buffer. The driver's bytes object would be filled a page at a time, and on a
    virtual machine each new page's fault costs more than copying it (80,000 faults, 0.2
    s of system time for 160 MB; this way 0.07 s): numpy asks the kernel for huge pages
    for large arrays. Other databases: the value as the driver returns it."""
    table = column.table
    [key] = table.primary_key.columns
    if conn.dialect.name != "sqlite":
        found = conn.execute(select(column).where(key == pk)).scalar()
        return None if found is None else memoryview(found)
    raw = conn.connection.dbapi_connection
    assert raw is not None
    # length() reads the record's header only (IS NULL would read the whole value)
    if conn.execute(select(func.length(column)).where(key == pk)).scalar() is None:
        return None
    with raw.blobopen(table.name, column.name, pk, readonly=True) as blob:
        size = len(blob)
        buffer = np.empty(size, dtype=np.uint8)
        for offset in range(0, size, BLOB_STEP):
            step = blob.read(BLOB_STEP)
            buffer[offset : offset + len(step)] = np.frombuffer(step, dtype=np.uint8)
    return buffer.data.cast("B")


def _sqlite_pragmas(dbapi_conn: Any, _record: Any) -> None:
    # pysqlite's own transaction handling sends DDL outside any transaction, so a crash
    # during a migration would leave tables without their alembic_version row. SQLite
    # can do transactional DDL: take transaction control away from the driver and send
    # BEGIN ourselves (_sqlite_begin), as SQLAlchemy's pysqlite documentation recommends.
    dbapi_conn.isolation_level = None
    cursor = dbapi_conn.cursor()
    # 16 KiB pages: a prediction row is ~600 bytes, and bulk inserts cost ~15% less CPU
    # than with 4 KiB. Takes effect only while a new database is still empty (before WAL
    # is switched on); an existing database keeps its page size.
    cursor.execute("PRAGMA page_size=16384")
    # WAL: readers do not block the writer; NORMAL is crash-safe for the process.
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.execute("PRAGMA busy_timeout=30000")
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.execute(f"PRAGMA cache_size={CACHE_KIB}")  # index inserts stay in memory
    # Debian's SQLite zeroes every deleted page (secure_delete on), which wrote each
    # folded feature block twice; FAST zeroes deleted content only where that costs no
    # extra I/O (what is deleted, blocks and superseded runs, stays stored as rows)
    cursor.execute("PRAGMA secure_delete=FAST")
    cursor.close()


def _sqlite_begin(conn: Connection) -> None:
    # writers take the write lock at BEGIN (IMMEDIATE): a deferred transaction that
    # upgrades later can fail at once with SQLITE_BUSY instead of waiting busy_timeout
    conn.exec_driver_sql("BEGIN IMMEDIATE" if conn.info.get(WRITE) else "BEGIN")


def create_private(path: Path) -> None:
    """Create a new SQLite database file (and its missing directories) readable by its
    owner only: it holds logged features, which can be personal data. SQLite gives its
    -wal, -shm and -journal files the database file's mode. An existing file is left as
    it is."""
    path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    try:
        os.close(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600))
    except FileExistsError:
        pass


def redact_url(url: str) -> str:
    """The URL with its password replaced, for logs and messages.

    Both places a password can hide are covered: the userinfo part and libpq's
    ``?password=`` query parameter.
    """
    try:
        from sqlalchemy.engine import make_url

        parsed = make_url(url)
        if "password" in parsed.query:
            parsed = parsed.update_query_dict({"password": "***"})
        return parsed.render_as_string(hide_password=True)
    except Exception:  # noqa: BLE001 - a malformed URL is shown without its credentials
        return url.split("@")[-1].split("?")[0]


def translate(exc: sa_exc.SQLAlchemyError, what: str) -> StorageError:
    """A driftd error for a SQLAlchemy error, transient when retrying may help."""
    transient = isinstance(exc, sa_exc.DBAPIError) and exc.connection_invalidated
    transient = transient or isinstance(exc, sa_exc.OperationalError | sa_exc.TimeoutError)
    cls = TransientStorageError if transient else StorageError
    detail = str(getattr(exc, "orig", None) or exc).splitlines()[0]
    return cls(f"{what} failed: {detail}")


class Store:
    """A driftd database: SQLite (embedded default) or PostgreSQL.

    ``Store("sqlite:///driftd.db")`` or ``Store(engine)``. Call :meth:`migrate` once at
    start-up; use :meth:`transaction` for a unit of work.
    """

    def __init__(self, url_or_engine: str | Engine, *, echo: bool = False) -> None:
        if isinstance(url_or_engine, Engine):
            self._engine: Engine | None = url_or_engine
            self._owns_engine = False
            self.url = url_or_engine.url.render_as_string(hide_password=False)
        else:
            self._engine = None
            self._owns_engine = True
            self.url = url_or_engine
        self._echo = echo

    def __repr__(self) -> str:
        return f"Store({redact_url(self.url)!r})"

    @property
    def engine(self) -> Engine:
        if self._engine is None:
            try:
                self._engine = self._create_engine()
            except (sa_exc.SQLAlchemyError, ImportError, ValueError, OSError) as exc:
                raise StorageError(f"cannot open database {redact_url(self.url)}: {exc}") from exc
        return self._engine

    @property
    def dialect(self) -> str:
        return self.engine.dialect.name

    def _create_engine(self) -> Engine:
        url = self.url
        if url.startswith("postgresql://"):
            url = "postgresql+psycopg://" + url.removeprefix("postgresql://")
        if url.startswith("sqlite:///"):
            path = url.removeprefix("sqlite:///").split("?")[0]
            if path and path != ":memory:" and not path.startswith("file:"):
                create_private(Path(path))
        engine = create_engine(url, echo=self._echo, pool_pre_ping=True)
        if engine.dialect.name == "sqlite":
            event.listen(engine, "connect", _sqlite_pragmas)
            event.listen(engine, "begin", _sqlite_begin)
        return engine

    def dispose(self) -> None:
        """Close pooled connections of an engine this store created."""
        if self._engine is not None and self._owns_engine:
            self._engine.dispose()
            self._engine = None

    @contextmanager
    def transaction(self, what: str = "database transaction") -> Iterator[Connection]:
        """A connection inside one transaction: committed on success, else rolled back."""
        try:
            with self.engine.connect() as conn:
                conn.info[WRITE] = True
                try:
                    with conn.begin():
                        yield conn
                finally:
                    conn.info.pop(WRITE, None)
        except sa_exc.SQLAlchemyError as exc:
            raise translate(exc, what) from exc

    @contextmanager
    def connect(self, what: str = "database read") -> Iterator[Connection]:
        try:
            with self.engine.connect() as conn:
                yield conn
        except sa_exc.SQLAlchemyError as exc:
            raise translate(exc, what) from exc

    def ping(self) -> None:
        """Raise :class:`StorageError` unless the database answers."""
        with self.connect("ping") as conn:
            conn.execute(text("SELECT 1"))

    def migrate(self, revision: str = "head") -> None:
        """Bring the schema to ``revision`` with Alembic (idempotent)."""
        from alembic import command

        cfg = alembic_config(self)
        with self.transaction("schema migration") as conn:
            cfg.attributes["connection"] = conn
            command.upgrade(cfg, revision)

    def head_revision(self) -> str | None:
        """The newest migration this version of driftd ships."""
        from alembic.script import ScriptDirectory

        return ScriptDirectory.from_config(alembic_config(self)).get_current_head()

    def current_revision(self) -> str | None:
        from alembic.migration import MigrationContext

        with self.connect("schema revision") as conn:
            return MigrationContext.configure(conn).get_current_revision()


def alembic_config(store: Store) -> Any:
    from alembic.config import Config

    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS))
    cfg.set_main_option("sqlalchemy.url", store.url.replace("%", "%%"))
    return cfg
