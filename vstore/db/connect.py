"""Connections from Settings: the embedded server by default, VSTORE_DATABASE_URL otherwise.

Runtime code talks to PostgreSQL through psycopg 3 (binary COPY, prepared statements, pgvector's adapter);
SQLAlchemy is only the engine Alembic needs.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any, ParamSpec, TypeVar

import numpy as np
import psycopg
from psycopg import sql as pgsql

from vstore.config import Settings
from vstore.db import locks
from vstore.errors import (
    DatabaseUnavailable,
    LockTimeout,
    PgvectorMissing,
    ReadOnlyDatabase,
    SchemaNotReady,
    VstoreError,
)

P = ParamSpec("P")
R = TypeVar("R")
# What PostgreSQL answers to a write by a role that may only read (no grant, sessions that start
# read-only as `vstore db reader`'s do, or a hot standby).
CANNOT_WRITE = (psycopg.errors.InsufficientPrivilege, psycopg.errors.ReadOnlySqlTransaction)

# pg_stat_activity.application_name of vstore's sessions, so that a lock-wait message can say that a
# holder is vstore (or psql, or another client) beside its role name, which a client cannot choose.
APPLICATION_NAME = "vstore"


def database_url(settings: Settings) -> str:
    """The libpq URL vstore uses; starts the embedded server when no URL is configured."""
    if settings.database_url:
        return settings.database_url
    from vstore.db import embedded

    return embedded.start(settings)


def running_database_url(settings: Settings) -> str:
    """The URL of a server that runs now, never starting one: for long-running processes (`vstore serve`)
    that reconnect after the database went away, so they do not restart an embedded server that someone
    stopped on purpose. DatabaseUnavailable while the embedded server is stopped."""
    if settings.database_url:
        return settings.database_url
    from vstore.db import embedded

    url = embedded.status(settings).url
    if url is None:
        raise DatabaseUnavailable(
            f"the embedded PostgreSQL in {settings.home} is stopped; `vstore db start` starts it again."
        )
    return url


def redact(url: str) -> str:
    return re.sub(r"://([^:/@]+):[^@]*@", r"://\1:***@", url)


def sqlalchemy_url(url: str) -> str:
    return re.sub(r"^postgres(ql)?(\+\w+)?://", "postgresql+psycopg://", url)


def _explain_connect_failure(url: str, exc: Exception) -> DatabaseUnavailable:
    text = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
    if "password authentication failed" in text or "authentication" in text:
        hint = "check the user name and password in VSTORE_DATABASE_URL"
    elif "does not exist" in text and "database" in text:
        hint = "create that database (createdb) or fix the database name in VSTORE_DATABASE_URL"
    else:
        hint = (
            "check that the server is running and VSTORE_DATABASE_URL is right "
            "(docker compose up -d starts the bundled one), or unset VSTORE_DATABASE_URL "
            "to use the embedded server"
        )
    return DatabaseUnavailable(f"cannot connect to PostgreSQL at {redact(url)}: {text}. Fix: {hint}.")


def connect(settings: Settings, *, autocommit: bool = False, vector: bool = True) -> psycopg.Connection:
    """Open a psycopg connection. With `vector`, pgvector's types are registered (binary COPY of vectors,
    numpy arrays as parameters); that needs the extension, so it raises SchemaNotReady without it."""
    url = database_url(settings)
    try:
        conninfo = psycopg.conninfo.make_conninfo(url, **session_options(settings, url))
        conn = psycopg.connect(conninfo, autocommit=autocommit, connect_timeout=10)
    except psycopg.Error as exc:
        raise _explain_connect_failure(url, exc) from exc
    if vector:
        from pgvector.psycopg import register_vector

        try:
            register_vector(conn)
        except psycopg.ProgrammingError:
            conn.close()
            raise SchemaNotReady(
                "this database has no vstore schema yet (the vector type is missing). "
                "Run `vstore init` (or `vstore db upgrade`) first."
            ) from None
    return conn


def session_options(settings: Settings, url: str) -> dict[str, str]:
    """Connection parameters every vstore session gets: its application_name (unless the URL names one)
    and lock_timeout, so that no lock wait of vstore's is unbounded (Settings.lock_timeout)."""
    given = psycopg.conninfo.conninfo_to_dict(url)
    milliseconds = max(1, round(settings.lock_timeout * 1000))
    options = f"{given.get('options') or ''} -c lock_timeout={milliseconds}".strip()
    extra = {"options": options}
    if not given.get("application_name"):
        extra["application_name"] = APPLICATION_NAME
    return extra


@contextmanager
def connection(
    settings: Settings, *, autocommit: bool = False, vector: bool = True
) -> Iterator[psycopg.Connection]:
    conn = connect(settings, autocommit=autocommit, vector=vector)
    try:
        yield conn
    finally:
        conn.close()


