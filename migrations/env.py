"""Alembic environment: run by poolmgr.db.migration with a live connection."""

from alembic import context

from poolmgr.db import models

config = context.config
target_metadata = models.Base.metadata


def run_migrations_online():
    connection = config.attributes.get("connection")
    if connection is None:
        raise RuntimeError(
            "run migrations through 'poolmgr-manage db sync', which passes "
            "the database connection")
    context.configure(connection=connection,
                      target_metadata=target_metadata,
                      render_as_batch=connection.dialect.name == "sqlite")
    with context.begin_transaction():
        context.run_migrations()


if context.is_offline_mode():
    raise RuntimeError("offline (--sql) migrations are not supported")
run_migrations_online()
