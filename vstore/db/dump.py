"""Logical dumps (`vstore db dump` / `vstore db load`): pg_dump's custom format, for moving a database
between PostgreSQL versions (a physical backup only restores into the same major version) or to
another server. The bundled pg_dump is the newest major here, so it reads any older server.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path

from vstore.config import Settings
from vstore.db import pgtools
from vstore.db.connect import connection, database_url
from vstore.errors import ConfigError, VstoreError


@dataclass(frozen=True)
class DumpReport:
    path: Path
    seconds: float
    bytes: int


def dump(settings: Settings, target: Path) -> DumpReport:
    """Write the vstore database to `target` (pg_dump -Fc). Refuses to overwrite an existing file."""
    target = target.expanduser().resolve()
    if target.exists():
        raise ConfigError(f"{target} exists; give a new file name for the dump.")
    if not target.parent.is_dir():
        raise ConfigError(f"{target.parent} is not a folder; create it first.")
    started = time.monotonic()
    conninfo, env = pgtools.split_password(database_url(settings))
    partial = target.with_name(target.name + ".partial")
    try:
        pgtools.run("pg_dump", ["-Fc", "-d", conninfo, "-f", str(partial)], what="dump", env=env)
        partial.rename(target)
    finally:
        partial.unlink(missing_ok=True)
    return DumpReport(path=target, seconds=round(time.monotonic() - started, 2), bytes=target.stat().st_size)


def load(settings: Settings, source: Path) -> DumpReport:
    """Load a dump into the (empty) vstore database in one transaction: all of it or nothing."""
    source = source.expanduser().resolve()
    if not source.is_file():
        raise ConfigError(f"{source} is not a file; give the path of a `vstore db dump` file.")
    with connection(settings, autocommit=True, vector=False) as conn:
        tables = conn.execute(
            "SELECT count(*) FROM pg_tables WHERE schemaname IN ('public', 'vstore')"
        ).fetchone()
        if tables and tables[0]:
            raise VstoreError(
                "this database already has tables; load a dump into a new, empty home "
                "(VSTORE_HOME=NEW vstore db load FILE) so nothing is overwritten."
            )
        reader = conn.execute("SELECT 1 FROM pg_roles WHERE rolname = 'vstore_reader'").fetchone()
    started = time.monotonic()
    conninfo, env = pgtools.split_password(database_url(settings))
    pgtools.run(
        "pg_restore",
        [
            "--no-owner",
            "--no-privileges",
            "--exit-on-error",
            "--single-transaction",
            "-d",
            conninfo,
            str(source),
        ],
        what=f"load {source.name}",
        env=env,
    )
    if reader is not None:  # grants are not carried over (roles are the server's, not the dump's)
        from vstore.db.roles import ensure_reader

        ensure_reader(settings)
    return DumpReport(path=source, seconds=round(time.monotonic() - started, 2), bytes=source.stat().st_size)
