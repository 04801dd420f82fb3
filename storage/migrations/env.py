"""Alembic environment: runs on the connection that :meth:`Store.migrate` passes in."""

from __future__ import annotations

from alembic import context

from storage.schema import metadata

connection = context.config.attributes.get("connection")
if connection is None:  # `alembic` CLI use: build an engine from the URL
    from sqlalchemy import create_engine

    engine = create_engine(context.config.get_main_option("sqlalchemy.url"))
    with engine.begin() as connection:
        context.configure(connection=connection, target_metadata=metadata, render_as_batch=True)
        with context.begin_transaction():
            context.run_migrations()
else:
    context.configure(connection=connection, target_metadata=metadata, render_as_batch=True)
    with context.begin_transaction():
        context.run_migrations()
