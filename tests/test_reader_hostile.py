"""The reader role as a hostile second party (issue 20, cases 2-4): it holds every lock key vstore uses
while the owner ingests, inits and re-embeds; it tries TEMP objects, self-service role settings and other
applications' tables; and its grants survive a migration round trip.

Lock waits are bounded by Settings.lock_timeout; the tests set it to a second so that a wait that should
end with a message ends quickly. A command that hangs is caught by the thread's join limit (a hang guard,
not a timing assert: the owner's command must finish, or fail with a message naming the holder)."""

from __future__ import annotations

import os
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import replace
from typing import Any

import psycopg
import pytest

from tests import imagegen
from tests.conftest import with_database
from vstore.config import Settings
from vstore.db.connect import connection
from vstore.db.roles import ensure_reader, role_url
from vstore.ingest.pipeline import ingest

# Far beyond the 1 s lock timeout the tests use: reaching it means a wait was unbounded.
HANG_GUARD_S = float(os.environ.get("VSTORE_TEST_HANG_GUARD_S", "90"))
# Every advisory key the reader could guess: vstore's historical keys are 4242001-4242005.
GUESSED_KEYS = range(4242000, 4242011)


def _keys() -> list[int]:
    try:
        from vstore.db.locks import ADVISORY_LOCKS
    except ImportError:  # older trees had no registry
        return list(GUESSED_KEYS)
    return sorted(set(GUESSED_KEYS) | {lock.key for lock in ADVISORY_LOCKS})


def _run_bounded(function: Callable[[], Any]) -> Any:
    """Run `function` in a thread; fail (instead of hanging the suite) when it does not return."""
    outcome: dict[str, Any] = {}

    def target() -> None:
        try:
            outcome["value"] = function()
        except BaseException as exc:  # noqa: BLE001 - handed back to the test
            outcome["error"] = exc

    thread = threading.Thread(target=target, daemon=True)
    thread.start()
    thread.join(HANG_GUARD_S)
    assert not thread.is_alive(), "the owner's command waited without bound behind the reader"
    if "error" in outcome:
        raise outcome["error"]
    return outcome.get("value")


@contextmanager
def reader_holding_every_key(url: str, settings: Settings | None = None) -> Iterator[psycopg.Connection]:
    """A reader session holding every advisory key (exclusively, so shared takers wait too). With
    `settings`, the reader is first given the advisory functions vstore took from PUBLIC there: the case
    of a server where vstore's user could not take them (not a superuser owning the database)."""
    if settings is not None:
        from vstore.db.roles import PUBLIC_FUNCTIONS_TAKEN

        advisory = [f for f in PUBLIC_FUNCTIONS_TAKEN if "advisory" in f]
        with connection(settings, autocommit=True) as owner:
            owner.execute(f"GRANT EXECUTE ON FUNCTION {', '.join(advisory)} TO vstore_reader")
    with psycopg.connect(url, autocommit=True) as conn:
        for key in _keys():
            assert conn.execute("SELECT pg_try_advisory_lock(%s)", (key,)).fetchone() == (True,)
        try:
            yield conn
        finally:
            conn.execute("SELECT pg_advisory_unlock_all()")


def _quick(settings: Settings) -> Settings:
    return replace(settings, lock_timeout=1.0) if hasattr(settings, "lock_timeout") else settings


@pytest.fixture
def quick(settings: Settings) -> Settings:
    return _quick(settings)


def _images(root, n: int, seed: int = 0) -> None:
    for index in range(n):
        imagegen.save_jpeg(root / f"{index}.jpg", seed + index)


def test_reader_holding_every_lock_key_does_not_block_or_fake_a_bulk_ingest(quick, tiny_encoder, tmp_path):
    _images(tmp_path / "first", 3)
    ingest(quick, tmp_path / "first", encoder=tiny_encoder)
    reader = ensure_reader(quick)
    _images(tmp_path / "photos", 4, seed=10)
    bulk = replace(quick, bulk_load_rows=1)  # defers the indexes: the lease, the drop and the rebuild
    with reader_holding_every_key(reader.url, quick):
        report = _run_bounded(lambda: ingest(bulk, tmp_path / "photos", encoder=tiny_encoder))
    assert report.dataset == "photos" and report.added == 4
    assert sorted(report.indexes_rebuilt) == ["captions_embedding_hnsw", "images_embedding_hnsw"]


