"""`vstore db psql`: the bundled psql, logged in as the owner or the reader, no system client needed.

The password travels in the child's environment (PGPASSWORD), never on its command line, where any user
of the machine could read it in the process list.
"""

from __future__ import annotations

import os
from dataclasses import dataclass

import psycopg

from vstore.config import Settings
from vstore.errors import ConfigError


@dataclass(frozen=True)
class Invocation:
    argv: list[str]  # program first
    env: dict[str, str]  # the whole environment for the child


def without_password(url: str) -> tuple[str, dict[str, str]]:
    """A conninfo string without its password, and the environment variable that carries it."""
    params = psycopg.conninfo.conninfo_to_dict(url)
    password = params.pop("password", None)
    conninfo = psycopg.conninfo.make_conninfo("", **{k: str(v) for k, v in params.items()})
    return conninfo, ({"PGPASSWORD": str(password)} if password else {})


def psql_invocation(settings: Settings, args: list[str], *, reader: bool = False) -> Invocation:
    """The bundled psql with `args`, connected to vstore's database as its owner (or, with `reader`, as the
    read-only role of `vstore db reader`)."""
    from vstore.db.connect import database_url
    from vstore.db.pgwheel import tool

    if reader:
        if settings.database_url:
            raise ConfigError(
                "--reader works with the embedded server; with VSTORE_DATABASE_URL, run "
                "`vstore db reader` once and pass the URL it prints to `vstore db psql` as -d URL."
            )
        from vstore.db.roles import ensure_reader

        url = ensure_reader(settings).url
    else:
        url = database_url(settings)
    conninfo, secret = without_password(url)
    env = {**os.environ, **secret}
    env.pop("PGPASSFILE", None)
    return Invocation(argv=[str(tool("psql")), "-d", conninfo, *args], env=env)
