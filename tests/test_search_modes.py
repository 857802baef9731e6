"""Search modes through the Store and the CLI (issue 22): text needs no model and agrees with the SQL API,
hybrid agrees with vstore.hybrid_images and equals the vector search when no word matches, the cutoff,
date order, collapsed duplicates, --explain, and `vstore duplicates --json`."""

from __future__ import annotations

import json
import shutil
from datetime import UTC, datetime, timedelta

import psycopg
import pytest
from pgvector.psycopg import register_vector

from tests import imagegen
from vstore.cli import main
from vstore.ingest.pipeline import ingest
from vstore.search.store import SearchOptions, SearchQuery, Store


@pytest.fixture
def shapes(settings, tiny_encoder, tmp_path):
    root = tmp_path / "shapes"
    imagegen.make_captioned_shapes(root, 30, seed=3)
    shutil.copy(root / "00000.png", root / "00000_copy.png")  # an exact duplicate (no captions)
    ingest(settings, root, encoder=tiny_encoder)
    with psycopg.connect(settings.database_url) as conn:  # dates: image n taken n days after 2020-01-01
        conn.execute(
            "UPDATE images SET taken_at = "
            "'2020-01-01'::timestamptz + (substr(path, 1, 5)::int * interval '1 day')"
        )
    return settings


def test_text_mode_needs_no_model_and_matches_the_sql_api(shapes):
    with Store(shapes) as store:  # no encoder given: loading one would fail for want of weights
        hits = store.search_text("red circle", mode="text", k=5)
        assert not store.encoder_loaded
    with psycopg.connect(shapes.database_url) as conn:
        want = [r[0] for r in conn.execute("SELECT id FROM vstore.text_images('red circle', 5)").fetchall()]
    assert [h.id for h in hits] == want and want
    assert all(h.distance is None and h.score is not None for h in hits)
    captions = Store(shapes).search_text("red circle", mode="text", target="captions", k=3)
    assert all("red" in h.text and "circle" in h.text for h in captions)  # type: ignore[union-attr]


def test_hybrid_matches_the_sql_function_and_is_the_vector_search_without_matching_words(
    shapes, tiny_encoder
):
    with Store(shapes, encoder=tiny_encoder) as store:
        vector = store.embed_text(["a blue square"])[0]
        hybrid = store.search_text("a blue square", mode="hybrid", k=8)
        only_vector = store.search_vector(vector, k=8, exact=True)
        no_words = store.search_text("zebra", mode="hybrid", k=8)
        plain = store.search_text("zebra", k=8)
    with psycopg.connect(shapes.database_url) as conn:
        register_vector(conn)
        conn.execute("SET hnsw.ef_search = 200")
        want = [
            r[0]
            for r in conn.execute("SELECT id FROM vstore.hybrid_images('a blue square', %s, 8)", (vector,))
        ]
    assert [h.id for h in hybrid] == want
    assert [h.id for h in no_words] == [h.id for h in plain]
    assert all(h.score is not None for h in hybrid) and only_vector


def test_max_distance_date_order_and_collapsed_duplicates(shapes, tiny_encoder):
    with Store(shapes, encoder=tiny_encoder) as store:
        everything = store.search_like(1, k=31)
        cutoff = everything[4].distance
        assert cutoff is not None
        for mode in ("vector", "hybrid"):
            near = store.search(
                SearchQuery(text="a red circle"), SearchOptions(k=30, mode=mode, max_distance=cutoff)
            )
            assert all(h.distance is not None and h.distance <= cutoff for h in near.hits)
        by_date = store.search_text("a shape", k=10, order="date")
        dates = [h.taken_at for h in by_date]
        assert dates == sorted(dates, reverse=True)  # type: ignore[type-var]
        start = datetime(2020, 1, 5, tzinfo=UTC)
        window = store.search_text("a shape", k=30, taken_after=start, taken_before=start + timedelta(days=3))
        assert sorted(h.relative_path for h in window) == ["00004.png", "00005.png", "00006.png"]
        other = store.search_text("a shape", k=31)
        like = next(h.id for h in other if h.relative_path == "00005.png")
        with_copy = [h.relative_path for h in store.search_like(like, k=31)]
        assert "00000.png" in with_copy and "00000_copy.png" in with_copy
        collapsed = [
            h.relative_path
            for h in store.search_like(like, k=31, collapse_duplicates=True, duplicate_distance=1e-6)
        ]
        assert ("00000.png" in collapsed) != ("00000_copy.png" in collapsed)
        result = store.search(SearchQuery(like=like), SearchOptions(label=None, taken_before=start))
        assert "vector" in result.plan and result.took_ms > 0


def test_cli_text_mode_explain_and_bad_options(shapes, monkeypatch, capsys):
    monkeypatch.setenv("VSTORE_DATABASE_URL", shapes.database_url)
    monkeypatch.setenv("VSTORE_HOME", str(shapes.home))
    dates = ["--taken-after", "2020-01-05", "--taken-before", "2020-01-07"]
    assert main(["search", "picture", "--mode", "text", *dates, "--json"]) == 0
    paths = sorted(json.loads(line)["relative_path"] for line in capsys.readouterr().out.splitlines())
    assert paths == ["00004.png", "00005.png"]
    assert main(["search", "red circle", "--mode", "text", "-k", "3", "--json", "--explain"]) == 0
    captured = capsys.readouterr()
    hits = [json.loads(line) for line in captured.out.splitlines()]
    assert len(hits) == 3 and all(h["distance"] is None for h in hits)
    assert "plan: text" in captured.err
    assert main(["search", "x", "--mode", "fuzzy"]) == 2
    assert main(["search", "x", "--mode", "text", "--max-distance", "0.2"]) == 2
    assert main(["search", "x", "--mode", "text", "--taken-after", "yesterday"]) == 2


def test_cli_duplicates_json_shape(shapes, monkeypatch, capsys):
    monkeypatch.setenv("VSTORE_DATABASE_URL", shapes.database_url)
    monkeypatch.setenv("VSTORE_HOME", str(shapes.home))
    assert main(["duplicates", "--max-distance", "0.000001", "--json"]) == 0
    document = json.loads(capsys.readouterr().out)
    paths = [{m["path"].rsplit("/", 1)[-1] for m in g["members"]} for g in document["groups"]]
    assert {"00000.png", "00000_copy.png"} in paths
    group = next(g for g in document["groups"] if len(g["members"]) == 2)
    assert group["keeper"] in {m["id"] for m in group["members"]}
    assert all(set(m) == {"id", "path", "distance"} for m in group["members"])
    assert main(["duplicates", "--max-distance", "5"]) == 2
