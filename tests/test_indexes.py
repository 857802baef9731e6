"""Index control (create/drop/status, HNSW and IVFFlat, deferred rebuilds) and the synthetic loader."""

from __future__ import annotations

import json

import numpy as np
import psycopg
import pytest

from vstore.bench.synth import load_synthetic, synth_vectors
from vstore.db.connect import connection
from vstore.db.indexes import (
    create_index,
    defer_indexes,
    drop_index,
    index_ddl,
    index_status,
    list_indexes,
    rebuild_deferred,
)
from vstore.errors import ConfigError, ModelMismatch, NotFound, UserDataPresent
from vstore.search.store import Store


def _names(conn: psycopg.Connection) -> list[str]:
    return [i.name for i in list_indexes(conn)]


def test_index_create_drop_status_round_trip_with_ivfflat(settings):
    load_synthetic(settings, 500, captions_per_image=0)
    with connection(settings, autocommit=True) as conn:
        assert _names(conn) == ["captions_embedding_hnsw", "images_embedding_hnsw"]
        built = create_index(conn, "images", "ivfflat", lists=5)
        assert (built.kind, built.parameters, built.valid) == ("ivfflat", {"lists": 5}, True)
        assert built.size_bytes > 0
        drop_index(conn, "images", "hnsw")
        status = index_status(conn)
        assert [(i.name, i.kind) for i in status.indexes] == [
            ("captions_embedding_hnsw", "hnsw"),
            ("images_embedding_ivfflat", "ivfflat"),
        ]
        assert status.deferred == {} and status.building == []
        rebuilt = create_index(conn, "images", "hnsw", m=8, ef_construction=32)
        assert rebuilt.parameters == {"m": 8, "ef_construction": 32}
        drop_index(conn, "images", "ivfflat")
        with pytest.raises(NotFound, match="no ivfflat index on images"):
            drop_index(conn, "images", "ivfflat")


def test_ivfflat_probes_over_all_lists_gives_the_exact_answer(settings):
    load_synthetic(settings, 600, captions_per_image=0, seed=2)
    with connection(settings, autocommit=True) as conn:
        create_index(conn, "images", "ivfflat", lists=6)
        drop_index(conn, "images", "hnsw")
    q = synth_vectors(1, 32, seed=99)[0]
    with Store(settings) as store:
        exact = [h.id for h in store.search_vector(q, k=10, exact=True)]
        assert [h.id for h in store.search_vector(q, k=10, probes=6)] == exact


def test_ivfflat_default_lists_follow_row_count(settings):
    assert "lists = 100" in index_ddl("images", "ivfflat", rows=100_000).as_string()
    assert "lists = 1)" in index_ddl("images", "ivfflat", rows=10).as_string()
    assert "lists = 2000" in index_ddl("images", "ivfflat", rows=4_000_000).as_string()


def test_index_options_are_validated(settings):
    with pytest.raises(ConfigError, match="ef_construction >= 2\\*m"):
        index_ddl("images", "hnsw", m=16, ef_construction=20)
    with pytest.raises(ConfigError, match="no vector column on 'datasets'"):
        index_ddl("datasets", "hnsw")
    with pytest.raises(ConfigError, match="unknown index type 'flat'"):
        index_ddl("images", "flat")


def test_deferred_indexes_are_listed_then_rebuilt(settings):
    with connection(settings, autocommit=True) as conn:
        assert defer_indexes(conn, "images") == ["images_embedding_hnsw"]
        status = index_status(conn)
        assert list(status.deferred) == ["images_embedding_hnsw"]
        assert "USING hnsw (embedding vector_cosine_ops)" in status.deferred["images_embedding_hnsw"]
        assert rebuild_deferred(conn) == ["images_embedding_hnsw"]
        assert index_status(conn).deferred == {}
        assert "images_embedding_hnsw" in _names(conn)


def test_an_ivfflat_index_with_more_lists_than_the_rows_fill_says_so(monkeypatch, capsys, settings):
    from vstore.cli import main

    monkeypatch.setenv("VSTORE_DATABASE_URL", settings.database_url)
    with connection(settings) as conn:
        rows = conn.execute("SELECT count(*) FROM images").fetchone()[0]
    assert main(["index", "create", "--target", "images", "--type", "ivfflat", "--lists", "100"]) == 0
    err = capsys.readouterr().err
    assert f"warning: 100 lists for {rows} rows" in err and "--lists" in err
    assert main(["index", "create", "--target", "images", "--type", "ivfflat", "--lists", "1"]) == 0
    assert ("warning" in capsys.readouterr().err) == (rows < 39)  # one list is sparse only below 39 rows


