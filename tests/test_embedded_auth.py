"""Authentication of the embedded server: a password (scram-sha-256) for every role, on the socket and on TCP;
credentials in a 0600 file; the socket in a 0700 folder; `vstore db psql` with no system client."""

from __future__ import annotations

import os
import socket
import stat
import subprocess
import sys
from pathlib import Path

import psycopg
import pytest

from tests.conftest import TINY_SPEC
from vstore.cli import main
from vstore.config import Settings
from vstore.db import auth, embedded
from vstore.db.roles import ensure_reader, role_url


def _refused(url: str, tmp_path: Path) -> str:
    """The server's one-line refusal of `url` (no passfile: libpq must not find a password elsewhere)."""
    with pytest.raises(psycopg.OperationalError) as caught:
        psycopg.connect(url, passfile=str(tmp_path / "none"), connect_timeout=10).close()
    return str(caught.value)


def test_the_reader_url_with_the_user_renamed_to_postgres_is_refused(settings, tmp_path):
    # issue 20, hostile case 1: the reader's URL with its user renamed to postgres used to be a superuser.
    # (Roles are global to the session's server: another name than vstore_reader, which test_access makes.)
    reader = ensure_reader(settings, "hostile_reader")
    password = psycopg.conninfo.conninfo_to_dict(reader.url)["password"]
    assert password
    with psycopg.connect(reader.url) as conn:
        assert conn.execute("SELECT current_user").fetchone() == ("hostile_reader",)
    renamed = role_url(reader.url, "postgres", str(password))
    assert "password authentication failed" in _refused(renamed, tmp_path)
    assert "no password supplied" in _refused(role_url(reader.url, "postgres", None), tmp_path)
    assert "no password supplied" in _refused(role_url(reader.url, "hostile_reader", None), tmp_path)
    wrong = role_url(reader.url, "hostile_reader", "guess")
    assert "password authentication failed" in _refused(wrong, tmp_path)


def test_every_rule_of_the_embedded_server_asks_for_a_scram_password(server_settings, server_url):
    with psycopg.connect(server_url.replace("/vstore?", "/postgres?"), autocommit=True) as conn:
        rules = conn.execute("SELECT type, auth_method FROM pg_hba_file_rules").fetchall()
        assert conn.execute("SHOW password_encryption").fetchone() == ("scram-sha-256",)
        stored = conn.execute("SELECT rolpassword FROM pg_authid WHERE rolname = 'postgres'").fetchone()[0]
    assert {method for _, method in rules} == {"scram-sha-256"}
    assert {kind for kind, _ in rules} == {"local", "host"}
    assert stored.startswith("SCRAM-SHA-256$")
    passfile = auth.passfile(server_settings.home)
    assert stat.S_IMODE(passfile.stat().st_mode) == 0o600
    assert stat.S_IMODE(embedded.socket_dir(server_settings).stat().st_mode) == 0o700
    assert (
        psycopg.conninfo.conninfo_to_dict(server_url)["password"]
        == auth.passwords(server_settings.home)["postgres"]
    )


def _vstore(home: Path, *args: str, path: str | None = None) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("VSTORE_", "PG"))}
    env["VSTORE_HOME"] = str(home)
    if path is not None:
        env["PATH"] = path
    return subprocess.run(
        [sys.executable, "-m", "vstore", *args], env=env, capture_output=True, text=True, timeout=120
    )


