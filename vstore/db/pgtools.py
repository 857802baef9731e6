"""What backups, dumps and replicas need beside the embedded adapter: bundled tools run as subprocesses
(the adapter's `tool` and `run_tool`), the password out of process lists, data folders handed to the
server's user, and the check that the embedded server is the one in use.

When vstore runs as root the server runs as a system user (`server_os_user`); files a tool writes for a
server (a replica's data folder, a restored home) are handed to that user.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

from vstore.config import Settings
from vstore.db.cluster import hand_to, run_tool, server_os_user
from vstore.errors import ConfigError

__all__ = ["copy_tree", "hand_to_server", "require_embedded", "run", "server_os_user", "split_password"]

run = run_tool  # run("pg_basebackup", [...], what=..., user=..., env=...) -> stdout; one-line errors


def hand_to_server(path: Path, user: str | None) -> None:
    """Give a whole folder tree to the server's user (root only), its top 0700 as PostgreSQL insists."""
    hand_to(path, user, 0o700)
    if user is None:
        return
    import pwd

    entry = pwd.getpwnam(user)
    for root, dirs, files in os.walk(path):
        for name in dirs + files:
            os.chown(os.path.join(root, name), entry.pw_uid, entry.pw_gid, follow_symlinks=False)


def require_embedded(settings: Settings, verb: str) -> None:
    if settings.database_url:
        raise ConfigError(
            f"VSTORE_DATABASE_URL is set: `{verb}` works on the embedded server only. Use your server's own "
            "tools (pg_basebackup, pg_dump, streaming replication) or unset VSTORE_DATABASE_URL."
        )


def split_password(url: str) -> tuple[str, dict[str, str]]:
    """A conninfo without its password, and the environment that carries it (PGPASSWORD), so the password
    never shows in a process list."""
    import psycopg

    params = psycopg.conninfo.conninfo_to_dict(url)
    password = params.pop("password", None)
    return psycopg.conninfo.make_conninfo("", **params), ({"PGPASSWORD": str(password)} if password else {})


def copy_tree(source: Path, target: Path) -> None:
    """Copy a data folder, skipping the sockets and lock files of the server that made it."""
    shutil.copytree(source, target, ignore=shutil.ignore_patterns(".s.PGSQL.*", "postmaster.pid"))
