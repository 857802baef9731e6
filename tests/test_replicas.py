"""Streaming replicas of the embedded primary, on real servers: rows ingested on the primary appear on
the replica, searches through the replica's reader URL equal the primary's, and a promoted replica takes
ingests as the new primary."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import psycopg
import pytest

from tests.ops_fixtures import close_home, make_home, photo_folder, rows, server_folder
from vstore.config import Settings
from vstore.db import embedded, replicas
from vstore.db.connect import CANNOT_WRITE
from vstore.errors import ConfigError, NotFound, VstoreError
from vstore.ingest.pipeline import ingest
from vstore.search.store import Store

pytestmark = pytest.mark.slow


@pytest.fixture
def place():
    with server_folder() as path:
        yield path


@pytest.fixture
def home(place):
    settings = make_home(place / "home")
    yield settings
    close_home(settings)


def _searches(settings: Settings, encoder, vectors) -> list[list[tuple[int, float]]]:
    with Store(settings, encoder=encoder) as store:
        return [[(h.id, round(h.distance, 6)) for h in store.search_vector(v, k=5)] for v in vectors]


def test_rows_ingested_on_the_primary_appear_on_the_replica_and_searches_match(home, place, tiny_encoder):
    ingest(home, photo_folder(place / "first", 12), dataset="first", encoder=tiny_encoder)
    made = replicas.add(home, "r1")
    assert made.running and made.pgdata == home.home / "replicas" / "r1" / "pg"
    ingest(home, photo_folder(place / "second", 9, first=100), dataset="second", encoder=tiny_encoder)
    reader = replicas.reader_url(home, "r1")  # waits until the replica has replayed the primary's WAL
    assert "replicas/r1" in reader and "vstore_reader" in reader

    query = "SELECT id, path, embedding::text FROM images ORDER BY id"
    on_replica = Settings(database_url=reader, home=home.home)
    assert rows(on_replica, query) == rows(home, query)
    assert len(rows(on_replica, query)) == 21
    vectors = [np.asarray(tiny_encoder.encode_texts([t]))[0] for t in ("red circle", "green triangle")]
    assert _searches(on_replica, tiny_encoder, vectors) == _searches(home, tiny_encoder, vectors)

    with psycopg.connect(reader) as conn, pytest.raises(CANNOT_WRITE):
        conn.execute("CREATE TEMP TABLE t (x int)")
    listed = {r.name: r for r in replicas.list_replicas(home)}
    assert listed["r1"].state == "streaming" and listed["r1"].lag_s is not None

    replicas.stop(home, "r1")
    assert replicas.replica(home, "r1").state == "stopped"
    ingest(home, photo_folder(place / "third", 3, first=200), dataset="third", encoder=tiny_encoder)
    replicas.start(home, "r1")  # catches up from its slot
    replicas.catch_up(home, "r1")
    assert len(rows(on_replica, query)) == 24


def test_promote_after_the_primary_stops_then_ingest_on_the_new_primary(home, place, tiny_encoder):
    ingest(home, photo_folder(place / "first", 6), dataset="first", encoder=tiny_encoder)
    replicas.add(home, "r1")
    replicas.catch_up(home, "r1")
    with pytest.raises(VstoreError, match="stop it first"):
        replicas.promote(home, "r1")

    embedded.stop(home)
    old = replicas.promote(home, "r1")
    assert (old / "PG_VERSION").is_file() and replicas.names(home) == []
    ingest(home, photo_folder(place / "after", 4, first=300), dataset="after", encoder=tiny_encoder)
    assert rows(home, "SELECT count(*) FROM images")[0][0] == 10
    with psycopg.connect(embedded.start(home)) as conn:
        assert conn.execute("SELECT pg_is_in_recovery()").fetchone()[0] is False


def test_remove_drops_the_slot_and_the_folder_and_unknown_names_are_refused(home):
    replicas.add(home, "r2")
    replicas.remove(home, "r2")
    assert not (home.home / "replicas" / "r2").exists()
    with psycopg.connect(embedded.start(home)) as conn:
        assert conn.execute("SELECT count(*) FROM pg_replication_slots").fetchone()[0] == 0
    with pytest.raises(NotFound, match="no replica named r9"):
        replicas.remove(home, "r9")
    with pytest.raises(ConfigError):
        replicas.add(home, "Bad Name")
    with pytest.raises(ConfigError, match="VSTORE_DATABASE_URL"):
        replicas.add(replace(home, database_url="postgresql://x@/y"), "r3")


@pytest.mark.xfail(
    reason="known regression since the model-switch check (711c353): a search reads the model record from "
    "the primary, so a stopped primary fails ReplicatedStore (session note)",
    strict=False,
)
def test_searches_go_to_the_replica_and_survive_the_primary_stopping(home, place, tiny_encoder):
    from tests.imagegen import save_jpeg
    from vstore.search.options import SearchQuery
    from vstore.search.replicated import ReplicatedStore

    ingest(home, photo_folder(place / "photos", 12), encoder=tiny_encoder)
    replicas.add(home, "r1")
    query_image = save_jpeg(place / "query.jpg", 3)
    with Store(home, encoder=tiny_encoder) as alone:
        expected_text = alone.search(SearchQuery(text="a red circle")).hits
        expected_image = alone.search(SearchQuery(image=str(query_image))).hits
    url = replicas.reader_url(home, "r1")
    with ReplicatedStore(home, [url], encoder=tiny_encoder) as spread:
        assert spread.readers()[0] is spread.replicas[0]  # a streaming replica comes first
        first = spread.search(SearchQuery(text="a red circle"))  # cached on the primary
        assert first.hits == expected_text and first.uncached == []
        replicas.catch_up(home, "r1")  # the cache row reaches the replica

        embedded.stop(home)
        cached = spread.search(SearchQuery(text="a red circle"))
        assert cached.hits == expected_text and cached.uncached == []
        assert spread.search(SearchQuery(image=str(query_image))).hits == expected_image
        new = spread.search(SearchQuery(text="a blue square"))
        assert new.hits and new.uncached == ["a blue square"]