def database_error(exc: BaseException) -> VstoreError | None:
    """The one-line error for a psycopg error a user can act on, or None for the others (bugs).

    OperationalError covers a server that shut down, restarted or was killed mid-command (AdminShutdown,
    CrashShutdown, "server closed the connection unexpectedly"): each batch commits on its own, so the
    fix is to run the same command again once the server is back."""
    first_line = (str(exc).strip().splitlines() or [type(exc).__name__])[0]
    if isinstance(exc, psycopg.errors.LockNotAvailable):  # an OperationalError too: test it first
        return LockTimeout(
            f"a lock wait ran out ({first_line}): another session holds a lock this command needs; "
            "let it finish or end it, then re-run the command (VSTORE_LOCK_TIMEOUT sets the wait)."
        )
    if isinstance(exc, psycopg.OperationalError):
        return DatabaseUnavailable(
            f"lost the connection to PostgreSQL mid-command ({first_line}). What was committed is kept: "
            "once the server runs again (`vstore db start` for the embedded one, or the server of "
            "VSTORE_DATABASE_URL), re-run the same command; it resumes where it stopped."
        )
    if isinstance(exc, CANNOT_WRITE):
        return ReadOnlyDatabase(
            f"this database role may not write ({first_line}). Run the command with the owner's URL "
            "(`vstore db url`, or unset VSTORE_DATABASE_URL); a `vstore db reader` URL can only search."
        )
    return None


def database_errors(function: Callable[P, R]) -> Callable[P, R]:
    """Decorator for library entry points: psycopg errors with a known fix become VstoreErrors."""

    @functools.wraps(function)
    def wrapper(*args: P.args, **kwargs: P.kwargs) -> R:
        try:
            return function(*args, **kwargs)
        except psycopg.Error as exc:
            error = database_error(exc)
            if error is None:
                raise
            if isinstance(error, LockTimeout):
                settings = next((a for a in args if isinstance(a, Settings)), None)
                error = name_lock_holders(error, settings)
            raise error from exc

    return wrapper


def name_lock_holders(error: LockTimeout, settings: Settings | None) -> LockTimeout:
    """The error with the sessions that hold locks on vstore's tables named (the likely holders: the
    statement that timed out is gone, so its own wait can no longer be asked)."""
    if settings is None:
        return error
    try:
        with connection(settings, autocommit=True, vector=False) as conn:
            holders = locks.describe_sessions(conn, locks.schema_holders(conn))
    except (psycopg.Error, VstoreError):
        return error
    if not holders:
        return error
    return LockTimeout(f"{str(error).rstrip('.')}; sessions holding locks on vstore's tables: {holders}.")


def ensure_pgvector(conn: psycopg.Connection) -> str:
    """Create the vector extension if needed; return its version. Clear error when it cannot exist here."""
    row = conn.execute("SELECT extversion FROM pg_extension WHERE extname = 'vector'").fetchone()
    if row:
        return str(row[0])
    available = conn.execute(
        "SELECT default_version FROM pg_available_extensions WHERE name = 'vector'"
    ).fetchone()
    if not available:
        raise PgvectorMissing(
            "pgvector is not installed on this PostgreSQL server. Install it "
            "(https://github.com/pgvector/pgvector#installation, or use the pgvector/pgvector Docker image "
            "from docker-compose.yml), or unset VSTORE_DATABASE_URL to use the embedded server."
        )
    try:
        with conn.transaction():
            # Two first uses at once would both try to create it, and one fail on pg_extension's unique
            # name: the second waits here, then finds the extension (IF NOT EXISTS).
            locks.take_advisory(conn, locks.EXTENSION, transaction=True)
            conn.execute("CREATE EXTENSION IF NOT EXISTS vector")
    except psycopg.errors.InsufficientPrivilege as exc:
        raise PgvectorMissing(
            "pgvector is installed on the server but this user may not create the extension: "
            f"{str(exc).splitlines()[0]}. Fix: have a superuser run `CREATE EXTENSION vector;` in this "
            "database once, then retry."
        ) from exc
    row = conn.execute("SELECT extversion FROM pg_extension WHERE extname = 'vector'").fetchone()
    return str(row[0]) if row else "?"


def scalar(conn: psycopg.Connection, query: str | pgsql.SQL | pgsql.Composed, params: Any = None) -> Any:
    """The first column of the first row of a query that always returns one (count(*), RETURNING id)."""
    row = conn.execute(query, params).fetchone()
    if row is None:
        raise RuntimeError(f"query returned no row: {query!r:.200}")
    return row[0]


def vector_array(value: object) -> np.ndarray:
    """A vector column value as float32: pgvector's adapter gives a Vector (binary results) or an ndarray
    (text results)."""
    to_numpy = getattr(value, "to_numpy", None)
    return np.asarray(to_numpy() if to_numpy else value, dtype=np.float32)


def same_snapshot(settings: Settings, conn: psycopg.Connection) -> psycopg.Connection:
    """A second connection whose read-only transaction sees exactly what `conn`'s REPEATABLE READ
    transaction sees (pg_export_snapshot): one connection cannot fetch from a cursor while a COPY streams,
    so a second stream of the same rows needs its own connection."""
    snapshot = conn.execute("SELECT pg_export_snapshot()").fetchone()[0]  # type: ignore[index]
    other = connect(settings)
    other.execute("BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY")
    other.execute(pgsql.SQL("SET TRANSACTION SNAPSHOT {}").format(pgsql.Literal(snapshot)))
    return other
