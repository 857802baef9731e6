"""Authentication of the embedded server: every role logs in with a password (scram-sha-256), on the Unix
socket and on TCP alike; no trust line anywhere in pg_hba.conf.

The passwords live in `$VSTORE_HOME/pgpass` (mode 0600, libpq's passfile format, one `*:*:*:ROLE:PASSWORD`
line a role), so vstore, and the bundled tools through PGPASSFILE, log in without anyone typing them. URLs
printed for clients carry their own role's password. A home made by an earlier vstore (trust
authentication) is upgraded in place on its first start: passwords set for every login role, pg_hba.conf
rewritten, configuration reloaded.
"""

from __future__ import annotations

import os
import secrets
from pathlib import Path
from urllib.parse import quote

OWNER = "postgres"  # the superuser initdb makes; vstore's owner role on the embedded server
PASSFILE = "pgpass"
_HBA_MARK = "# written by vstore: scram-sha-256 for every role"
HBA = f"""{_HBA_MARK} (no trust lines; docs/operate.md)
# TYPE  DATABASE     USER  ADDRESS  METHOD
local   all          all            scram-sha-256
host    all          all   all      scram-sha-256
local   replication  all            scram-sha-256
host    replication  all   all      scram-sha-256
"""


def passfile(home: Path) -> Path:
    return home / PASSFILE


def passwords(home: Path) -> dict[str, str]:
    """Role -> password, from the home's passfile (empty when there is none)."""
    try:
        text = passfile(home).read_text()
    except FileNotFoundError:
        return {}
    found = {}
    for line in text.splitlines():
        fields = line.split(":")
        if len(fields) == 5 and not line.startswith("#"):
            found[fields[3]] = fields[4]
    return found


def remember(home: Path, role: str, password: str) -> None:
    """Store a role's password (0600 from the first byte; replaced atomically)."""
    known = passwords(home)
    known[role] = password
    home.mkdir(parents=True, exist_ok=True)
    tmp = passfile(home).with_suffix(f".tmp{os.getpid()}")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as handle:
        handle.write("# vstore: passwords of the embedded server's roles (libpq passfile format)\n")
        handle.writelines(f"*:*:*:{name}:{value}\n" for name, value in sorted(known.items()))
    os.replace(tmp, passfile(home))


def password_for(home: Path, role: str) -> str:
    """The stored password of `role`, made (and stored) on first use."""
    known = passwords(home).get(role)
    if known:
        return known
    new = new_password()
    remember(home, role, new)
    return new


def new_password() -> str:
    # URL-safe: no ':' or '\\' (the passfile's separators) and nothing a URL must escape
    return secrets.token_urlsafe(24)


def hba_is_ours(pgdata: Path) -> bool:
    try:
        return (pgdata / "pg_hba.conf").read_text().startswith(_HBA_MARK)
    except FileNotFoundError:
        return False


def write_hba(pgdata: Path) -> None:
    """Replace pg_hba.conf in place (keeps its owner and mode, which the server's user needs)."""
    with open(pgdata / "pg_hba.conf", "w") as handle:
        handle.write(HBA)


def socket_url(socket_dir: Path, port: int, role: str, password: str | None, database: str) -> str:
    """A libpq URL over the Unix socket."""
    userinfo = quote(role, safe="") + (":" + quote(password, safe="") if password else "")
    port_part = "" if port == 5432 else f"&port={port}"
    return f"postgresql://{userinfo}@/{database}?host={quote(str(socket_dir))}{port_part}"


def upgrade_from_trust(home: Path, trust_url: str, pgdata: Path) -> list[str]:
    """Set a password for every login role that has none (the owner's first), rewrite pg_hba.conf and
    reload. `trust_url` logs in as the owner without a password (the old home's trust line). Returns the
    roles that got a password. The socket is in a 0700 folder, so only this OS user reaches the server
    while the old trust lines still apply."""
    import psycopg
    from psycopg import sql

    changed = []
    with psycopg.connect(trust_url, autocommit=True, connect_timeout=10) as conn:
        rows = conn.execute(
            "SELECT rolname FROM pg_authid WHERE rolcanlogin AND (rolpassword IS NULL OR rolname = %s) "
            "ORDER BY rolname <> %s, rolname",
            (OWNER, OWNER),
        ).fetchall()  # the owner always: a password it may have had is one vstore cannot know
        for (role,) in rows:
            secret = password_for(home, role)
            alter = sql.SQL("ALTER ROLE {} PASSWORD {}").format(sql.Identifier(role), sql.Literal(secret))
            conn.execute(alter)
            changed.append(role)
        write_hba(pgdata)
        conn.execute("SELECT pg_reload_conf()")
    _wait_until_refused(trust_url)
    return changed


def _wait_until_refused(trust_url: str, timeout_s: float = 10.0) -> None:
    """The postmaster rereads pg_hba.conf on SIGHUP, a moment after pg_reload_conf() returns; wait until a
    login without a password is refused, so no caller sees the old trust lines after the upgrade."""
    import time

    import psycopg

    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        try:
            # no passfile: libpq must not find this very password in ~/.pgpass or PGPASSFILE
            psycopg.connect(trust_url, connect_timeout=5, passfile="/nonexistent/vstore").close()
        except psycopg.OperationalError:
            return
        time.sleep(0.05)
    from vstore.errors import EmbeddedServerError

    raise EmbeddedServerError(
        "the embedded server still accepts logins without a password after its pg_hba.conf was rewritten; "
        "run `vstore db stop` and start it again."
    )
