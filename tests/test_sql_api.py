"""The SQL API (schema `vstore`) through raw psycopg, as a psql or DBeaver user would call it, and EXPLAIN
checks that the plain kNN query and the functions ride the HNSW indexes."""

from __future__ import annotations

import numpy as np
import psycopg
import pytest
from pgvector.psycopg import register_vector

from vstore.bench.synth import synth_vectors

DIM = 32
N = 400


@pytest.fixture
def db(settings):
    """A raw psycopg connection on a database with N images (one caption each), inserted with plain SQL."""
    images = synth_vectors(N, DIM, clusters=10, seed=11)
    captions = synth_vectors(N, DIM, clusters=10, seed=12)
    with psycopg.connect(settings.database_url) as conn:
        register_vector(conn)
        dataset_id = conn.execute(
            "INSERT INTO datasets (name, root, format) VALUES ('d', '/data', 'folder') RETURNING id"
        ).fetchone()[0]
        with conn.cursor() as cur:
            cur.executemany(
                "INSERT INTO images (dataset_id, path, embedding) VALUES (%s, %s, %s)",
                [(dataset_id, f"{i:03d}.jpg", images[i]) for i in range(N)],
            )
            image_ids = [r[0] for r in conn.execute("SELECT id FROM images ORDER BY path").fetchall()]
            cur.executemany(
                "INSERT INTO captions (image_id, source_id, text, embedding) VALUES (%s, '0', %s, %s)",
                [(image_ids[i], f"caption {i}", captions[i]) for i in range(N)],
            )
        caption_ids = [r[0] for r in conn.execute("SELECT id FROM captions ORDER BY image_id").fetchall()]
        conn.execute("ANALYZE images")
        conn.execute("ANALYZE captions")
        conn.commit()
        yield (
            conn,
            {"images": images, "captions": captions, "image_ids": image_ids, "caption_ids": caption_ids},
        )


def _nearest(vectors: np.ndarray, q: np.ndarray, k: int) -> list[int]:
    return list(np.argsort(1.0 - vectors @ q, kind="stable")[:k])


def test_search_images_returns_the_brute_force_nearest_with_their_distances(db):
    # Not a stored vector searched for itself (that passes whatever the ranking): the mean of two stored
    # images, whose 3 nearest and their cosine distances are computed here with numpy.
    conn, data = db
    images = data["images"]
    q = images[10] + images[11]
    q = (q / np.linalg.norm(q)).astype(np.float32)
    nearest = _nearest(images, q, 3)
    conn.execute("SET hnsw.ef_search = 200")
    rows = conn.execute("SELECT id, path, distance FROM vstore.search_images(%s, 3)", (q,)).fetchall()
    assert [r[0] for r in rows] == [data["image_ids"][i] for i in nearest]
    assert [r[1] for r in rows] == [f"{i:03d}.jpg" for i in nearest]
    assert [r[2] for r in rows] == pytest.approx([float(1 - images[i] @ q) for i in nearest], abs=1e-5)


def test_search_captions_returns_the_nearest_caption(db):
    conn, data = db
    q = data["captions"][33]
    rows = conn.execute("SELECT id, image_id, text FROM vstore.search_captions(%s, 2)", (q,)).fetchall()
    assert rows[0] == (data["caption_ids"][33], data["image_ids"][33], "caption 33")


def test_similar_images_excludes_the_image_itself(db):
    conn, data = db
    expected = [data["image_ids"][i] for i in _nearest(data["images"], data["images"][7], 4) if i != 7][:3]
    conn.execute("SET hnsw.ef_search = 200")
    rows = conn.execute("SELECT id FROM vstore.similar_images(%s, 3)", (data["image_ids"][7],)).fetchall()
    assert [r[0] for r in rows] == expected


def test_captions_for_image_and_images_for_caption_cross_modalities(db):
    conn, data = db
    conn.execute("SET hnsw.ef_search = 200")
    expected_captions = [data["caption_ids"][i] for i in _nearest(data["captions"], data["images"][5], 3)]
    rows = conn.execute("SELECT id FROM vstore.captions_for_image(%s, 3)", (data["image_ids"][5],)).fetchall()
    assert [r[0] for r in rows] == expected_captions
    expected_images = [data["image_ids"][i] for i in _nearest(data["images"], data["captions"][8], 3)]
    rows = conn.execute(
        "SELECT id FROM vstore.images_for_caption(%s, 3)", (data["caption_ids"][8],)
    ).fetchall()
    assert [r[0] for r in rows] == expected_images


def test_text_returns_a_cached_embedding(db):
    conn, data = db
    conn.execute(
        "INSERT INTO text_queries (text, embedding, model) "
        "SELECT 'a dog', %s, model_key FROM embedding_model",  # a row names its model (revision 0009)
        (data["images"][3],),
    )
    row = conn.execute("SELECT id FROM vstore.search_images(vstore.text('a dog'), 1)").fetchone()
    assert row[0] == data["image_ids"][3]