def test_cli_index_commands_round_trip(monkeypatch, capsys, settings):
    from vstore.cli import main

    monkeypatch.setenv("VSTORE_DATABASE_URL", settings.database_url)
    assert (
        main(["index", "create", "--target", "captions", "--type", "ivfflat", "--lists", "2", "--json"]) == 0
    )
    created = json.loads(capsys.readouterr().out)
    assert created["name"] == "captions_embedding_ivfflat" and created["parameters"] == {"lists": 2}
    assert main(["index", "status", "--json"]) == 0
    status = json.loads(capsys.readouterr().out)
    assert {i["name"] for i in status["indexes"]} == {
        "captions_embedding_hnsw",
        "captions_embedding_ivfflat",
        "images_embedding_hnsw",
    }
    assert status["deferred"] == {} and status["building"] == []
    assert main(["index", "drop", "--target", "captions", "--type", "ivfflat"]) == 0
    assert main(["index", "status"]) == 0
    out = capsys.readouterr().out
    assert "ivfflat" not in out and "m=16, ef_construction=64" in out
    assert out.splitlines()[0].split() == ["table", "type", "parameters", "size", "name"]
    assert main(["index", "create", "--type", "hnsw", "--lists", "3"]) == 2
    assert main(["index", "drop", "--type", "ivfflat"]) == 1


# -- synthetic data ---------------------------------------------------------------------------------------


def test_synth_vectors_are_normalised_clustered_and_deterministic():
    vectors = synth_vectors(2000, 64, clusters=20, seed=7)
    assert vectors.dtype == np.float32 and vectors.shape == (2000, 64)
    assert np.allclose(np.linalg.norm(vectors, axis=1), 1.0, atol=1e-5)
    assert np.array_equal(vectors, synth_vectors(2000, 64, clusters=20, seed=7))
    similarity = vectors[:200] @ vectors.T
    np.fill_diagonal(similarity[:, :200], -1)
    nearest = similarity.max(axis=1)
    rng = np.random.default_rng(0)
    noise = rng.standard_normal((2000, 64))
    noise /= np.linalg.norm(noise, axis=1, keepdims=True)
    uniform = noise[:200] @ noise.T
    np.fill_diagonal(uniform[:, :200], -1)
    assert nearest.mean() > 0.6 > uniform.max(axis=1).mean()  # clusters, unlike uniform noise


def test_load_synthetic_fills_a_scratch_dataset_and_keeps_the_indexes(settings):
    report = load_synthetic(settings, 300, dataset="scratch", captions_per_image=2, seed=3)
    assert (report.images, report.captions, report.dim) == (300, 600, 32)
    again = load_synthetic(settings, 100, dataset="scratch", captions_per_image=1)  # replaces the first load
    with connection(settings) as conn:
        assert conn.execute("SELECT count(*), count(DISTINCT split) FROM images").fetchone() == (100, 2)
        assert conn.execute("SELECT count(*) FROM captions").fetchone()[0] == 100
        assert _names(conn) == ["captions_embedding_hnsw", "images_embedding_hnsw"]
        assert conn.execute("SELECT count(*) FROM deferred_indexes").fetchone()[0] == 0
        ids = conn.execute("SELECT id FROM images WHERE dataset_id = %s ORDER BY path", (again.dataset_id,))
        first_id = ids.fetchone()[0]
    with Store(settings) as store:  # captions lie next to their image: image->text finds its own caption
        hits = store.search_like(first_id, target="captions", k=1)
    assert hits[0].image_id == first_id


def test_load_synthetic_refuses_another_dimension_and_real_datasets(settings):
    with pytest.raises(ModelMismatch, match="dim 512"):
        load_synthetic(settings, 10, dim=512)
    with connection(settings) as conn:
        conn.execute("INSERT INTO datasets (name, root, format) VALUES ('photos', '/p', 'folder')")
        conn.commit()
    with pytest.raises(UserDataPresent, match="did not create .*'photos'.*--force"):
        load_synthetic(settings, 10, dataset="synth")
    with pytest.raises(ConfigError, match="holds real"):  # --force never replaces a real dataset
        load_synthetic(settings, 10, dataset="photos", force=True)
    assert load_synthetic(settings, 10, dataset="synth", force=True).images == 10
    with connection(settings) as conn:  # the refused load still rebuilt the indexes it had deferred
        assert _names(conn) == ["captions_embedding_hnsw", "images_embedding_hnsw"]
