"""Streaming read replicas of the embedded primary (`vstore db replica ...`).

Each replica is a hot standby in `$VSTORE_HOME/replicas/NAME/pg`, made by pg_basebackup -R from the
running primary, fed by streaming replication through a physical replication slot (`vstore_NAME`: the
primary keeps the WAL a stopped replica still needs), listening on its own Unix socket in its data folder.
Searches can go to it (`vstore db replica url NAME`, `vstore serve --replicas`); writes cannot (a standby
is read-only). Promotion turns a replica into the home's primary while the old primary is stopped.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import shutil
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from urllib.parse import quote, urlencode, urlsplit, urlunsplit

import psycopg

from vstore.config import Settings
from vstore.db import pgtools
from vstore.db.cluster import is_our_postmaster, read_postmaster, start_cluster, stop_cluster
from vstore.errors import ConfigError, NotFound, VstoreError

MARKER = "vstore-replica.json"
_NAME = re.compile(r"[a-z][a-z0-9_]{0,30}")
# A hot standby cancels a query that conflicts with WAL it must replay; feedback tells the primary to keep
# rows a replica's running search still reads, so searches on a replica are not cancelled by vacuum.
_STANDBY_CONF = """
# written by vstore (streaming replica)
hot_standby = on
hot_standby_feedback = on
max_standby_streaming_delay = '30s'
"""
# How far a replica may fall behind before its state says so; `vstore serve --replicas` skips it beyond.
LAG_QUERY = (
    "SELECT pg_is_in_recovery(), CASE WHEN NOT pg_is_in_recovery() THEN 0 "
    "WHEN pg_last_wal_receive_lsn() = pg_last_wal_replay_lsn() THEN 0 "
    "ELSE coalesce(extract(epoch FROM now() - pg_last_xact_replay_timestamp()), 0) END::float8"
)

# The primary's view: replay_lag is measured from WAL positions (valid inside a long transaction too);
# behind is the WAL written on the primary that the replica has not replayed.
PRIMARY_LAG_QUERY = (
    "SELECT state, coalesce(extract(epoch FROM replay_lag), 0)::float8, "
    "pg_wal_lsn_diff(pg_current_wal_lsn(), replay_lsn)::bigint FROM pg_stat_replication "
    "WHERE application_name = %s"
)


@dataclass(frozen=True)
class Replica:
    name: str
    pgdata: Path
    running: bool
    state: str  # streaming, catchup, ... (the primary's view), stopped, down, or promoted (not a standby)
    lag_s: float | None  # replay lag in seconds: 0 when it has replayed all it received
    lag_bytes: int | None  # WAL the primary sent that the replica has not replayed yet
    url: str | None  # the owner's URL of the replica (reader URLs come from replica_url)


def replicas_dir(settings: Settings) -> Path:
    return settings.home / "replicas"


def _folder(settings: Settings, name: str) -> Path:
    if not _NAME.fullmatch(name):
        raise ConfigError(f"replica name {name!r}: use lower-case letters, digits and _ (at most 31).")
    return replicas_dir(settings) / name


def _slot(name: str) -> str:
    return f"vstore_{name}"


def with_socket(url: str, socket: Path | str) -> str:
    """The same URL (user, password, database) pointed at another Unix socket folder."""
    parts = urlsplit(url)
    query = [(k, v) for k, v in (p.split("=", 1) for p in parts.query.split("&") if "=" in p) if k != "host"]
    query.append(("host", str(socket)))
    return urlunsplit(parts._replace(query=urlencode(query, quote_via=quote, safe="/")))


def names(settings: Settings) -> list[str]:
    folder = replicas_dir(settings)
    return sorted(p.name for p in folder.iterdir() if (p / MARKER).is_file()) if folder.is_dir() else []


def _primary_url(settings: Settings) -> str:
    pgtools.require_embedded(settings, "vstore db replica")
    from vstore.db import embedded

    return embedded.start(settings)


def add(settings: Settings, name: str | None = None) -> Replica:
    """Create a streaming replica of the running primary and start it."""
    primary = _primary_url(settings)
    existing = names(settings)
    name = name or next(f"r{i}" for i in range(1, 1000) if f"r{i}" not in existing)
    folder = _folder(settings, name)
    if folder.exists():
        raise ConfigError(f"replica {name} exists ({folder}); pick another name or remove it first.")
    pgdata = folder / "pg"
    with psycopg.connect(primary, autocommit=True) as conn:
        slot = conn.execute("SELECT active FROM pg_replication_slots WHERE slot_name = %s", (_slot(name),))
        row = slot.fetchone()
        if row is not None and row[0]:
            raise ConfigError(
                f"replication slot {_slot(name)} is in use by another standby; pick another name."
            )
        if row is not None:  # left by a replica whose folder was deleted by hand
            conn.execute("SELECT pg_drop_replication_slot(%s)", (_slot(name),))
        conn.execute("SELECT pg_create_physical_replication_slot(%s, true)", (_slot(name),))
    folder.mkdir(parents=True)
    try:
        conninfo, env = pgtools.split_password(primary)
        pgtools.run(
            "pg_basebackup",
            [
                "-d",
                f"{conninfo} application_name={name}",
                "-D",
                str(pgdata),
                "-X",
                "stream",
                "-R",
                "-S",
                _slot(name),
                "-c",
                "fast",
                "--no-manifest",
            ],
            what=f"copy the primary for replica {name}",
            env=env,
        )
        with open(pgdata / "postgresql.conf", "a") as conf:
            conf.write(_STANDBY_CONF)
        pgtools.hand_to_server(pgdata, pgtools.server_os_user(settings.pgdata))
        created = datetime.now(UTC).isoformat(timespec="seconds")
        (folder / MARKER).write_text(json.dumps({"name": name, "slot": _slot(name), "created_at": created}))
        start(settings, name)
    except BaseException:
        stop_cluster(pgdata)
        shutil.rmtree(folder, ignore_errors=True)
        with psycopg.connect(primary, autocommit=True) as conn:
            conn.execute(
                "SELECT pg_drop_replication_slot(slot_name) FROM pg_replication_slots WHERE slot_name = %s",
                (_slot(name),),
            )
        raise
    return replica(settings, name)


def _socket(pgdata: Path) -> Path:
    """The replica's socket folder: `run` beside its data folder, or a short one in /tmp when that path
    is too long for a Unix socket (107 bytes for the socket's whole path)."""
    preferred = pgdata.parent.resolve() / "run"
    if len(str(preferred / ".s.PGSQL.65535")) < 100:
        return preferred
    return Path("/tmp") / f"vstore-{hashlib.sha256(str(preferred).encode()).hexdigest()[:12]}"


def _running(pgdata: Path) -> bool:
    return is_our_postmaster(read_postmaster(pgdata), pgdata)


def _pgdata(settings: Settings, name: str) -> Path:
    folder = _folder(settings, name)
    if not (folder / MARKER).is_file():
        known = ", ".join(names(settings)) or "none"
        raise NotFound(f"no replica named {name} in {replicas_dir(settings)} (replicas: {known}).")
    return folder / "pg"


def start(settings: Settings, name: str) -> None:
    """Start a replica's server (after a reboot, or after `stop`); a running one is left alone."""
    pgdata = _pgdata(settings, name)
    if not _running(pgdata):
        start_cluster(pgdata, _socket(pgdata), user=pgtools.server_os_user(pgdata))


def stop(settings: Settings, name: str) -> bool:
    return stop_cluster(_pgdata(settings, name))


def replica(settings: Settings, name: str) -> Replica:
    """State and lag of one replica, from the replica itself and (when it runs) the primary."""
    from vstore.db import embedded

    pgdata = _pgdata(settings, name)
    running = _running(pgdata)
    primary = embedded.status(settings).url
    url = _owner_url(settings, pgdata)
    state, lag_s, lag_bytes = ("stopped" if not running else "down"), None, None
    if running:
        try:
            with psycopg.connect(url, autocommit=True, connect_timeout=5) as conn:
                in_recovery, lag_s = conn.execute(LAG_QUERY).fetchone()  # type: ignore[misc]
            state = "standby" if in_recovery else "promoted"
        except psycopg.Error:
            state = "down"
    if primary is not None and state == "standby":
        with psycopg.connect(primary, autocommit=True, connect_timeout=5) as conn:
            row = conn.execute(PRIMARY_LAG_QUERY, (name,)).fetchone()
        if row is None:
            state = "not connected"
        else:  # the primary's measure: the replica's own clock only moves at commits
            state, lag_s, lag_bytes = row[0], (row[1] if row[2] else 0.0), row[2]
    return Replica(name, pgdata, running, state, lag_s, lag_bytes, url if running else None)


def _owner_url(settings: Settings, pgdata: Path) -> str:
    """The owner's URL of a replica (the catalog, and so the password, is the primary's)."""
    from vstore.db import auth
    from vstore.db.embedded import DATABASE_NAME

    password = auth.passwords(settings.home).get(auth.OWNER)
    return auth.socket_url(_socket(pgdata), 5432, auth.OWNER, password, DATABASE_NAME)


def list_replicas(settings: Settings) -> list[Replica]:
    return [replica(settings, name) for name in names(settings)]


def reader_url(settings: Settings, name: str) -> str:
    """A reader-role URL of the replica: SELECT and vstore.* functions only (the role is created on the
    primary, so the primary must run)."""
    from vstore.db.roles import ensure_reader

    pgdata = _pgdata(settings, name)
    url = with_socket(ensure_reader(settings).url, _socket(pgdata))
    catch_up(settings, name)  # the role exists on the replica once it has replayed its creation
    return url


def catch_up(settings: Settings, name: str, timeout_s: float = 60.0) -> float:
    """Wait until the replica has replayed everything the primary has written so far; return the seconds
    waited. Raises after `timeout_s` naming how far behind it still is."""
    import time

    pgdata = _pgdata(settings, name)
    primary = _primary_url(settings)
    with psycopg.connect(primary, autocommit=True) as conn:
        target = conn.execute("SELECT pg_current_wal_lsn()::text").fetchone()[0]  # type: ignore[index]
    started = time.monotonic()
    with psycopg.connect(_owner_url(settings, pgdata), autocommit=True, connect_timeout=5) as conn:
        while True:
            behind = conn.execute(
                "SELECT pg_wal_lsn_diff(%s::pg_lsn, pg_last_wal_replay_lsn())::bigint", (target,)
            ).fetchone()[0]  # type: ignore[index]
            if behind is None or behind <= 0:
                return time.monotonic() - started
            if time.monotonic() - started > timeout_s:
                raise VstoreError(
                    f"replica {name} is still {behind} bytes of WAL behind the primary after "
                    f"{timeout_s:.0f} s; "
                    f"see `vstore db replica list` and its log {pgdata / 'log'}."
                )
            time.sleep(0.05)


def remove(settings: Settings, name: str) -> None:
    """Stop a replica, drop its slot on the primary (so the primary stops keeping WAL for it), delete it."""
    pgdata = _pgdata(settings, name)
    stop_cluster(pgdata)
    with psycopg.connect(_primary_url(settings), autocommit=True) as conn:
        conn.execute(
            "SELECT pg_drop_replication_slot(slot_name) FROM pg_replication_slots WHERE slot_name = %s",
            (_slot(name),),
        )
    shutil.rmtree(pgdata.parent)


def promote(settings: Settings, name: str) -> Path:
    """Make a replica the home's primary. The old primary must be stopped (two primaries would diverge);
    its data folder is kept beside the new one, and the path is returned."""
    from vstore.db import embedded

    pgtools.require_embedded(settings, "vstore db replica promote")
    pgdata = _pgdata(settings, name)
    if embedded.status(settings).running:
        raise VstoreError(
            "the primary is running; stop it first (`vstore db stop`) so that only one server takes "
            "writes, then promote."
        )
    start(settings, name)
    user = pgtools.server_os_user(pgdata)
    pgtools.run(
        "pg_ctl", ["-D", str(pgdata), "-w", "-t", "120", "promote"], what=f"promote {name}", user=user
    )
    stop_cluster(pgdata)
    auto = pgdata / "postgresql.auto.conf"
    kept = [
        line
        for line in auto.read_text().splitlines()
        if not line.startswith(("primary_conninfo", "primary_slot_name"))
    ]
    auto.write_text("\n".join(kept) + "\n")
    old = settings.pgdata.with_name(f"{settings.pgdata.name}.before-promote-{datetime.now():%Y%m%d-%H%M%S}")
    if settings.pgdata.exists():
        os.rename(settings.pgdata, old)
    os.rename(pgdata, settings.pgdata)
    shutil.rmtree(pgdata.parent)
    embedded.start(settings)
    return old
