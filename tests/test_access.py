"""Access: the read-only role (`vstore db reader`), the Store searching under it, the embedded server's
network exposure, and `vstore db downgrade base` asking before it drops everything."""

from __future__ import annotations

import json

import psycopg
import pytest

from tests import imagegen
from vstore.cli import main
from vstore.config import Settings
from vstore.db.connect import connection
from vstore.db.roles import ensure_reader
from vstore.ingest.pipeline import ingest
from vstore.search.store import SearchOptions, SearchQuery, Store


def _env(monkeypatch, url: str, settings: Settings) -> None:
    monkeypatch.setenv("VSTORE_DATABASE_URL", url)
    monkeypatch.setenv("VSTORE_HOME", str(settings.home))
    for name in ("VSTORE_MODEL", "VSTORE_PRETRAINED", "VSTORE_BATCH_SIZE"):
        monkeypatch.delenv(name, raising=False)


@pytest.fixture
def stocked(settings, tiny_encoder, tmp_path) -> Settings:
    """A database with three images and one cached text."""
    for index in range(3):
        imagegen.save_jpeg(tmp_path / "photos" / f"{index}.jpg", index)
    ingest(settings, tmp_path / "photos", encoder=tiny_encoder)
    with Store(settings, encoder=tiny_encoder) as store:
        store.cache_texts(["a red circle"])
    return settings


def test_reader_role_can_select_and_search_but_not_write(stocked):
    reader = ensure_reader(stocked)
    again = ensure_reader(stocked)  # idempotent: refreshes the grants, no error
    assert reader.created and not again.created
    with psycopg.connect(again.url, autocommit=True) as conn:
        assert conn.execute("SELECT current_user").fetchone() == ("vstore_reader",)
        assert conn.execute("SELECT count(*) FROM images").fetchone() == (3,)
        rows = conn.execute("SELECT id FROM vstore.search_images(vstore.text('a red circle'), 2)").fetchall()
        assert len(rows) == 2
        for statement in (
            "DELETE FROM images",
            "UPDATE datasets SET root = '/elsewhere'",
            "INSERT INTO text_queries (text, embedding) SELECT 'x', embedding FROM text_queries LIMIT 1",
            "DROP TABLE captions",
        ):
            # sessions start read-only; with that switched off, the missing privileges still refuse
            with pytest.raises(psycopg.errors.ReadOnlySqlTransaction):
                conn.execute(statement)
            conn.execute("SET default_transaction_read_only = off")
            with pytest.raises(psycopg.errors.InsufficientPrivilege):
                conn.execute(statement)
            conn.execute("SET default_transaction_read_only = on")
    with connection(stocked, autocommit=True) as conn:
        assert conn.execute("SELECT count(*) FROM images").fetchone() == (3,)
        assert conn.execute("SELECT count(*) FROM text_queries").fetchone() == (1,)


def test_cli_db_reader_prints_a_url_that_logs_in_as_the_reader(stocked, monkeypatch, capsys):
    _env(monkeypatch, stocked.database_url, stocked)
    assert main(["db", "reader"]) == 0
    url = capsys.readouterr().out.strip()
    with psycopg.connect(url) as conn:
        assert conn.execute("SELECT current_user").fetchone() == ("vstore_reader",)


def test_cli_under_the_reader_searches_cached_and_new_texts(stocked, monkeypatch, capsys):
    reader = ensure_reader(stocked)
    _env(monkeypatch, reader.url, stocked)
    assert main(["search", "a red circle", "--json", "-k", "2"]) == 0
    cached = capsys.readouterr()
    assert len(cached.out.splitlines()) == 2 and "cache" not in cached.err

    assert main(["search", "a text nobody searched before", "--json", "-k", "2"]) == 0
    new = capsys.readouterr()
    assert [json.loads(line)["dataset"] for line in new.out.splitlines()] == ["photos", "photos"]
    assert [line for line in new.err.splitlines() if "random weights" not in line] == [
        "warning: this database role may not write the text cache, so the text was searched but not "
        "cached for SQL clients (`vstore embed-text` with the owner's URL caches it)"
    ]

    assert main(["embed-text", "another new text"]) == 1  # its whole job is writing: one Error line
    refused = capsys.readouterr().err.strip().splitlines()
    assert len(refused) == 1 and refused[0].startswith("Error: ") and "owner's URL" in refused[0]
    with connection(stocked, autocommit=True) as conn:
        assert conn.execute("SELECT text FROM text_queries").fetchall() == [("a red circle",)]


def test_store_under_the_reader_says_which_texts_were_not_cached(stocked, tiny_encoder):
    reader = ensure_reader(stocked)
    with Store(Settings(database_url=reader.url, home=stocked.home), encoder=tiny_encoder) as store:
        assert store.search(SearchQuery(text="a red circle")).uncached == []
        result = store.search(SearchQuery(text="a blue square"), SearchOptions(k=3))
        hits = result.hits
        assert len(hits) == 3 and result.uncached == ["a blue square"]
    with Store(stocked, encoder=tiny_encoder) as owner:  # same vector as the owner's cached one
        expected = [hit.id for hit in owner.search_text("a blue square", k=3)]
    assert [hit.id for hit in hits] == expected


def test_embedded_server_listens_on_a_unix_socket_only(server_url):
    # The embedded server starts with -h "" -k <dir>: no TCP listener unless `--listen` asks for one; the
    # socket lives in a 0700 folder (and every login needs a password anyway).
    with psycopg.connect(server_url) as conn:
        assert conn.execute("SHOW listen_addresses").fetchone() == ("",)
        socket_dir = conn.execute("SHOW unix_socket_directories").fetchone()[0]
        assert conn.info.host == socket_dir and socket_dir.startswith("/")


def test_downgrade_base_without_yes_and_without_a_terminal_drops_nothing(settings, monkeypatch, capsys):
    _env(monkeypatch, settings.database_url, settings)
    assert main(["db", "downgrade", "base"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("Error: ") and "--yes" in err[0]
    assert main(["db", "downgrade", "-2"]) == 2  # a relative target that reaches base asks too
    with connection(settings, autocommit=True) as conn:
        assert conn.execute("SELECT to_regclass('public.images') IS NOT NULL").fetchone() == (True,)
    assert main(["db", "downgrade", "base", "--yes"]) == 0
    with connection(settings, autocommit=True, vector=False) as conn:
        assert conn.execute("SELECT to_regclass('public.images')").fetchone() == (None,)


def test_downgrade_that_keeps_the_tables_needs_no_yes(settings, monkeypatch):
    _env(monkeypatch, settings.database_url, settings)
    assert main(["db", "downgrade", "0001"]) == 0
    with connection(settings, autocommit=True) as conn:
        assert conn.execute("SELECT to_regclass('public.images') IS NOT NULL").fetchone() == (True,)


def test_ingest_under_the_reader_is_one_error_line_and_writes_nothing(stocked, tmp_path, monkeypatch, capsys):
    reader = ensure_reader(stocked)
    _env(monkeypatch, reader.url, stocked)
    imagegen.save_jpeg(tmp_path / "more" / "x.jpg", 5)
    assert main(["ingest", str(tmp_path / "more"), "--workers", "0"]) == 1
    errors = [line for line in capsys.readouterr().err.splitlines() if line.startswith("Error")]
    assert len(errors) == 1 and "may not write" in errors[0] and "owner's URL" in errors[0]
    with connection(stocked, autocommit=True) as conn:
        assert conn.execute("SELECT count(*) FROM datasets").fetchone() == (1,)