def test_reader_may_not_lock_or_read_vstores_lock_rows(quick):
    reader = ensure_reader(quick)
    with _reader_session(reader.url) as conn:
        for statement in (
            "SELECT * FROM vstore.locks FOR UPDATE",
            "SELECT * FROM vstore.locks FOR KEY SHARE",
            "SELECT * FROM vstore.locks",
            "LOCK TABLE vstore.locks IN ACCESS SHARE MODE",
        ):
            with pytest.raises(psycopg.errors.InsufficientPrivilege):
                with conn.transaction():
                    conn.execute(statement)


def test_reader_holding_the_bulk_load_key_does_not_stop_the_rebuild_of_deferred_indexes(quick):
    from vstore.db.indexes import defer_indexes, rebuild_deferred

    reader = ensure_reader(quick)
    with connection(quick, autocommit=True) as conn:
        defer_indexes(conn, "images")
        with reader_holding_every_key(reader.url, quick) as hostile:
            for key in _keys():  # a shared hold too: what the bulk-load lease used to be
                hostile.execute("SELECT pg_advisory_lock_shared(%s)", (key,))
            assert _run_bounded(lambda: rebuild_deferred(conn)) == ["images_embedding_hnsw"]


def test_reader_holding_every_lock_key_does_not_block_init(quick):
    from vstore.db.migrations import init

    reader = ensure_reader(quick)
    with reader_holding_every_key(reader.url, quick):
        spec = _run_bounded(lambda: init(quick))
    assert spec.name == "vstore-tiny"


def test_first_init_behind_a_reader_holding_the_keys_names_the_reader(empty_settings, settings):
    from vstore.db.migrations import init
    from vstore.errors import VstoreError

    reader = ensure_reader(settings)  # the role exists on the server: any role may connect and take keys
    empty_db = psycopg.conninfo.conninfo_to_dict(empty_settings.database_url)["dbname"]
    reader_url = with_database(reader.url, str(empty_db))
    quick_empty = _quick(empty_settings)
    with reader_holding_every_key(reader_url) as hostile:
        pid = hostile.info.backend_pid
        with pytest.raises(VstoreError) as caught:
            _run_bounded(lambda: init(quick_empty, model="vstore-tiny", pretrained="random"))
    message = str(caught.value)
    assert "\n" not in message and "vstore_reader" in message and f"pid {pid}" in message
    spec = _run_bounded(lambda: init(quick_empty, model="vstore-tiny", pretrained="random"))
    assert spec.name == "vstore-tiny"


def test_reader_holding_every_lock_key_does_not_block_or_fake_reembed(quick, tiny_encoder, tmp_path):
    from tests.test_reembed import make_checkpoint
    from vstore.train.reembed import reembed

    _images(tmp_path / "photos", 3)
    ingest(quick, tmp_path / "photos", encoder=tiny_encoder)
    checkpoint = make_checkpoint(tmp_path / "other.pt")
    reader = ensure_reader(quick)
    with reader_holding_every_key(reader.url, quick):
        report = _run_bounded(lambda: reembed(quick, str(checkpoint)))
    assert report.images == 3


def test_bulk_load_behind_a_readers_open_transaction_says_who_blocks_it(quick, tiny_encoder, tmp_path):
    """DROP INDEX needs an ACCESS EXCLUSIVE lock, which any SELECT's ACCESS SHARE lock delays, the reader's
    too: the wait is bounded, and the message names the reader's session."""
    from vstore.errors import VstoreError

    _images(tmp_path / "first", 2)
    ingest(quick, tmp_path / "first", encoder=tiny_encoder)
    reader = ensure_reader(quick)
    _images(tmp_path / "photos", 3, seed=10)
    with psycopg.connect(reader.url) as hostile:  # not autocommit: the transaction stays open
        hostile.execute("SELECT count(*) FROM images")
        pid = hostile.info.backend_pid
        with pytest.raises(VstoreError) as caught:
            _run_bounded(
                lambda: ingest(replace(quick, bulk_load_rows=1), tmp_path / "photos", encoder=tiny_encoder)
            )
    message = str(caught.value)
    assert "\n" not in message and "vstore_reader" in message and f"pid {pid}" in message
    with connection(quick, autocommit=True) as conn:  # nothing left dropped, nothing half-loaded
        names = {r[0] for r in conn.execute("SELECT indexname FROM pg_indexes WHERE indexname LIKE '%hnsw'")}
        assert names == {"images_embedding_hnsw", "captions_embedding_hnsw"}
        assert conn.execute("SELECT count(*) FROM deferred_indexes").fetchone() == (0,)
        assert conn.execute("SELECT name FROM datasets").fetchall() == [("first",)]


