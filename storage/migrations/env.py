"""Alembic environment: runs on the connection that :meth:`Store.migrate` passes in.

driftd's database also holds tables that are not part of :data:`storage.schema.metadata`
(APScheduler's job store, created by the daemon). :func:`include_object` keeps them out
of autogenerate comparisons, so ``alembic revision --autogenerate`` never proposes to
drop them; the schema tests compare with the same filter.

Importing this module (as the tests do) only defines the filter; the migrations run
when Alembic executes it.
"""

from __future__ import annotations

from typing import Any

from alembic import context

from storage.errors import StorageError
from storage.schema import metadata

# Tables other components keep in driftd's database. "apscheduler_jobs" is
# driftd.daemon.JOBSTORE_TABLE (named here: storage imports none of the other packages).
FOREIGN_TABLES = frozenset({"apscheduler_jobs"})


def include_object(
    obj: Any, name: str | None, type_: str, reflected: bool, compare_to: Any
) -> bool:
    """Alembic's filter: leave out foreign tables and everything that belongs to them."""
    if type_ == "table":
        return name not in FOREIGN_TABLES
    table = getattr(obj, "table", None)
    return table is None or table.name not in FOREIGN_TABLES


def _run_migrations(connection: Any) -> None:
    context.configure(
        connection=connection,
        target_metadata=metadata,
        render_as_batch=True,
        include_object=include_object,
    )
    with context.begin_transaction():
        context.run_migrations()


def _main() -> None:
    connection = context.config.attributes.get("connection")
    if connection is not None:
        _run_migrations(connection)
        return
    # `alembic` CLI use: build an engine from the URL
    from sqlalchemy import create_engine

    url = context.config.get_main_option("sqlalchemy.url")
    if not url:
        raise StorageError("the Alembic config has no sqlalchemy.url")
    engine = create_engine(url)
    try:
        with engine.begin() as conn:
            _run_migrations(conn)
    finally:
        engine.dispose()


# Alembic installs `context.config` while it executes this file; a plain import does not.
if getattr(context, "config", None) is not None:
    _main()
