"""One PostgreSQL data folder ("cluster") run with the bundled programs: initdb, start, stop, who runs it,
and the lock files of a server that is gone. Used for the embedded home (vstore/db/embedded.py) and for any
second server on its own data folder and socket, such as a replica.

PostgreSQL refuses to run as root: when vstore runs as root the server runs as the owner of the data folder,
or, for a new one, as the system user SYSTEM_USER (created once with useradd, as both embedded wheels do).
"""

from __future__ import annotations

import os
import shlex
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from vstore.db.pgwheel import tool
from vstore.errors import EmbeddedServerError

SYSTEM_USER = "vstore-postgres"
START_TIMEOUT_S = 120  # crash recovery after a SIGKILL during a large load replays WAL for a while
TOOL_TIMEOUT_S = 120


@dataclass(frozen=True)
class Postmaster:
    """The data folder's postmaster.pid: which process serves it, where, and whether it is ready."""

    pid: int
    pgdata: Path
    port: int
    socket_dir: Path | None
    listen: str  # listen_addresses ('' = Unix socket only)
    status: str  # starting, ready, stopping, standby

    @property
    def running(self) -> bool:
        return is_our_postmaster(self, self.pgdata)


def read_postmaster(pgdata: Path) -> Postmaster | None:
    """The pid file, or None when there is none or it is half-written or garbage."""
    try:
        lines = (pgdata / "postmaster.pid").read_text().splitlines()
        return Postmaster(
            pid=int(lines[0]),
            pgdata=Path(lines[1]),
            port=int(lines[3]),
            socket_dir=Path(lines[4]) if lines[4].strip() else None,
            listen=lines[5].strip(),
            status=lines[7].strip() if len(lines) > 7 else "starting",
        )
    except (OSError, ValueError, IndexError):
        return None


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


def is_our_postmaster(info: Postmaster | None, pgdata: Path) -> bool:
    """True when the pid in postmaster.pid is a live postgres serving this very data dir. A pid reused by
    another program, or by the postmaster of another cluster, is not ours: never signal it."""
    if info is None:
        return False
    import psutil

    try:
        proc = psutil.Process(info.pid)
        return proc.name() == "postgres" and proc.status() != psutil.STATUS_ZOMBIE and _serves(proc, pgdata)
    except psutil.Error:  # gone, or vanished while we looked
        return False


def _socket_lock_is_ours(socket: Path, pgdata: Path) -> bool:
    """A socket lock file names the data directory on its second line; only ours may be removed."""
    try:
        lines = socket.with_name(socket.name + ".lock").read_text().splitlines()
    except OSError:
        return False
    return len(lines) > 1 and _same_dir(lines[1], pgdata)


def clear_stale_pid_file(pgdata: Path) -> None:
    """Remove the lock files of a postmaster that is gone. PostgreSQL would itself ignore a lock file whose
    pid is dead, but a SIGKILLed postmaster can linger as a zombie (no init reaping in containers) and a
    recycled pid can belong to another program; both look alive to kill(pid, 0)."""
    pid_file = pgdata / "postmaster.pid"
    info = read_postmaster(pgdata)
    if not pid_file.exists() or is_our_postmaster(info, pgdata):
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


def server_os_user(pgdata: Path | None = None) -> str | None:
    """The operating-system user the server runs as: None (this process's user) unless vstore runs as root;
    then the owner of an existing data folder, else SYSTEM_USER (created here if missing)."""
    if os.geteuid() != 0:
        return None
    import pwd

    if pgdata is not None and pgdata.exists() and pgdata.stat().st_uid != 0:
        return pwd.getpwuid(pgdata.stat().st_uid).pw_name
    try:
        pwd.getpwnam(SYSTEM_USER)
    except KeyError:
        flags = ["--system", "--user-group", "--no-create-home", "--shell", "/usr/sbin/nologin"]
        done = subprocess.run(["useradd", *flags, SYSTEM_USER], capture_output=True, text=True)
        if done.returncode != 0 and "already exists" not in done.stderr:
            raise EmbeddedServerError(
                f"PostgreSQL does not run as root and creating the system user {SYSTEM_USER} failed: "
                f"{done.stderr.strip()}. Create it (useradd --system {SYSTEM_USER}) or run vstore as a "
                "normal user."
            ) from None
    return SYSTEM_USER


def hand_to(path: Path, user: str | None, mode: int | None = None) -> None:
    """Give a folder (not its contents) to the server's user, and make every folder above it passable
    (o+x only: no listing) so that user can reach it. Nothing to do when vstore is not root."""
    if mode is not None:
        path.chmod(mode)
    if user is None:
        return
    import pwd
    import stat

    entry = pwd.getpwnam(user)
    os.chown(path, entry.pw_uid, entry.pw_gid)
    for parent in path.resolve().parents:
        if not parent.stat().st_mode & stat.S_IXOTH:
            parent.chmod(parent.stat().st_mode | stat.S_IXOTH)


