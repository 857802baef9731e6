"""Which database, and which state of it, an export or a Faiss side index was made from.

A side index maps Faiss rows to database ids. Loaded against another database, those ids name unrelated
images (foreign: refused); loaded after an ingest, it silently misses the new rows (stale: warned, or
rebuilt on request). The identity recorded in the manifests tells the two apart cheaply:

- server: the cluster's system identifier, the database's name and oid (a recreated database has a new
  oid); any difference is another database;
- model: name, weights and dimension (checked separately, ModelMismatch);
- content of the indexed table: row count, highest id, and an XOR of per-row hashes of id and xmin
  (xmin changes on every update), over exactly the rows an export reads: any difference is staleness.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

import psycopg

from vstore.db import sql
from vstore.errors import ConfigError

IDENTITY_TABLES = ("images", "captions")


@dataclass(frozen=True)
class DatabaseIdentity:
    system_identifier: str | None  # None where the role may not read pg_control_system()
    database: str
    database_oid: int
    table: str
    rows: int
    max_id: int
    fingerprint: int

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> DatabaseIdentity:
        return cls(**{k: data[k] for k in cls.__dataclass_fields__})


def database_identity(conn: psycopg.Connection, table: str) -> DatabaseIdentity:
    """The identity of `table`'s exportable vectors in the database of `conn` (run it in the snapshot
    the vectors are read in, so the two agree)."""
    if table not in IDENTITY_TABLES:
        raise ConfigError(f"unknown table {table!r}; choose one of {', '.join(IDENTITY_TABLES)}.")
    system: str | None
    try:
        with conn.transaction():  # a savepoint inside the caller's snapshot: a refusal does not abort it
            row = conn.execute("SELECT system_identifier::text FROM pg_control_system()").fetchone()
        system = row[0] if row else None
    except psycopg.errors.InsufficientPrivilege:
        system = None
    name, oid = conn.execute(
        "SELECT current_database(), (SELECT oid::bigint FROM pg_database WHERE datname = current_database())"
    ).fetchone()  # type: ignore[misc]
    rows, max_id, fingerprint = conn.execute(sql.load(f"queries/export_identity_{table}")).fetchone()  # type: ignore[misc]
    return DatabaseIdentity(system, str(name), int(oid), table, int(rows), int(max_id), int(fingerprint))


def foreign_reason(recorded: DatabaseIdentity, current: DatabaseIdentity) -> str | None:
    """Why `recorded` is another database than `current`, or None when it is the same one."""
    if (
        recorded.system_identifier
        and current.system_identifier
        and recorded.system_identifier != current.system_identifier
    ):
        return f"another PostgreSQL cluster (system identifier {recorded.system_identifier})"
    if (recorded.database, recorded.database_oid) != (current.database, current.database_oid):
        return f"another database ({recorded.database!r}, oid {recorded.database_oid})"
    return None


def stale_reason(recorded: DatabaseIdentity, current: DatabaseIdentity) -> str | None:
    """What changed in the table since `recorded`, or None when its vectors are the same rows."""
    if (recorded.rows, recorded.max_id, recorded.fingerprint) == (
        current.rows,
        current.max_id,
        current.fingerprint,
    ):
        return None
    if recorded.rows != current.rows or recorded.max_id != current.max_id:
        return (
            f"{recorded.table} had {recorded.rows} rows (highest id {recorded.max_id}) when it was built, "
            f"now {current.rows} (highest id {current.max_id})"
        )
    return f"{recorded.table} rows were updated or replaced since it was built"