def _reader_session(url: str) -> psycopg.Connection:
    conn = psycopg.connect(url, autocommit=True)
    conn.execute("SET default_transaction_read_only = off")  # what any client may do in its session
    return conn


WRITES = (
    "CREATE TEMP TABLE stolen AS SELECT * FROM images",
    "CREATE FUNCTION pg_temp.f() RETURNS int LANGUAGE sql AS 'SELECT 1'",
    "CREATE TABLE public.mine (x int)",
    "CREATE TABLE vstore.mine (x int)",
    "CREATE SCHEMA mine",
    "CREATE VIEW public.mine AS SELECT 1",
    "INSERT INTO text_queries (text, embedding) SELECT 'x', embedding FROM text_queries LIMIT 1",
    "DELETE FROM images",
)


def test_reader_cannot_create_temp_objects_or_anything_else(quick):
    reader = ensure_reader(quick)
    with _reader_session(reader.url) as conn:
        for statement in WRITES:
            with pytest.raises(psycopg.errors.InsufficientPrivilege):
                conn.execute(statement)
    with connection(quick, autocommit=True) as owner:
        for privilege in ("TEMP", "CREATE"):
            assert owner.execute(
                "SELECT has_database_privilege('vstore_reader', current_database(), %s)", (privilege,)
            ).fetchone() == (False,)
        creatable = owner.execute(
            "SELECT nspname FROM pg_namespace WHERE has_schema_privilege('vstore_reader', oid, 'CREATE')"
        ).fetchall()
        assert creatable == []


def test_reader_loosening_its_own_role_settings_gains_nothing_and_is_undone(quick):
    reader = ensure_reader(quick)
    with _reader_session(reader.url) as conn:
        try:
            conn.execute("ALTER ROLE vstore_reader SET default_transaction_read_only = off")
            conn.execute("ALTER ROLE vstore_reader SET search_path = pg_temp, public")
        except psycopg.errors.InsufficientPrivilege:
            pass  # refused: fine too
    with psycopg.connect(reader.url, autocommit=True) as later:  # a later session, loosened or not
        for statement in WRITES:
            with pytest.raises((psycopg.errors.InsufficientPrivilege, psycopg.errors.ReadOnlySqlTransaction)):
                later.execute(statement)
    again = ensure_reader(quick)  # `vstore db reader` (and every migration) puts the role back
    with psycopg.connect(again.url, autocommit=True) as fresh:
        assert fresh.execute("SHOW default_transaction_read_only").fetchone() == ("on",)
        assert "pg_temp" not in fresh.execute("SHOW search_path").fetchone()[0]


def test_reader_may_not_select_tables_of_other_applications(quick):
    with connection(quick, autocommit=True) as owner:
        owner.execute("CREATE TABLE public.payroll (name text, salary int)")
    reader = ensure_reader(quick)
    with connection(quick, autocommit=True) as owner:
        owner.execute("CREATE TABLE public.later_secrets (x int)")  # made after the grants
    with psycopg.connect(reader.url, autocommit=True) as conn:
        assert conn.execute("SELECT count(*) FROM images").fetchone() == (0,)
        for table in ("payroll", "later_secrets"):
            with pytest.raises(psycopg.errors.InsufficientPrivilege):
                conn.execute(f"SELECT * FROM public.{table}")


