"""Bad configurations give one clear line, exit code 1 (2 for bad options), and no traceback."""

from __future__ import annotations

import os
import subprocess
import sys

import psycopg
import pytest

from tests.conftest import with_database
from vstore.db.roles import role_url


def _run(*args: str, **env: str) -> subprocess.CompletedProcess:
    base = {k: v for k, v in os.environ.items() if not k.startswith("VSTORE_")}
    return subprocess.run(
        [sys.executable, "-m", "vstore", *args],
        env={**base, **env},
        capture_output=True,
        text=True,
        timeout=120,
    )


@pytest.mark.slow
def test_help_does_not_import_torch():
    code = (
        "import sys; from vstore.cli import main; main(['--help']); "
        "print('HEAVY', sorted(m for m in ('torch', 'open_clip', 'faiss', 'sklearn', 'matplotlib') "
        "if m in sys.modules))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert "HEAVY []" in out.stdout, out.stdout + out.stderr


@pytest.mark.slow
def test_unreachable_server_is_one_line_naming_the_fix(tmp_path):
    result = _run(
        "db", "status", VSTORE_DATABASE_URL="postgresql://nobody@127.0.0.1:1/none", VSTORE_HOME=str(tmp_path)
    )
    assert result.returncode == 1
    assert "Traceback" not in result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1
    assert "cannot connect to PostgreSQL" in lines[0] and "VSTORE_DATABASE_URL" in lines[0]


@pytest.mark.slow
def test_missing_database_is_reported_with_the_fix(server_url, tmp_path):
    result = _run(
        "db", "status", VSTORE_DATABASE_URL=with_database(server_url, "no_such_db"), VSTORE_HOME=str(tmp_path)
    )
    assert result.returncode == 1
    assert "does not exist" in result.stderr and "createdb" in result.stderr
    assert "Traceback" not in result.stderr


@pytest.mark.slow
def test_a_user_who_may_not_create_the_vector_extension_gets_a_clear_error(server_url, tmp_path):
    admin = with_database(server_url, "postgres")
    with psycopg.connect(admin, autocommit=True) as conn:
        conn.execute("DROP DATABASE IF EXISTS no_vector_db")
        conn.execute("DROP ROLE IF EXISTS limited_user")
        conn.execute("CREATE ROLE limited_user LOGIN NOSUPERUSER PASSWORD 'limited-pw'")
        conn.execute("CREATE DATABASE no_vector_db OWNER limited_user")
    url = role_url(with_database(server_url, "no_vector_db"), "limited_user", "limited-pw")
    try:
        result = _run("db", "upgrade", VSTORE_DATABASE_URL=url, VSTORE_HOME=str(tmp_path))
        assert result.returncode == 1
        assert "may not create the extension" in result.stderr
        assert "CREATE EXTENSION vector" in result.stderr
        assert "Traceback" not in result.stderr
    finally:
        with psycopg.connect(admin, autocommit=True) as conn:
            conn.execute("DROP DATABASE IF EXISTS no_vector_db WITH (FORCE)")
            conn.execute("DROP ROLE IF EXISTS limited_user")


@pytest.mark.slow
def test_bad_option_exits_2(tmp_path):
    result = _run("db", "no-such-command", VSTORE_HOME=str(tmp_path))
    assert result.returncode == 2
    assert "Traceback" not in result.stderr


@pytest.mark.slow
def test_bad_integer_setting_is_a_config_error(tmp_path):
    result = _run("db", "status", VSTORE_BATCH_SIZE="many", VSTORE_HOME=str(tmp_path))
    assert result.returncode == 2
    assert "VSTORE_BATCH_SIZE" in result.stderr


def test_init_refuses_a_second_model_on_the_same_database(settings):
    import pytest

    from vstore.db.migrations import init
    from vstore.errors import ModelMismatch

    with pytest.raises(ModelMismatch, match="vstore-tiny/random"):
        init(settings, model="RN50", pretrained="random")
    assert init(settings, model="vstore-tiny", pretrained="random").dim == 32


def test_unwritable_output_file_is_one_line_not_a_traceback(monkeypatch, capsys):
    from vstore.cli import _run as run_cli
    from vstore.cli.app import app

    @app.command("raise-oserror-for-test", hidden=True)
    def _raise() -> None:
        open("/no/such/dir/out.json", "w")

    try:
        assert run_cli(["raise-oserror-for-test"]) == 1
    finally:
        app.registered_commands.pop()
    err = capsys.readouterr().err
    assert err.startswith("Error: ") and "/no/such/dir/out.json" in err and "Traceback" not in err
