"""A home of its own (embedded primary, tiny model) for the backup and replica tests: they copy whole
servers, so they cannot share the session's."""

from __future__ import annotations

import shutil
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from tests import imagegen
from vstore.config import Settings
from vstore.db import embedded, replicas
from vstore.db.connect import connection


@contextmanager
def server_folder() -> Iterator[Path]:
    """A folder for homes whose servers run as another user (vstore as root). Not under pytest's tmp_path:
    every pytest session that starts (another engineer's, the lead's) resets /tmp/pytest-of-root to 0700,
    and the server's user could no longer reach its data folder."""
    path = Path(tempfile.mkdtemp(prefix="vstore-test-"))
    path.chmod(0o755)
    try:
        yield path
    finally:
        shutil.rmtree(path, ignore_errors=True)


def make_home(path: Path) -> Settings:
    from tests.conftest import TINY_SPEC
    from vstore.db.migrations import upgrade

    settings = Settings(home=path, batch_size=8, workers=1)
    embedded.start(settings)
    upgrade(settings, "head", TINY_SPEC)
    return settings


def close_home(settings: Settings) -> None:
    """Stop every server the home runs: its replicas, then the primary."""
    for name in replicas.names(settings):
        replicas.stop(settings, name)
    embedded.stop(settings)


def photo_folder(root: Path, count: int, first: int = 0) -> Path:
    for i in range(first, first + count):
        imagegen.save_jpeg(root / f"p{i:04d}.jpg", i, seed=first)
    return root


def rows(settings: Settings, query: str) -> list[tuple]:
    with connection(settings) as conn:
        return [tuple(r) for r in conn.execute(query).fetchall()]
