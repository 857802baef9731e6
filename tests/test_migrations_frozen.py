"""Released Alembic revisions are frozen (issue 10, item 8): no revision reads today's sql/ files or
imports today's SQL loader or table definitions, so editing sql/ or schema.py can never change what an old
revision does. Checked statically (every file in alembic/versions) and by running the migrations with
the sql/ folder out of reach."""

from __future__ import annotations

import ast
from pathlib import Path

import psycopg
import pytest

from vstore.resources import alembic_dir

# Modules whose content changes over time: a revision importing them runs today's code, not its own.
LIVE_MODULES = ("vstore.db.sql", "vstore.db.schema", "vstore.sql", "vstore.models", "vstore.resources")
LIVE_NAMES = {"sql_dir", "api_files", "load_sql"}

# The 0002 revision as first released (commit ad338de), which ran today's sql/api files.
UNFROZEN_0002 = """
from alembic import op

API_FILES = ("api/text", "api/search_images")


def upgrade() -> None:
    from vstore.sql import load

    op.execute("CREATE SCHEMA IF NOT EXISTS vstore")
    for name in API_FILES:
        op.execute(load(name))
"""


def live_reads(source: str) -> list[str]:
    """What in a revision's source depends on today's files rather than on its own text."""
    found = []
    for node in ast.walk(ast.parse(source)):
        modules: list[str] = []
        if isinstance(node, ast.Import):
            modules = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module:
            modules = [node.module] + [f"{node.module}.{alias.name}" for alias in node.names]
            found += [f"imports {alias.name}" for alias in node.names if alias.name in LIVE_NAMES]
        found += [f"imports {m}" for m in modules if m in LIVE_MODULES]
        if isinstance(node, ast.Name | ast.Attribute):
            name = node.id if isinstance(node, ast.Name) else node.attr
            if name in LIVE_NAMES:
                found.append(f"uses {name}")
        if isinstance(node, ast.Constant) and isinstance(node.value, str):
            text = node.value.strip()
            if text.endswith(".sql") or text.startswith(("sql/", "api/", "queries/")):
                found.append(f"names the file {text!r}")
    return found


def revision_files() -> list[Path]:
    return sorted((alembic_dir() / "versions").glob("*.py"))


def test_the_checker_catches_a_revision_that_runs_todays_sql_files():
    assert "imports vstore.sql" in live_reads(UNFROZEN_0002)
    assert "names the file 'api/text'" in live_reads(UNFROZEN_0002)
    assert (
        live_reads('op.execute("CREATE FUNCTION vstore.f() RETURNS int LANGUAGE sql AS $$ SELECT 1 $$")')
        == []
    )


@pytest.mark.parametrize("path", revision_files(), ids=lambda p: p.stem)
def test_no_revision_reads_todays_sql_files_or_schema_module(path):
    assert live_reads(path.read_text(encoding="utf-8")) == []


def test_the_sql_api_revisions_carry_their_own_sql():
    for path in revision_files():
        text = path.read_text(encoding="utf-8")
        if "vstore." in text and "FUNCTION" in text:
            assert "CREATE OR REPLACE FUNCTION" in text, path.name


def test_migrations_run_to_head_and_back_without_the_sql_folder(empty_settings, monkeypatch, tmp_path):
    import vstore.db.sql
    import vstore.resources
    from vstore.db.migrations import downgrade, head_revision, upgrade
    from vstore.encode.encoder import TINY_TEST_MODEL, ModelSpec

    vstore.db.sql.load.cache_clear()
    monkeypatch.setattr(vstore.resources, "sql_dir", lambda: tmp_path / "no-sql-here")
    monkeypatch.setattr(vstore.db.sql, "sql_dir", lambda: tmp_path / "no-sql-here")
    try:
        spec = ModelSpec(name=TINY_TEST_MODEL, pretrained="random", dim=32)
        assert upgrade(empty_settings, "head", spec) == head_revision()
        with psycopg.connect(empty_settings.database_url) as conn:
            functions = conn.execute(
                "SELECT count(*) FROM pg_proc p JOIN pg_namespace n ON n.oid = p.pronamespace "
                "WHERE n.nspname = 'vstore'"
            ).fetchone()[0]
        assert functions == 12
        assert downgrade(empty_settings, "base") == "base"
    finally:
        vstore.db.sql.load.cache_clear()


def test_the_sql_api_files_document_the_functions_at_head(settings):
    """sql/api/*.sql are not run by migrations, but they must say what head installs: running a file
    again changes no function body."""
    from vstore.db.sql import api_files, load

    query = (
        "SELECT p.proname, p.prosrc FROM pg_proc p JOIN pg_namespace n ON n.oid = p.pronamespace "
        "WHERE n.nspname = 'vstore' ORDER BY 1"
    )
    with psycopg.connect(settings.database_url) as conn:
        installed = conn.execute(query).fetchall()
        for name in api_files():
            conn.execute(load(name))
        assert conn.execute(query).fetchall() == installed
        conn.rollback()
