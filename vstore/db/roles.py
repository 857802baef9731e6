"""A read-only login role for handing the data to SQL clients (`vstore db reader`).

`vstore db url` is the owner's URL: whoever holds it can drop every table. The reader role may SELECT the
tables and EXECUTE the `vstore.*` functions, nothing else: no INSERT, UPDATE, DELETE or DDL on vstore's
objects (it owns none), and its sessions start read-only. It may not INSERT into `text_queries` either: a
shared cache that any client can write is a cache any client can poison (a text mapped to another
vector). New texts are cached by the owner (`vstore embed-text`); the Store searches them uncached under
this role.
"""

from __future__ import annotations

import re
import secrets
from dataclasses import dataclass
from urllib.parse import quote, urlsplit, urlunsplit

import psycopg
from psycopg import sql

from vstore.config import Settings
from vstore.db.connect import connection, database_url
from vstore.errors import ConfigError, VstoreError

READER_ROLE = "vstore_reader"
_ROLE_NAME = re.compile(r"[a-z_][a-z0-9_]{0,62}")
# vstore's own tables the reader may SELECT, by name (never every table in public: other applications'
# tables are not vstore's to hand out). vstore.locks is not among them: nobody but the owner may touch it.
READER_TABLES = (
    "embedding_model",
    "datasets",
    "images",
    "captions",
    "text_queries",
    "deferred_indexes",
    "reembed_run",
    "alembic_version",
)
# Set on (role, database) by ensure_reader: which roles the migrations re-grant after they ran. Only a
# superuser may set an unknown parameter for a role (PostgreSQL 15+), so no role can mark itself; the
# migrations also require the explicit CONNECT grant, which only the database's owner can give.
READER_MARK = "vstore.reader"


@dataclass(frozen=True)
class ReaderRole:
    name: str
    url: str  # a libpq URL that logs in as the role
    created: bool  # False when the role existed already (its grants were refreshed)
    password_set: bool  # True when a new password was set (always on servers other than the embedded one)


def role_url(url: str, user: str, password: str | None) -> str:
    """`url` with its user (and password) replaced; works for URLs and key=value conninfo strings."""
    if "://" not in url:
        return psycopg.conninfo.make_conninfo(url, user=user, password=password or "")
    parts = urlsplit(url)
    host = parts.netloc.rpartition("@")[2]
    userinfo = quote(user, safe="") + (":" + quote(password, safe="") if password else "")
    return urlunsplit(parts._replace(netloc=f"{userinfo}@{host}"))


def _exists(conn: psycopg.Connection, kind: str, name: str) -> bool:
    function = {"schema": "to_regnamespace", "table": "to_regclass"}[kind]
    query = sql.SQL("SELECT {}(%s) IS NOT NULL").format(sql.Identifier(function))
    return conn.execute(query, (name,)).fetchone() == (True,)


# Functions every role may call by default that let a reader interfere: advisory locks (it could hold
# vstore's keys, or take so many that the server's shared lock table is full and every session's next lock
# fails with "out of shared memory") and large objects (rows it could create: storage, despite no CREATE).
PUBLIC_FUNCTIONS_TAKEN = (
    "pg_advisory_lock(bigint)",
    "pg_advisory_lock(integer, integer)",
    "pg_advisory_lock_shared(bigint)",
    "pg_advisory_lock_shared(integer, integer)",
    "pg_try_advisory_lock(bigint)",
    "pg_try_advisory_lock(integer, integer)",
    "pg_try_advisory_lock_shared(bigint)",
    "pg_try_advisory_lock_shared(integer, integer)",
    "pg_advisory_xact_lock(bigint)",
    "pg_advisory_xact_lock(integer, integer)",
    "pg_advisory_xact_lock_shared(bigint)",
    "pg_advisory_xact_lock_shared(integer, integer)",
    "pg_try_advisory_xact_lock(bigint)",
    "pg_try_advisory_xact_lock(integer, integer)",
    "pg_try_advisory_xact_lock_shared(bigint)",
    "pg_try_advisory_xact_lock_shared(integer, integer)",
    "lo_create(oid)",
    "lo_creat(integer)",
    "lo_from_bytea(oid, bytea)",
)


