"""Alembic environment: the URL comes from vstore's Settings (VSTORE_DATABASE_URL or the embedded server),
never from an ini file. vstore.migrations passes its Settings and the model record in config.attributes."""

from __future__ import annotations

from alembic import context
from pgvector.sqlalchemy import Vector
from sqlalchemy import create_engine, pool

from vstore.config import Settings
from vstore.db.connect import database_url, sqlalchemy_url
from vstore.db.schema import metadata

config = context.config


def _compare_type(ctx, inspected_column, metadata_column, inspected_type, metadata_type):  # noqa: ANN001
    # Vector dimensions belong to the model record, not to models.py: don't report them as drift.
    if isinstance(metadata_type, Vector) and isinstance(inspected_type, Vector):
        return False
    return None  # default comparison for everything else


def _url() -> str:
    settings = config.attributes.get("settings") or Settings.from_env()
    return sqlalchemy_url(database_url(settings))


def run_migrations_offline() -> None:
    context.configure(url=_url(), target_metadata=metadata, literal_binds=True, compare_type=_compare_type)
    with context.begin_transaction():
        context.run_migrations()


def run_migrations_online() -> None:
    connection = config.attributes.get("connection")
    if connection is not None:
        _run(connection)
        return
    engine = create_engine(_url(), poolclass=pool.NullPool)
    with engine.connect() as connection:
        _run(connection)
        connection.commit()


def _run(connection) -> None:  # noqa: ANN001
    context.configure(connection=connection, target_metadata=metadata, compare_type=_compare_type)
    with context.begin_transaction():
        # Two vstore processes migrating one database at once: the second waits, then finds nothing to do.
        connection.exec_driver_sql("SELECT pg_advisory_xact_lock(4242001)")
        context.run_migrations()


if context.is_offline_mode():
    run_migrations_offline()
else:
    run_migrations_online()