@pytest.mark.slow
def test_db_url_and_db_reader_print_urls_with_passwords_that_stay_the_same(tmp_path, monkeypatch, capsys):
    from vstore.db.migrations import upgrade

    home = tmp_path / "home"
    settings = Settings(home=home)
    monkeypatch.setenv("VSTORE_HOME", str(home))
    monkeypatch.delenv("VSTORE_DATABASE_URL", raising=False)
    try:
        upgrade(settings, "head", TINY_SPEC)
        assert main(["db", "url"]) == 0
        owner = capsys.readouterr().out.strip()
        assert main(["db", "reader"]) == 0
        reader = capsys.readouterr().out.strip()
        assert main(["db", "reader"]) == 0
        assert capsys.readouterr().out.strip() == reader  # the embedded reader's password is kept
        for url, user in ((owner, "postgres"), (reader, "vstore_reader")):
            assert psycopg.conninfo.conninfo_to_dict(url)["password"] == auth.passwords(home)[user]
            with psycopg.connect(url) as conn:
                assert conn.execute("SELECT current_user").fetchone() == (user,)
        renamed = role_url(reader, "postgres", str(psycopg.conninfo.conninfo_to_dict(reader)["password"]))
        assert "password authentication failed" in _refused(renamed, tmp_path)
    finally:
        embedded.stop(settings)


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.mark.slow
def test_listen_opens_tcp_with_passwords_and_is_off_by_default(tmp_path):
    home = tmp_path / "home"
    settings = Settings(home=home)
    port = _free_port()
    try:
        url = embedded.start(settings)
        with psycopg.connect(url) as conn:
            assert conn.execute("SHOW listen_addresses").fetchone() == ("",)
        busy = _vstore(home, "db", "start", "--listen", f"127.0.0.1:{port}")
        assert busy.returncode == 1 and "vstore db stop" in busy.stderr  # says how, changes nothing
        assert embedded.stop(settings)
        started = _vstore(home, "db", "start", "--listen", f"127.0.0.1:{port}")
        assert started.returncode == 0, started.stderr
        password = auth.passwords(home)["postgres"]
        with psycopg.connect(f"postgresql://postgres:{password}@127.0.0.1:{port}/vstore") as conn:
            assert conn.execute("SELECT inet_server_port()").fetchone() == (port,)
        tcp = f"postgresql://postgres@127.0.0.1:{port}/vstore"
        assert "no password supplied" in _refused(tcp, tmp_path)
        assert "password authentication failed" in _refused(tcp.replace("postgres@", "postgres:x@"), tmp_path)
        assert embedded.status(settings).listen == f"127.0.0.1:{port}"
        bad = _vstore(home, "db", "start", "--listen", "nowhere")
        assert bad.returncode == 2 and "ADDRESS:PORT" in bad.stderr
    finally:
        embedded.stop(settings)


@pytest.mark.slow
def test_db_psql_runs_the_bundled_client_with_no_psql_on_path(tmp_path):
    home = tmp_path / "home"
    empty = tmp_path / "bin"
    empty.mkdir()
    try:
        one = _vstore(home, "db", "psql", "-Atc", "select 1", path=str(empty))
        assert one.returncode == 0, one.stderr
        assert one.stdout.strip() == "1"
        who = _vstore(home, "db", "psql", "-Atc", "select current_user", path=str(empty))
        assert who.stdout.strip() == "postgres"
        failed = _vstore(home, "db", "psql", "-c", "select nosuch", path=str(empty))
        assert failed.returncode != 0 and "nosuch" in failed.stderr  # psql's own exit status and message
        version = _vstore(home, "db", "psql", "--", "--version", path=str(empty))
        assert version.stdout.startswith("psql (PostgreSQL) 18")
    finally:
        embedded.stop(Settings(home=home))


@pytest.mark.slow
def test_db_psql_reader_logs_in_as_the_read_only_role(tmp_path):
    from vstore.db.migrations import upgrade

    home = tmp_path / "home"
    try:
        upgrade(Settings(home=home), "head", TINY_SPEC)
        who = _vstore(home, "db", "psql", "--reader", "-Atc", "select current_user")
        assert who.returncode == 0, who.stderr
        assert who.stdout.strip() == "vstore_reader"
        write = _vstore(home, "db", "psql", "--reader", "-c", "create table t (x int)")
        assert write.returncode != 0 and "read-only" in write.stderr + write.stdout
    finally:
        embedded.stop(Settings(home=home))


@pytest.mark.slow
def test_a_lost_password_file_is_one_error_that_says_how_to_recover(tmp_path):
    home = tmp_path / "home"
    settings = Settings(home=home)
    try:
        embedded.start(settings)
        auth.passfile(home).unlink()
        result = _vstore(home, "db", "url")
        assert result.returncode == 1 and result.stdout == ""
        lines = result.stderr.strip().splitlines()
        assert len(lines) == 1 and "does not have it" in lines[0] and "--single" in lines[0], lines
    finally:
        embedded.stop(settings)