def test_text_missing_from_the_cache_raises_a_clear_error_with_the_fix(db):
    conn, _ = db
    with pytest.raises(psycopg.errors.NoDataFound) as caught:
        conn.execute("SELECT * FROM vstore.search_images(vstore.text(%s), 5)", ("it's a cat",))
    assert "no cached embedding for the text 'it''s a cat'" in str(caught.value)
    assert caught.value.diag.message_hint.startswith("Add it with: vstore embed-text 'it''s a cat'")
    conn.rollback()


def _plan(conn: psycopg.Connection, sql: str, params: tuple) -> str:
    return "\n".join(r[0] for r in conn.execute("EXPLAIN " + sql, params).fetchall())


@pytest.mark.parametrize(
    ("sql", "index"),
    [
        ("SELECT id FROM images ORDER BY embedding <=> %s LIMIT 10", "images_embedding_hnsw"),
        ("SELECT id FROM captions ORDER BY embedding <=> %s LIMIT 10", "captions_embedding_hnsw"),
        ("SELECT * FROM vstore.search_images(%s, 10)", "images_embedding_hnsw"),
        ("SELECT * FROM vstore.search_captions(%s, 10)", "captions_embedding_hnsw"),
    ],
)
def test_explain_shows_the_hnsw_index_for_vector_queries(db, sql, index):
    conn, data = db
    conn.execute("SET enable_seqscan = off")  # 400 rows: make the planner's choice independent of size
    plan = _plan(conn, sql, (data["images"][0],))
    assert f"Index Scan using {index}" in plan, plan


@pytest.mark.parametrize(
    ("function", "index", "key"),
    [
        ("similar_images", "images_embedding_hnsw", "image_ids"),
        ("captions_for_image", "captions_embedding_hnsw", "image_ids"),
        ("images_for_caption", "images_embedding_hnsw", "caption_ids"),
    ],
)
def test_explain_shows_the_hnsw_index_for_functions_taking_a_stored_id(db, function, index, key):
    conn, data = db
    conn.execute("SET enable_seqscan = off")
    plan = _plan(conn, f"SELECT * FROM vstore.{function}(%s, 10)", (data[key][0],))
    assert f"Index Scan using {index}" in plan, plan


def test_store_queries_ride_the_hnsw_index_with_a_broad_filter(db):
    """(A narrow filter may rightly plan a btree scan + sort instead: exact, and cheap for few rows.)"""
    from vstore.db.sql import load

    conn, data = db
    conn.execute("SET enable_seqscan = off")
    params = {"q": data["images"][0], "k": 10, "dataset_id": 1, "split": None, "exclude_id": None}
    plan = _plan(conn, load("queries/search_images"), params)
    assert "Index Scan using images_embedding_hnsw" in plan, plan
    params.pop("exclude_id")
    plan = _plan(conn, load("queries/search_captions"), params)
    assert "Index Scan using captions_embedding_hnsw" in plan, plan


def test_functions_are_inlinable_sql(db):
    """LANGUAGE sql, not STRICT, no SET clause, not SECURITY DEFINER: what PostgreSQL needs to inline a
    set-returning function into the caller's query (otherwise the index cannot be used)."""
    conn, _ = db
    rows = conn.execute(
        """
        SELECT p.proname, l.lanname, p.proisstrict, p.proconfig IS NULL, p.prosecdef, p.provolatile
        FROM pg_proc p JOIN pg_namespace n ON n.oid = p.pronamespace JOIN pg_language l ON l.oid = p.prolang
        WHERE n.nspname = 'vstore' AND p.proretset
        """
    ).fetchall()
    assert len(rows) == 11
    for name, language, strict, no_config, secdef, volatility in rows:
        assert (language, strict, no_config, secdef, volatility) == ("sql", False, True, False, "s"), name


def test_present_only_caption_queries_still_use_the_hnsw_index(db):
    """The caption searches join images for status = 'ok' (issue 10) and still ride the HNSW index."""
    from vstore.db.sql import load

    conn, data = db
    conn.execute("SET enable_seqscan = off")
    q = data["images"][0]
    for sql, params in (
        ("SELECT * FROM vstore.search_captions(%(q)s, 10)", {"q": q}),
        ("SELECT * FROM vstore.captions_for_image(%(id)s, 10)", {"id": data["image_ids"][0]}),
        (load("queries/search_captions"), {"q": q, "k": 10, "dataset_id": None, "split": None}),
        (load("queries/compare_knn_captions"), {"q": q, "k": 10}),
    ):
        plan = "\n".join(r[0] for r in conn.execute("EXPLAIN " + sql, params).fetchall())
        assert "Index Scan using captions_embedding_hnsw" in plan, plan
        assert "status = 'ok'" in plan, plan
