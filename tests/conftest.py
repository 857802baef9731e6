"""Shared fixtures: one real embedded PostgreSQL + pgvector per test session; every test gets its own
database, cloned from a migrated template (fast), so tests never see each other's rows."""

from __future__ import annotations

import re
import uuid
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest

from vstore.config import Settings
from vstore.db import embedded
from vstore.encode.encoder import TINY_TEST_MODEL, ModelSpec

TINY_SPEC = ModelSpec(name=TINY_TEST_MODEL, pretrained="random", dim=32)
TEMPLATE_DB = "vstore_test_template"


def with_database(url: str, name: str) -> str:
    """The same server URL pointing at another database."""
    return re.sub(r"(://[^/]*/)[^?]*", lambda m: m.group(1) + name, url, count=1)


@pytest.fixture(scope="session")
def server_settings(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Settings]:
    """Settings of the session's embedded server (home in a temp dir, never the user's)."""
    settings = Settings(home=tmp_path_factory.mktemp("vstore-home"))
    embedded.start(settings)
    yield settings
    embedded.stop(settings)


@pytest.fixture(scope="session")
def server_url(server_settings: Settings) -> str:
    return embedded.start(server_settings)


def _admin(server_url: str) -> psycopg.Connection:
    return psycopg.connect(with_database(server_url, "postgres"), autocommit=True)


@pytest.fixture(scope="session")
def template_url(server_url: str) -> str:
    """A database migrated to head for the tiny 32-d test model, used as CREATE DATABASE template."""
    from vstore.db.migrations import upgrade

    with _admin(server_url) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{TEMPLATE_DB}"')
        conn.execute(f'CREATE DATABASE "{TEMPLATE_DB}"')
    url = with_database(server_url, TEMPLATE_DB)
    upgrade(Settings(database_url=url), "head", TINY_SPEC)
    return url


def _fresh_database(server_url: str, template: str | None) -> str:
    name = f"t_{uuid.uuid4().hex[:12]}"
    clause = f' TEMPLATE "{template}"' if template else ""
    with _admin(server_url) as conn:
        conn.execute(f'CREATE DATABASE "{name}"{clause}')
    return name


def _drop_database(server_url: str, name: str) -> None:
    with _admin(server_url) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@pytest.fixture
def settings(server_url: str, template_url: str, tmp_path: Path) -> Iterator[Settings]:
    """Settings for a fresh database already migrated for the tiny test model (32-d, random weights)."""
    name = _fresh_database(server_url, TEMPLATE_DB)
    yield Settings(
        database_url=with_database(server_url, name), home=tmp_path / "home", batch_size=8, workers=1
    )
    _drop_database(server_url, name)


@pytest.fixture
def empty_settings(server_url: str, tmp_path: Path) -> Iterator[Settings]:
    """Settings for a fresh, empty database (no extension, no schema)."""
    name = _fresh_database(server_url, None)
    yield Settings(
        database_url=with_database(server_url, name), home=tmp_path / "home", batch_size=8, workers=1
    )
    _drop_database(server_url, name)


@pytest.fixture(scope="session")
def tiny_encoder():
    """The tiny open_clip architecture with seeded random weights: deterministic, fast on a CPU."""
    from vstore.encode.encoder import OpenClipEncoder

    return OpenClipEncoder(TINY_SPEC, device="cpu")
