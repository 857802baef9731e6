"""Alembic environment: the URL comes from vstore's Settings (VSTORE_DATABASE_URL or the embedded server),
never from an ini file. vstore.migrations passes its Settings and the model record in config.attributes."""

from __future__ import annotations

from alembic import context
from pgvector.sqlalchemy import Vector
from sqlalchemy import create_engine, pool

from vstore.config import Settings
from vstore.db import locks
from vstore.db.connect import database_url, sqlalchemy_url
from vstore.db.roles import regrant_readers
from vstore.db.schema import metadata

config = context.config


def _compare_type(ctx, inspected_column, metadata_column, inspected_type, metadata_type):  # noqa: ANN001
    # Vector dimensions belong to the model record, not to models.py: don't report them as drift.
    if isinstance(metadata_type, Vector) and isinstance(inspected_type, Vector):
        return False
    return None  # default comparison for everything else


def _settings() -> Settings:
    return config.attributes.get("settings") or Settings.from_env()


def _url() -> str:
    return sqlalchemy_url(database_url(_settings()))


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
        # Every lock wait of the migration is bounded (DDL waits for any session that read a table, the
        # reader's too); vstore.db.migrations names the holders when the time runs out.
        milliseconds = max(1, round(_settings().lock_timeout * 1000))
        connection.exec_driver_sql(f"SET LOCAL lock_timeout = {int(milliseconds)}")
        # Two vstore processes migrating one database at once: the second waits, then finds nothing to do.
        connection.exec_driver_sql(f"SELECT pg_advisory_xact_lock({int(locks.MIGRATIONS.key)})")
        context.run_migrations()
        # A revision that (re)creates tables, schema vstore or its functions drops nothing of the reader's
        # rights: they are re-applied after every run, upgrade or downgrade.
        regrant_readers(connection.connection.dbapi_connection)


if context.is_offline_mode():
    run_migrations_offline()
else:
    run_migrations_online()