def test_reader_grants_survive_a_downgrade_and_upgrade(quick, tiny_encoder, tmp_path):
    from vstore.db.migrations import downgrade, upgrade

    _images(tmp_path / "photos", 2)
    ingest(quick, tmp_path / "photos", encoder=tiny_encoder)
    readers = [ensure_reader(quick), ensure_reader(quick, "vstore_test_custom_reader")]
    try:
        downgrade(quick, "0001")
        upgrade(quick)
        for reader in readers:
            with psycopg.connect(reader.url, autocommit=True) as conn:
                assert conn.execute("SELECT count(*) FROM images").fetchone() == (2,)
                image_id = conn.execute("SELECT min(id) FROM images").fetchone()[0]
                rows = conn.execute("SELECT id FROM vstore.similar_images(%s, 1)", (image_id,)).fetchall()
                assert len(rows) == 1
                assert conn.execute("SHOW default_transaction_read_only").fetchone() == ("on",)
    finally:
        with connection(quick, autocommit=True) as owner:
            owner.execute("DROP OWNED BY vstore_test_custom_reader")
            owner.execute("DROP ROLE vstore_test_custom_reader")


def test_migration_behind_a_session_holding_the_migration_key_names_it(quick):
    """Advisory keys are taken from PUBLIC only where vstore's user is a superuser owning the database;
    elsewhere any role may hold the migration key: the migration waits a bounded time and names it."""
    from vstore.db.locks import MIGRATIONS
    from vstore.db.migrations import upgrade
    from vstore.errors import LockTimeout

    with psycopg.connect(quick.database_url, autocommit=True, application_name="psql") as holder:
        holder.execute("SELECT pg_advisory_lock(%s)", (MIGRATIONS.key,))
        with pytest.raises(LockTimeout) as caught:
            _run_bounded(lambda: upgrade(quick))
        pid = holder.info.backend_pid
    message = str(caught.value)
    assert "\n" not in message and f"pid {pid} (role " in message and "psql" in message


def test_reader_may_not_take_advisory_locks_or_create_large_objects(quick):
    """With advisory locks a reader could hold vstore's keys, or fill the server's shared lock table so
    that every session's next lock fails; a large object is storage it could create without CREATE."""
    reader = ensure_reader(quick)
    with _reader_session(reader.url) as conn:
        for statement in (
            "SELECT pg_advisory_lock(4242001)",
            "SELECT pg_try_advisory_lock_shared(1, 2)",
            "SELECT pg_advisory_xact_lock(k) FROM generate_series(1, 100000) k",
            "SELECT lo_create(0)",
            "SELECT lo_from_bytea(0, 'payload')",
        ):
            with pytest.raises(psycopg.errors.InsufficientPrivilege):
                conn.execute(statement)
    with connection(quick, autocommit=True) as owner:  # vstore's own sessions keep them
        assert owner.execute("SELECT pg_try_advisory_lock(4242001)").fetchone() == (True,)


def test_cli_index_drop_behind_a_readers_open_transaction_is_one_line_naming_it(quick, monkeypatch, capsys):
    from vstore.cli import main

    reader = ensure_reader(quick)
    monkeypatch.setenv("VSTORE_DATABASE_URL", quick.database_url)
    monkeypatch.setenv("VSTORE_HOME", str(quick.home))
    monkeypatch.setenv("VSTORE_LOCK_TIMEOUT", "1")
    with psycopg.connect(reader.url) as hostile:  # an open transaction that read images
        hostile.execute("SELECT count(*) FROM images")
        pid = hostile.info.backend_pid
        assert _run_bounded(lambda: main(["index", "drop", "--target", "images", "--type", "hnsw"])) == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("Error: ") and "Traceback" not in err[0]
    assert f"pid {pid} (role vstore_reader" in err[0]
    with connection(quick, autocommit=True) as conn:  # nothing dropped
        assert conn.execute("SELECT to_regclass('public.images_embedding_hnsw') IS NOT NULL").fetchone() == (
            True,
        )


