"""Loads the SQL kept in sql/ by name: sql/api/*.sql (functions of the SQL API, installed by migrations)
and sql/queries/*.sql (the hot queries, one statement per file)."""

from __future__ import annotations

from functools import cache

from vstore.errors import NotFound
from vstore.resources import sql_dir


@cache
def load(name: str) -> str:
    """`load("queries/search_images")` -> the text of sql/queries/search_images.sql."""
    path = sql_dir() / f"{name}.sql"
    if not path.is_file():
        raise NotFound(f"no SQL file {path}; the installation is incomplete, reinstall vstore.")
    return path.read_text()


def api_files() -> list[str]:
    """Every SQL API function file, in name order (each is CREATE OR REPLACE FUNCTION)."""
    return sorted(f"api/{p.stem}" for p in (sql_dir() / "api").glob("*.sql"))
