"""The lock registry (issue 19, item 3) and the bounded waits between vstore's own sessions: one module
holds every lock's name and key, the keys and names are unique, no other module takes a lock by a number
of its own, and a wait that runs out names the session that holds the lock."""

from __future__ import annotations

import re
from dataclasses import replace
from pathlib import Path

import psycopg
import pytest

from tests import imagegen
from vstore.config import Settings
from vstore.db import locks
from vstore.db.connect import connection
from vstore.errors import ConfigError, LockTimeout
from vstore.ingest.pipeline import ingest

ROOT = Path(__file__).resolve().parent.parent


def test_lock_names_and_keys_are_unique():
    advisory = [lock.key for lock in locks.ADVISORY_LOCKS]
    names = [lock.name for lock in (*locks.ADVISORY_LOCKS, *locks.ROW_LOCKS)]
    assert len(set(advisory)) == len(advisory), advisory
    assert len(set(names)) == len(names), names
    assert all(0 < key < 2**63 for key in advisory)


def test_no_module_takes_a_lock_outside_the_registry():
    """Every pg_advisory_* call lives in db/locks.py (env.py passes a registry key), and no key is spelled
    as a number anywhere else: a new lock is a new registry entry, never a magic number."""
    offenders = []
    for path in [*(ROOT / "vstore").rglob("*.py"), ROOT / "alembic" / "env.py"]:
        text = path.read_text()
        relative = path.relative_to(ROOT).as_posix()
        if relative == "vstore/db/locks.py":
            continue
        if re.search(r"\b4242\d{3}\b", text):
            offenders.append(f"{relative}: a lock key as a number")
        if re.search(r"SELECT\s+pg_(try_)?advisory", text) and "locks." not in text:
            offenders.append(f"{relative}: pg_advisory_* without the registry")
        if "FOR UPDATE" in text or "FOR SHARE" in text:
            offenders.append(f"{relative}: a row lock outside db/locks.py")
    assert offenders == []


def test_every_row_lock_has_its_row(settings):
    with connection(settings, autocommit=True) as conn:
        rows = {r[0] for r in conn.execute("SELECT name FROM vstore.locks")}
    assert {lock.name for lock in locks.ROW_LOCKS} <= rows


def test_a_row_lock_newer_than_the_table_gets_its_row(settings):
    with connection(settings) as conn:
        conn.execute("SELECT 1")  # opens the transaction the row lock lives in
        assert locks.take_row(conn, locks.RowLock("added_later"))
        conn.commit()
        assert conn.execute("SELECT count(*) FROM vstore.locks WHERE name = 'added_later'").fetchone() == (1,)


def test_lock_timeout_from_the_environment_is_checked():
    assert Settings.from_env({"VSTORE_LOCK_TIMEOUT": "2.5"}).lock_timeout == 2.5
    assert Settings.from_env({}).lock_timeout == 60.0
    for bad in ("0", "-1", "soon", "1e12"):
        with pytest.raises(ConfigError, match="VSTORE_LOCK_TIMEOUT"):
            Settings.from_env({"VSTORE_LOCK_TIMEOUT": bad})


def test_vstore_sessions_carry_the_lock_timeout_and_their_name(settings):
    with connection(replace(settings, lock_timeout=2.5), autocommit=True) as conn:
        assert conn.execute("SHOW lock_timeout").fetchone() == ("2500ms",)
        assert conn.execute("SHOW application_name").fetchone() == ("vstore",)


def test_an_ingest_waiting_for_another_sessions_dataset_lock_names_it(settings, tiny_encoder, tmp_path):
    imagegen.save_jpeg(tmp_path / "photos" / "a.jpg", 0)
    with psycopg.connect(settings.database_url, application_name="stuck ingest") as holder:
        holder.execute("SELECT 1")  # opens the transaction the row lock lives in
        locks.take_row(holder, locks.DATASETS)
        with pytest.raises(LockTimeout) as caught:
            ingest(replace(settings, lock_timeout=0.5), tmp_path / "photos", encoder=tiny_encoder)
        pid = holder.info.backend_pid
    message = str(caught.value)
    assert "\n" not in message and "datasets lock" in message
    assert f"pid {pid} (role " in message and "stuck ingest" in message


def test_a_second_reembed_names_the_running_one(settings, tmp_path):
    from vstore.errors import VstoreError
    from vstore.train.reembed import reembed

    with psycopg.connect(settings.database_url, application_name="vstore reembed") as holder:
        holder.execute("SELECT 1")
        locks.take_row(holder, locks.REEMBED)
        with pytest.raises(VstoreError, match="another `vstore reembed` is running") as caught:
            reembed(settings, "random", model="vstore-tiny")
        assert f"pid {holder.info.backend_pid} " in str(caught.value)


def test_advisory_wait_names_the_holder(empty_settings):
    with psycopg.connect(empty_settings.database_url, autocommit=True, application_name="psql") as holder:
        holder.execute("SELECT pg_advisory_lock(%s)", (locks.INIT.key,))
        with connection(replace(empty_settings, lock_timeout=0.3), autocommit=True, vector=False) as conn:
            with pytest.raises(LockTimeout) as caught:
                locks.take_advisory(conn, locks.INIT, transaction=False)
        message = str(caught.value)
        assert f"pid {holder.info.backend_pid} (role " in message and "psql" in message
        assert "waited 0.3 s for vstore's init lock" in message