def as_user(user: str | None) -> dict[str, Any]:
    """subprocess keywords that run a program as `user` with that user's own group and no other (root's
    group would otherwise stay and make folders with group bits unreadable to it)."""
    if user is None:
        return {}
    import pwd

    entry = pwd.getpwnam(user)
    return {"user": entry.pw_uid, "group": entry.pw_gid, "extra_groups": []}


def run_tool(name: str, args: list[str], *, what: str, user: str | None = None,
             env: dict[str, str] | None = None, timeout_s: float = TOOL_TIMEOUT_S) -> str:  # fmt: skip
    """Run a bundled program (as `user` when vstore is root); its stdout, or EmbeddedServerError naming
    the step and the program's own last line."""
    try:
        done = subprocess.run(
            [str(tool(name)), *args],
            capture_output=True,
            text=True,
            timeout=timeout_s,
            **as_user(user),
            env={**os.environ, **(env or {})},
            cwd="/",  # a program run as another user must not start in a folder it cannot enter
        )
    except subprocess.TimeoutExpired:
        raise EmbeddedServerError(f"{what}: {name} did not finish within {timeout_s:.0f} s.") from None
    if done.returncode != 0:
        lines = [line.strip() for line in done.stderr.splitlines() if line.strip()]
        errors = [line for line in lines if "error:" in line or "FATAL" in line] or lines[-1:]
        told = " / ".join(dict.fromkeys(errors[:2] + lines[-1:])) or f"exit status {done.returncode}"
        raise EmbeddedServerError(f"{what}: {name} failed: {told}")
    return done.stdout


def initdb(pgdata: Path, owner: str, password: str, user: str | None) -> None:
    """A new data folder whose every role logs in with scram-sha-256 (no trust, ever)."""
    pgdata.mkdir(parents=True, exist_ok=True)
    hand_to(pgdata, user, 0o700)
    pwfile = pgdata.parent / f".initdb-pw-{os.getpid()}"
    with os.fdopen(os.open(pwfile, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600), "w") as handle:
        handle.write(password + "\n")  # 0600 from the first byte
    try:
        hand_to(pwfile, user, 0o600)
        run_tool(
            "initdb",
            ["-D", str(pgdata), "-U", owner, f"--pwfile={pwfile}", "--auth=scram-sha-256", "--encoding=utf8"],
            what=f"initialise the embedded PostgreSQL in {pgdata}",
            user=user,
        )
    finally:
        pwfile.unlink(missing_ok=True)


def start_cluster(pgdata: Path, socket_dir: Path, *, port: int = 5432, listen: str = "",
                  log: Path | None = None, user: str | None = None) -> Postmaster:  # fmt: skip
    """Start the server of an initialised data folder on its own socket folder (made 0700 here) and,
    with `listen` (an address; '' = none), on TCP `port`; wait until it accepts connections. `user` is the
    OS user that runs it when vstore is root (server_os_user(pgdata))."""
    socket_dir.mkdir(parents=True, exist_ok=True)
    hand_to(socket_dir, user, 0o700)
    log = log or pgdata / "log"
    options = f"-k {shlex.quote(str(socket_dir))} -p {port} -h {shlex.quote(listen)}"  # pg_ctl runs sh
    run_tool(
        "pg_ctl",
        ["-D", str(pgdata), "-l", str(log), "-w", "-t", str(START_TIMEOUT_S), "-o", options, "start"],
        what=f"start the PostgreSQL server in {pgdata} (its log: {log})",
        user=user,
        timeout_s=START_TIMEOUT_S + 10,
    )
    info = read_postmaster(pgdata)
    if info is None or not is_our_postmaster(info, pgdata):
        raise EmbeddedServerError(f"the server in {pgdata} exited right after starting; read {log}.")
    return info


def stop_cluster(pgdata: Path, *, mode: str = "fast", user: str | None = None) -> bool:
    """Stop the server of a data folder (fast: running statements are rolled back). False when it was not
    running (stale lock files are removed)."""
    if not is_our_postmaster(read_postmaster(pgdata), pgdata):
        if pgdata.exists():
            clear_stale_pid_file(pgdata)
        return False
    run_tool(
        "pg_ctl",
        ["-D", str(pgdata), "-m", mode, "-w", "-t", str(START_TIMEOUT_S), "stop"],
        what=f"stop the PostgreSQL server in {pgdata}",
        user=user if user is not None else server_os_user(pgdata),
        timeout_s=START_TIMEOUT_S + 10,
    )
    return True
