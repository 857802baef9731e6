"""Identifiers never reach SQL as text: a scan of the package for SQL built by string formatting, and every
command that takes a table, index, dataset or role name, given a hostile one."""

from __future__ import annotations

import ast
import re
from pathlib import Path

import pytest

import vstore
from vstore.cli import main
from vstore.db.connect import connection

HOSTILE = "images; DROP TABLE images"
SQL_START = re.compile(
    r"\s*(SELECT|INSERT|UPDATE|DELETE|DROP|CREATE|ALTER|ANALYZE|TRUNCATE|VACUUM|COPY|GRANT|REVOKE|SET|"
    r"EXPLAIN|WITH|REINDEX|CLUSTER|COMMENT|LOCK)\b"
)


def _harmless(node: ast.expr) -> bool:
    """A value that cannot carry an identifier: int()/float() of something, or a module CONSTANT."""
    if isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and node.func.id in ("int", "float"):
        return True
    return isinstance(node, ast.Name) and node.id.isupper()


def sql_built_from_text(source: str) -> list[tuple[int, str]]:
    """(line, code) of SQL statements built with f-strings, str.format or % from non-constant values."""
    found = []
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.JoinedStr):
            head = node.values[0] if node.values else None
            values = [v.value for v in node.values if isinstance(v, ast.FormattedValue)]
            if isinstance(head, ast.Constant) and SQL_START.match(str(head.value)):
                if not all(_harmless(v) for v in values):
                    found.append((node.lineno, ast.unparse(node)))
        elif (
            isinstance(node, ast.Call)
            and isinstance(node.func, ast.Attribute)
            and node.func.attr == "format"
            and isinstance(node.func.value, ast.Constant)
            and SQL_START.match(str(node.func.value.value))
        ):
            found.append((node.lineno, ast.unparse(node)))
        elif (
            isinstance(node, ast.BinOp)
            and isinstance(node.op, ast.Mod)
            and isinstance(node.left, ast.Constant)
            and SQL_START.match(str(node.left.value))
        ):
            found.append((node.lineno, ast.unparse(node)))
    return found


def test_the_scan_finds_sql_built_from_names():
    bad = 'conn.execute(f"SELECT count(*) FROM public.{table}")\n"DROP INDEX {}".format(name)\n'
    bad += '"ANALYZE %s" % table\n'
    ok = 'conn.execute(f"SET LOCAL hnsw.ef_search = {int(ef)}")\nraise E(f"no table {table}")\n'
    assert sorted(line for line, _ in sql_built_from_text(bad)) == [1, 2, 3]
    assert sql_built_from_text(ok) == []


def test_no_sql_in_the_package_is_built_by_string_formatting():
    package = Path(vstore.__file__).parent
    offenders = [
        f"{path.relative_to(package.parent)}:{line}: {code}"
        for path in sorted(package.rglob("*.py"))
        for line, code in sql_built_from_text(path.read_text())
    ]
    assert offenders == [], "use psycopg.sql.Identifier / sql.SQL(...).format:\n" + "\n".join(offenders)


@pytest.fixture
def cli_env(settings, monkeypatch):
    monkeypatch.setenv("VSTORE_DATABASE_URL", settings.database_url)
    monkeypatch.setenv("VSTORE_HOME", str(settings.home))
    return settings


@pytest.mark.parametrize(
    "args, code",
    [
        (["index", "create", "--target", HOSTILE, "--type", "ivfflat"], 2),
        (["index", "create", "--target", HOSTILE, "--type", "hnsw"], 2),
        (["index", "create", "--target", "images", "--type", "hnsw; DROP TABLE images"], 2),
        (["index", "drop", "--target", HOSTILE], 2),
        (["search", "--like", "1", "--target", HOSTILE], 2),
        (["search", "--like", "1", "--dataset", "x'; DROP TABLE images; --"], 1),
        (["export", "OUT", "--target", HOSTILE], 2),
        (["db", "reader", "--role", 'x"; DROP TABLE images; --'], 2),
    ],
)
def test_hostile_names_are_refused_and_nothing_is_dropped(cli_env, tmp_path, capsys, args, code):
    with connection(cli_env, autocommit=True) as conn:
        conn.execute(
            "INSERT INTO datasets (name, root, format) VALUES ('d', '/d', 'folder');"
            "INSERT INTO images (dataset_id, path, status, embedding) "
            "SELECT id, 'a.jpg', 'ok', array_fill(0.1, ARRAY[32])::vector FROM datasets"
        )
    args = [str(tmp_path / "out") if a == "OUT" else a for a in args]
    assert main(args) == code
    err = [line for line in capsys.readouterr().err.splitlines() if "random weights" not in line]
    assert len(err) == 1 and err[0].startswith("Error: ")
    with connection(cli_env, autocommit=True) as conn:
        assert conn.execute("SELECT count(*) FROM images").fetchone() == (1,)
        assert conn.execute("SELECT count(*) FROM pg_roles WHERE rolname LIKE 'x%'").fetchone() == (0,)
