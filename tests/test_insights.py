"""`vstore db status`'s look inside (index sizes, cache, statements, replication, last backup) and the
warm restart (pg_prewarm), on real servers; a server without the contrib modules says what is missing."""

from __future__ import annotations

from pathlib import Path

import psycopg
import pytest

from tests.ops_fixtures import close_home, make_home, photo_folder, server_folder
from vstore.db import embedded
from vstore.db.connect import database_url
from vstore.db.insights import EXTENSIONS, enable, insights, prewarm
from vstore.ingest.pipeline import ingest


def _enabled(url: str) -> set[str]:
    with psycopg.connect(url) as conn:
        preload = conn.execute("SHOW shared_preload_libraries").fetchone()[0]
        installed = {r[0] for r in conn.execute("SELECT extname FROM pg_extension").fetchall()}
    loaded = {p.strip() for p in preload.split(",")} | {"pg_buffercache"}
    return installed & loaded


def test_status_gives_index_sizes_and_hit_ratio_and_names_each_missing_module(
    settings, tmp_path, tiny_encoder
):
    ingest(settings, photo_folder(tmp_path / "photos", 10), encoder=tiny_encoder)
    report = insights(settings)
    by_name = {i["index"]: i for i in report["indexes"]}
    assert by_name["images_embedding_hnsw"]["method"] == "hnsw"
    assert by_name["images_embedding_hnsw"]["bytes"] > 0
    assert 0 < report["cache_hit_ratio"] <= 1
    assert report["last_backup"] is None
    enabled = _enabled(database_url(settings))
    for name in EXTENSIONS:  # each module is either used or named in `missing`, never silently absent
        assert (name in enabled) != any(note.startswith(name + " ") for note in report["missing"])
    assert ("slowest_statements" in report) == ("pg_stat_statements" in enabled)
    assert ("cached" in by_name["images_embedding_hnsw"]) == ("pg_buffercache" in enabled)


@pytest.mark.slow
def test_enable_then_restart_brings_the_hnsw_index_back_into_shared_buffers(tiny_encoder):
    with server_folder() as place:
        home = make_home(place / "home")
        try:
            with psycopg.connect(database_url(home)) as conn:
                have = conn.execute(
                    "SELECT count(*) FROM pg_available_extensions WHERE name IN ('pg_prewarm', "
                    "'pg_stat_statements', 'pg_buffercache')"
                ).fetchone()[0]
            if have < 3:
                pytest.skip("this embedded server wheel ships no contrib modules")
            ingest(home, photo_folder(Path(place) / "photos", 40), encoder=tiny_encoder)
            done = enable(home)
            assert "restarted the embedded server" in done
            assert prewarm(home)["images_embedding_hnsw"] > 0
            report = insights(home)
            assert report["autoprewarm"] == "on" and report["missing"] == []
            assert {i["index"]: i for i in report["indexes"]}["images_embedding_hnsw"]["cached"] == 1.0
            assert report["slowest_statements"] and report["frequent_statements"]

            embedded.stop(home)  # autoprewarm writes the cached blocks' list at shutdown ...
            embedded.start(home)  # ... and its worker loads them at start, before any query
            import time

            deadline = time.monotonic() + 30
            cached = 0.0
            while cached < 1.0 and time.monotonic() < deadline:
                cached = {i["index"]: i for i in insights(home)["indexes"]}["images_embedding_hnsw"]["cached"]
                time.sleep(0.2)
            assert cached == 1.0
        finally:
            close_home(home)