def _take_public_functions(conn: psycopg.Connection) -> bool:
    """REVOKE EXECUTE on PUBLIC_FUNCTIONS_TAKEN from PUBLIC in this database (pg_proc is per database),
    when this user is a superuser that owns the database (the embedded server's case): the functions are
    pg_catalog's, so only a superuser may, and on a database shared with other applications it is not
    vstore's call. Superusers, vstore's owner among them, keep them. Returns whether it did."""
    row = conn.execute(
        "SELECT r.rolsuper AND d.datdba = r.oid FROM pg_roles r, pg_database d "
        "WHERE r.rolname = current_user AND d.datname = current_database()"
    ).fetchone()
    if row != (True,):
        return False
    functions = sql.SQL(", ").join(sql.SQL(signature) for signature in PUBLIC_FUNCTIONS_TAKEN)
    conn.execute(sql.SQL("REVOKE EXECUTE ON FUNCTION {} FROM PUBLIC").format(functions))
    return True


def grant_reader(conn: psycopg.Connection, name: str) -> None:
    """(Re)apply the reader's rights on this database, statements only, in the caller's transaction (the
    migrations call it too, so that a downgrade and upgrade never strips the role).

    Privileges are the control: SELECT on READER_TABLES that exist, EXECUTE on vstore.*, USAGE on the two
    schemas, CONNECT; nothing else (grants of older versions and default privileges are revoked), no TEMP
    (taken from PUBLIC too: a role gets what PUBLIC has), no CREATE anywhere. Sessions start read-only as
    a second fence; the role may change its own defaults (PostgreSQL lets every role do that), which gains
    it nothing without privileges, and the settings are reset here each time."""
    role = sql.Identifier(name)
    database = sql.Identifier(str(conn.info.dbname))
    statements = [
        "ALTER ROLE {role} RESET ALL",
        "ALTER ROLE {role} IN DATABASE {database} RESET ALL",
        "ALTER ROLE {role} SET default_transaction_read_only = on",
        "REVOKE ALL ON DATABASE {database} FROM {role}",
        "GRANT CONNECT ON DATABASE {database} TO {role}",
        "REVOKE TEMPORARY ON DATABASE {database} FROM PUBLIC",
        "REVOKE CREATE ON SCHEMA public FROM PUBLIC",
        "REVOKE ALL ON SCHEMA public FROM {role}",
        "GRANT USAGE ON SCHEMA public TO {role}",
        "REVOKE ALL ON ALL TABLES IN SCHEMA public FROM {role}",
        "ALTER DEFAULT PRIVILEGES IN SCHEMA public REVOKE ALL ON TABLES FROM {role}",
    ]
    if _exists(conn, "schema", "vstore"):
        statements += [
            "REVOKE ALL ON SCHEMA vstore FROM {role}",
            "GRANT USAGE ON SCHEMA vstore TO {role}",
            "REVOKE ALL ON ALL TABLES IN SCHEMA vstore FROM {role}",
            "ALTER DEFAULT PRIVILEGES IN SCHEMA vstore REVOKE ALL ON FUNCTIONS FROM {role}",
            "GRANT EXECUTE ON ALL FUNCTIONS IN SCHEMA vstore TO {role}",
        ]
    for statement in statements:
        conn.execute(sql.SQL(statement).format(role=role, database=database))
    tables = [t for t in READER_TABLES if _exists(conn, "table", f"public.{t}")]
    if tables:
        conn.execute(
            sql.SQL("GRANT SELECT ON {} TO {}").format(
                sql.SQL(", ").join(sql.Identifier("public", t) for t in tables), role
            )
        )
    _take_public_functions(conn)
    _mark(conn, name)  # after RESET ALL above, which removed it


def _mark(conn: psycopg.Connection, name: str) -> None:
    """Record the role as this database's reader for the migrations; skipped where this user may not
    (not a superuser): the default role name is re-granted without the mark."""
    try:
        with conn.transaction():
            conn.execute(
                sql.SQL("ALTER ROLE {} IN DATABASE {} SET " + READER_MARK + " = 'on'").format(
                    sql.Identifier(name), sql.Identifier(str(conn.info.dbname))
                )
            )
    except psycopg.errors.InsufficientPrivilege:
        pass


def marked_readers(conn: psycopg.Connection) -> list[str]:
    """The roles ensure_reader set up on this database: CONNECT granted explicitly (which only the
    database's owner can do), and the mark, or the default name (which versions before the mark used)."""
    rows = conn.execute(
        "SELECT r.rolname FROM pg_database d CROSS JOIN LATERAL aclexplode(d.datacl) a "
        "JOIN pg_roles r ON r.oid = a.grantee "
        "WHERE d.datname = current_database() AND a.privilege_type = 'CONNECT' AND (r.rolname = %s "
        "OR EXISTS (SELECT 1 FROM pg_db_role_setting s WHERE s.setrole = r.oid AND s.setdatabase = d.oid "
        "AND %s = ANY(s.setconfig))) ORDER BY 1",
        (READER_ROLE, f"{READER_MARK}=on"),
    ).fetchall()
    return [str(r[0]) for r in rows]


