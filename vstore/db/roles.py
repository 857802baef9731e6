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


@dataclass(frozen=True)
class ReaderRole:
    name: str
    url: str  # a libpq URL that logs in as the role
    created: bool  # False when the role existed already (its grants were refreshed)
    password_set: bool  # True when a new password was set (servers other than the embedded one)


def role_url(url: str, user: str, password: str | None) -> str:
    """`url` with its user (and password) replaced; works for URLs and key=value conninfo strings."""
    if "://" not in url:
        return psycopg.conninfo.make_conninfo(url, user=user, password=password or "")
    parts = urlsplit(url)
    host = parts.netloc.rpartition("@")[2]
    userinfo = quote(user, safe="") + (":" + quote(password, safe="") if password else "")
    return urlunsplit(parts._replace(netloc=f"{userinfo}@{host}"))


def ensure_reader(settings: Settings, name: str = READER_ROLE) -> ReaderRole:
    """Create (or refresh) the read-only role; idempotent. On the embedded server (Unix socket in the
    owner's 0700 data folder, trust authentication) the URL needs no password; on any other server a new
    random password is set on every call (so the printed URL always works; older ones stop working)."""
    if not _ROLE_NAME.fullmatch(name):
        raise ConfigError(f"role name {name!r}: use lower-case letters, digits and _ (at most 63).")
    role = sql.Identifier(name)
    password = secrets.token_urlsafe(24) if settings.database_url else None
    with connection(settings, autocommit=True, vector=False) as conn:
        database = conn.info.dbname
        if conn.execute("SELECT to_regnamespace('vstore') IS NULL").fetchone() == (True,):
            raise VstoreError("this database has no vstore schema yet; run `vstore init` first.")
        try:
            with conn.transaction():
                exists = conn.execute("SELECT 1 FROM pg_roles WHERE rolname = %s", (name,)).fetchone()
                if exists is None:
                    conn.execute(sql.SQL("CREATE ROLE {} LOGIN").format(role))
                elif conn.execute(
                    "SELECT rolsuper OR rolcreaterole OR rolcreatedb OR rolbypassrls FROM pg_roles "
                    "WHERE rolname = %s",
                    (name,),
                ).fetchone() == (True,):
                    raise ConfigError(
                        f"role {name} exists with more than read rights (superuser, createrole, createdb "
                        "or bypassrls); pick another name with --role."
                    )
                statements = [
                    "ALTER ROLE {role} SET default_transaction_read_only = on",
                    "GRANT CONNECT ON DATABASE {database} TO {role}",
                    "GRANT USAGE ON SCHEMA public, vstore TO {role}",
                    "GRANT SELECT ON ALL TABLES IN SCHEMA public TO {role}",
                    "GRANT EXECUTE ON ALL FUNCTIONS IN SCHEMA vstore TO {role}",
                    # tables and functions that later migrations create
                    "ALTER DEFAULT PRIVILEGES IN SCHEMA public GRANT SELECT ON TABLES TO {role}",
                    "ALTER DEFAULT PRIVILEGES IN SCHEMA vstore GRANT EXECUTE ON FUNCTIONS TO {role}",
                ]
                for statement in statements:
                    conn.execute(sql.SQL(statement).format(role=role, database=sql.Identifier(database)))
                if password is not None:
                    conn.execute(sql.SQL("ALTER ROLE {} PASSWORD {}").format(role, sql.Literal(password)))
        except psycopg.errors.InsufficientPrivilege as exc:
            raise VstoreError(
                f"this user may not create or grant to role {name}: {str(exc).splitlines()[0]}. "
                "Run `vstore db reader` with the database owner's (or a superuser's) URL."
            ) from exc
        except (psycopg.errors.UniqueViolation, psycopg.errors.DuplicateObject):
            # another `vstore db reader` created the role at the same moment: refresh it
            return ensure_reader(settings, name)
    url = role_url(database_url(settings), name, password)
    return ReaderRole(name=name, url=url, created=exists is None, password_set=password is not None)
