"""Schema contract: Alembic migrations build exactly :data:`storage.schema.metadata`."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import Connection, create_engine, event, inspect, select

from storage import schema
from storage.migrations.env import FOREIGN_TABLES, include_object
from storage.store import Store, alembic_config


def head(store: Store) -> str | None:
    return ScriptDirectory.from_config(alembic_config(store)).get_current_head()


def differences(conn: Connection, *, filtered: bool = True) -> list[Any]:
    opts: dict[str, Any] = {"compare_type": True, "compare_server_default": True}
    if filtered:
        opts["include_object"] = include_object
    return compare_metadata(MigrationContext.configure(conn, opts=opts), schema.metadata)


def test_migrate_is_idempotent_and_reaches_head(store: Store) -> None:
    assert head(store) is not None
    assert store.current_revision() == head(store)
    t = schema.job_runs
    with store.transaction() as conn:
        conn.execute(t.insert().values(job="ingest", started_at=datetime.now(UTC), outcome="ok"))

    store.migrate()
    store.migrate()

    assert store.current_revision() == head(store)
    with store.connect() as conn:
        assert conn.execute(select(t.c.job)).scalars().all() == ["ingest"]


def test_migrations_create_every_table_of_the_metadata(store: Store) -> None:
    with store.connect() as conn:
        tables = set(inspect(conn).get_table_names())
    assert tables == set(schema.metadata.tables) | {"alembic_version"}


def test_migrations_match_the_metadata_exactly(store: Store) -> None:
    with store.connect() as conn:
        assert differences(conn) == []


def test_the_job_store_table_is_not_a_schema_difference(store: Store) -> None:
    from apscheduler.jobstores.sqlalchemy import SQLAlchemyJobStore

    from driftd.daemon import JOBSTORE_TABLE

    assert JOBSTORE_TABLE in FOREIGN_TABLES
    jobstore = SQLAlchemyJobStore(engine=store.engine, tablename=JOBSTORE_TABLE)
    jobstore.start(None, "default")  # creates the table, as the daemon's scheduler does

    with store.connect() as conn:
        assert JOBSTORE_TABLE in inspect(conn).get_table_names()
        unfiltered = differences(conn, filtered=False)
        # without the filter, autogenerate would drop the table and its index
        assert sorted(d[0] for d in unfiltered) == ["remove_index", "remove_table"]
        assert {getattr(d[1], "table", d[1]).name for d in unfiltered} == {JOBSTORE_TABLE}
        assert differences(conn) == []
    store.migrate()  # and migrating again leaves it alone
    with store.connect() as conn:
        assert JOBSTORE_TABLE in inspect(conn).get_table_names()


def test_a_store_disposes_the_engine_it_created(db_url: str) -> None:
    store = Store(db_url)
    store.ping()
    engine = store.engine
    disposed: list[object] = []
    event.listen(engine, "engine_disposed", disposed.append)

    store.dispose()

    assert disposed == [engine]
    store.ping()  # a disposed store opens a new engine when used again
    assert store.engine is not engine
    store.dispose()


def test_a_store_leaves_a_given_engine_alone(db_url: str) -> None:
    engine = create_engine(db_url)
    disposed: list[object] = []
    event.listen(engine, "engine_disposed", disposed.append)
    try:
        store = Store(engine)
        store.migrate()
        assert store.engine is engine
        assert store.current_revision() == head(store)

        store.dispose()

        assert disposed == []
        assert store.engine is engine
        with engine.connect() as conn:
            assert conn.execute(select(schema.job_runs.c.pk)).all() == []
    finally:
        engine.dispose()