def regrant_readers(conn: psycopg.Connection) -> list[str]:
    """grant_reader for every reader of this database; called by the migrations (alembic/env.py) after
    they ran, in their transaction. A role this user may not alter is left as it is (never fails them)."""
    done = []
    for name in marked_readers(conn):
        if not _ROLE_NAME.fullmatch(name) or _too_strong(conn, name):
            continue
        try:
            with conn.transaction():
                grant_reader(conn, name)
        except psycopg.errors.InsufficientPrivilege:
            continue
        done.append(name)
    return done


def _too_strong(conn: psycopg.Connection, name: str) -> bool:
    row = conn.execute(
        "SELECT rolsuper OR rolcreaterole OR rolcreatedb OR rolbypassrls FROM pg_roles WHERE rolname = %s",
        (name,),
    ).fetchone()
    return row == (True,)


def _loopholes(conn: psycopg.Connection, name: str) -> list[str]:
    """What the role could still create after the grants: privileges it holds through PUBLIC that this
    user could not revoke (it neither owns the database or schema nor is a superuser)."""
    found = []
    for privilege in ("TEMPORARY", "CREATE"):
        if conn.execute(
            "SELECT has_database_privilege(%s, current_database(), %s)", (name, privilege)
        ).fetchone() == (True,):
            found.append(f"database: {privilege}")
    rows = conn.execute(
        "SELECT nspname FROM pg_namespace WHERE has_schema_privilege(%s, oid, 'CREATE') ORDER BY 1", (name,)
    ).fetchall()
    found += [f"schema {r[0]}: CREATE" for r in rows]  # words for the error message, never SQL
    return found


def ensure_reader(settings: Settings, name: str = READER_ROLE) -> ReaderRole:
    """Create (or refresh) the read-only role; idempotent. On the embedded server the role's password is
    kept in the home's passfile (vstore/db/auth.py), so the printed URL stays the same from call to call;
    on any other server a new random password is set on every call (so the printed URL always works; older
    ones stop working)."""
    if not _ROLE_NAME.fullmatch(name):
        raise ConfigError(f"role name {name!r}: use lower-case letters, digits and _ (at most 63).")
    role = sql.Identifier(name)
    if settings.database_url:
        password = secrets.token_urlsafe(24)
    else:
        from vstore.db.auth import password_for

        password = password_for(settings.home, name)
    with connection(settings, autocommit=True, vector=False) as conn:
        if conn.execute("SELECT to_regnamespace('vstore') IS NULL").fetchone() == (True,):
            raise VstoreError("this database has no vstore schema yet; run `vstore init` first.")
        try:
            with conn.transaction():
                exists = conn.execute("SELECT 1 FROM pg_roles WHERE rolname = %s", (name,)).fetchone()
                if exists is None:
                    conn.execute(sql.SQL("CREATE ROLE {} LOGIN").format(role))
                elif _too_strong(conn, name):
                    raise ConfigError(
                        f"role {name} exists with more than read rights (superuser, createrole, createdb "
                        "or bypassrls); pick another name with --role."
                    )
                grant_reader(conn, name)
                conn.execute(sql.SQL("ALTER ROLE {} PASSWORD {}").format(role, sql.Literal(password)))
        except psycopg.errors.InsufficientPrivilege as exc:
            raise VstoreError(
                f"this user may not create or grant to role {name}: {str(exc).splitlines()[0]}. "
                "Run `vstore db reader` with the database owner's (or a superuser's) URL."
            ) from exc
        except (psycopg.errors.UniqueViolation, psycopg.errors.DuplicateObject):
            # another `vstore db reader` created the role at the same moment: refresh it
            return ensure_reader(settings, name)
        loopholes = _loopholes(conn, name)
    if loopholes:
        raise VstoreError(
            f"role {name} can still create objects through PUBLIC ({', '.join(loopholes)}), which this user "
            "may not revoke: have the database owner run `REVOKE TEMPORARY, CREATE ON DATABASE ... FROM "
            "PUBLIC` and `REVOKE CREATE ON SCHEMA ... FROM PUBLIC`, then run `vstore db reader` again."
        )
    url = role_url(database_url(settings), name, password)
    fresh = settings.database_url is not None or exists is None
    return ReaderRole(name=name, url=url, created=exists is None, password_set=fresh)