def test_another_role_cannot_mark_itself_a_reader_and_be_granted_by_a_migration(quick):
    """Every role may change its own settings, so whatever tells the migrations which roles are readers must
    be something a role cannot give itself."""
    from vstore.db.migrations import downgrade, upgrade

    ensure_reader(quick)
    database = psycopg.conninfo.conninfo_to_dict(quick.database_url)["dbname"]
    with connection(quick, autocommit=True) as owner:
        owner.execute("DROP ROLE IF EXISTS vstore_test_mallory")
        owner.execute("CREATE ROLE vstore_test_mallory LOGIN PASSWORD 'mallory-secret'")
    mallory_url = role_url(quick.database_url, "vstore_test_mallory", "mallory-secret")
    try:
        with psycopg.connect(mallory_url, autocommit=True) as mallory:
            for statement in (
                f"ALTER ROLE vstore_test_mallory IN DATABASE \"{database}\" SET vstore.reader = 'on'",
                "ALTER ROLE vstore_test_mallory SET vstore.reader = 'on'",
            ):
                try:
                    mallory.execute(statement)
                except psycopg.errors.InsufficientPrivilege:
                    pass  # PostgreSQL 15+: only a superuser may set an unknown parameter for a role
        downgrade(quick, "0001")
        upgrade(quick)
        with connection(quick, autocommit=True) as owner:
            granted = owner.execute(
                "SELECT has_table_privilege('vstore_test_mallory', 'public.images', 'SELECT'), "
                "has_schema_privilege('vstore_test_mallory', 'vstore', 'USAGE')"
            ).fetchone()
            assert granted == (False, False)
            assert owner.execute(
                "SELECT has_table_privilege('vstore_reader', 'public.images', 'SELECT')"
            ).fetchone() == (True,)
    finally:
        with connection(quick, autocommit=True) as owner:
            owner.execute("DROP OWNED BY vstore_test_mallory")
            owner.execute("DROP ROLE vstore_test_mallory")


def test_reembed_swap_behind_a_readers_open_transaction_names_it_and_the_rerun_completes(
    quick, tiny_encoder, tmp_path
):
    from tests.test_reembed import make_checkpoint
    from vstore.errors import LockTimeout
    from vstore.train.reembed import reembed

    _images(tmp_path / "photos", 3)
    ingest(quick, tmp_path / "photos", encoder=tiny_encoder)
    checkpoint = make_checkpoint(tmp_path / "other.pt")
    reader = ensure_reader(quick)
    with psycopg.connect(reader.url) as hostile:
        # PREPARE takes the table's ACCESS SHARE lock before any privilege check, and keeps it until the
        # transaction ends: a reader can hold a lock even on a table it may not read.
        hostile.execute("PREPARE peek AS SELECT * FROM reembed_images")
        pid = hostile.info.backend_pid
        with pytest.raises(LockTimeout) as caught:
            _run_bounded(lambda: reembed(quick, str(checkpoint)))
    message = str(caught.value)
    assert "\n" not in message and f"pid {pid} (role vstore_reader" in message
    assert "reembed_images" in message
    report = _run_bounded(lambda: reembed(quick, str(checkpoint)))  # the reader is gone: it completes
    assert report.images == 3


def test_index_status_under_the_reader_still_answers(quick, monkeypatch, capsys):
    from vstore.cli import main

    reader = ensure_reader(quick)
    monkeypatch.setenv("VSTORE_DATABASE_URL", reader.url)
    monkeypatch.setenv("VSTORE_HOME", str(quick.home))
    assert main(["index", "status", "--json"]) == 0
    assert "images_embedding_hnsw" in capsys.readouterr().out


def test_reader_grants_survive_a_downgrade_to_base_and_upgrade(quick):
    from tests.conftest import TINY_SPEC
    from vstore.db.migrations import downgrade, upgrade

    reader = ensure_reader(quick)
    downgrade(quick, "base")
    upgrade(quick, "head", TINY_SPEC)
    with psycopg.connect(reader.url, autocommit=True) as conn:
        assert conn.execute("SELECT count(*) FROM images").fetchone() == (0,)
        assert conn.execute(
            "SELECT count(*) FROM vstore.search_images(array_fill(0.1, ARRAY[32])::vector, 3)"
        ).fetchone() == (0,)
        with pytest.raises(psycopg.errors.InsufficientPrivilege):
            conn.execute("SELECT * FROM vstore.locks")
