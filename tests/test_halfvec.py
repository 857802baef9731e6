"""`vstore init --storage halfvec` (revision 0004): halfvec(d) columns and halfvec_cosine_ops HNSW
indexes, a migration round trip, the SQL API and plain k-NN queries on the halfvec index, and the
library paths (synthetic load, search, export, compare) on both storages."""

from __future__ import annotations

import numpy as np
import psycopg
import pytest
from pgvector.psycopg import register_vector

from vstore.bench.synth import load_synthetic, synth_vectors
from vstore.config import Settings
from vstore.db.indexes import column_type
from vstore.db.migrations import downgrade, init, upgrade
from vstore.encode.encoder import TINY_TEST_MODEL, ModelSpec
from vstore.errors import ConfigError

TINY_SPEC = ModelSpec(name=TINY_TEST_MODEL, pretrained="random", dim=32)  # as in tests/conftest.py


def _columns(conn: psycopg.Connection) -> dict[str, str]:
    rows = conn.execute(
        """
        SELECT c.relname, format_type(a.atttypid, a.atttypmod) || ':' || a.attstorage::text
        FROM pg_attribute a JOIN pg_class c ON c.oid = a.attrelid
        JOIN pg_namespace n ON n.oid = c.relnamespace
        WHERE n.nspname = 'public' AND a.attname = 'embedding' AND c.relkind = 'r'
          AND c.relname IN ('images', 'captions', 'text_queries')
        """
    ).fetchall()
    return dict(rows)


def _hnsw_opclasses(conn: psycopg.Connection) -> dict[str, str]:
    rows = conn.execute(
        "SELECT indexname, substring(indexdef from 'USING hnsw \\(embedding (\\w+)\\)') FROM pg_indexes "
        "WHERE schemaname = 'public' AND indexdef LIKE '%%USING hnsw%%'"
    ).fetchall()
    return dict(rows)


def _record_has_storage(conn: psycopg.Connection) -> bool:
    return bool(
        conn.execute(
            "SELECT count(*) FROM information_schema.columns "
            "WHERE table_name = 'embedding_model' AND column_name = 'storage'"
        ).fetchone()[0]
    )


@pytest.fixture
def half_settings(empty_settings: Settings) -> Settings:
    upgrade(empty_settings, "head", TINY_SPEC, storage="halfvec")
    return empty_settings


def test_halfvec_migration_round_trip(half_settings):
    url = half_settings.database_url
    with psycopg.connect(url, autocommit=True) as conn:
        assert _columns(conn) == {
            "images": "halfvec(32):p",
            "captions": "halfvec(32):p",
            "text_queries": "vector(32):p",  # the query cache keeps full precision
        }
        assert _hnsw_opclasses(conn) == {
            "images_embedding_hnsw": "halfvec_cosine_ops",
            "captions_embedding_hnsw": "halfvec_cosine_ops",
        }
        assert not _record_has_storage(conn)  # the column type is the one record (revision 0007)
    downgrade(half_settings, "0006")
    with psycopg.connect(url, autocommit=True) as conn:  # 0004's record, refilled from the column type
        assert conn.execute("SELECT storage FROM embedding_model").fetchone()[0] == "halfvec"
    downgrade(half_settings, "0002")
    with psycopg.connect(url, autocommit=True) as conn:
        assert _columns(conn)["images"] == "vector(32):p"
        assert set(_hnsw_opclasses(conn).values()) == {"vector_cosine_ops"}
        assert (
            conn.execute(
                "SELECT count(*) FROM information_schema.columns WHERE column_name = 'storage'"
            ).fetchone()[0]
            == 0
        )
    upgrade(half_settings, "head")  # an existing database keeps its (vector) storage
    with psycopg.connect(url, autocommit=True) as conn:
        assert column_type(conn, "images")[0] == "vector"
        assert not _record_has_storage(conn)
    downgrade(half_settings, "base")
    with psycopg.connect(url, autocommit=True) as conn:
        assert _columns(conn) == {}


def test_init_refuses_to_switch_the_storage_of_an_existing_database(half_settings):
    with pytest.raises(ConfigError, match="stores its vectors as halfvec, not vector"):
        init(half_settings, TINY_TEST_MODEL, "random", storage="vector")
    init(half_settings, TINY_TEST_MODEL, "random")  # no --storage: keeps what is there
    with pytest.raises(ConfigError, match="unknown storage"):
        init(half_settings, TINY_TEST_MODEL, "random", storage="float8")


@pytest.fixture
def half_db(half_settings):
    load_synthetic(half_settings, 400, captions_per_image=1, seed=5)
    with psycopg.connect(half_settings.database_url) as conn:
        register_vector(conn)
        conn.execute("SET enable_seqscan = off")  # 400 rows: the choice must not depend on size
        yield conn


def _plan(conn: psycopg.Connection, sql: str, params: tuple) -> str:
    return "\n".join(r[0] for r in conn.execute("EXPLAIN " + sql, params).fetchall())


@pytest.mark.parametrize(
    ("sql", "index"),
    [
        ("SELECT id FROM images ORDER BY embedding <=> %s::halfvec(32) LIMIT 10", "images_embedding_hnsw"),
        (
            "SELECT id FROM captions ORDER BY embedding <=> %s::halfvec(32) LIMIT 10",
            "captions_embedding_hnsw",
        ),
        ("SELECT id FROM images ORDER BY embedding <=> %s LIMIT 10", "images_embedding_hnsw"),
        ("SELECT * FROM vstore.search_images(%s, 10)", "images_embedding_hnsw"),
        ("SELECT * FROM vstore.search_captions(%s, 10)", "captions_embedding_hnsw"),
    ],
)
def test_explain_uses_the_halfvec_hnsw_index_for_vector_queries(half_db, sql, index):
    plan = _plan(half_db, sql, (synth_vectors(1, 32, seed=1)[0],))
    assert f"Index Scan using {index}" in plan, plan


@pytest.mark.parametrize(
    ("function", "index", "table"),
    [
        ("similar_images", "images_embedding_hnsw", "images"),
        ("captions_for_image", "captions_embedding_hnsw", "images"),
        ("images_for_caption", "images_embedding_hnsw", "captions"),
    ],
)
def test_explain_uses_the_halfvec_hnsw_index_for_functions_taking_a_stored_id(
    half_db, function, index, table
):
    stored_id = half_db.execute(f"SELECT min(id) FROM {table}").fetchone()[0]
    plan = _plan(half_db, f"SELECT * FROM vstore.{function}(%s, 10)", (stored_id,))
    assert f"Index Scan using {index}" in plan, plan


def test_sql_api_on_halfvec_skips_images_that_are_not_ok(half_db):
    """The halfvec functions carry revision 0003's status filter, the caption ones through images."""
    image_id, vector = half_db.execute(
        "SELECT id, embedding::vector FROM images ORDER BY id LIMIT 1"
    ).fetchone()
    assert half_db.execute("SELECT id FROM vstore.search_images(%s, 1)", (vector,)).fetchone()[0] == image_id
    caption = half_db.execute("SELECT id FROM captions WHERE image_id = %s", (image_id,)).fetchone()[0]
    half_db.execute("UPDATE images SET status = 'missing' WHERE id = %s", (image_id,))
    assert image_id not in {
        r[0] for r in half_db.execute("SELECT id FROM vstore.search_images(%s, 5)", (vector,))
    }
    near = {r[0] for r in half_db.execute("SELECT id FROM vstore.captions_for_image(%s, 400)", (image_id,))}
    assert caption not in near and len(near) > 0
    half_db.rollback()


def test_search_export_and_compare_work_on_halfvec(half_settings, tmp_path):
    from vstore.compare.export import export
    from vstore.compare.harness import compare
    from vstore.db.status import database_status
    from vstore.search.store import Store

    assert database_status(half_settings)["storage"] == "halfvec"
    load_synthetic(half_settings, 300, captions_per_image=1, seed=6)
    report = export(half_settings, tmp_path / "out", tables=("images",))
    vectors = np.load(tmp_path / "out" / "images.npy")
    ids = np.load(tmp_path / "out" / "images_ids.npy")
    assert report.counts["images"] == 300 and vectors.dtype == np.float32
    assert np.allclose(np.linalg.norm(vectors, axis=1), 1.0, atol=1e-2)  # half precision, still unit
    with Store(half_settings) as store:
        exact = [h.id for h in store.search_vector(vectors[7], k=5, exact=True)]
        assert exact[0] == ids[7]
        assert [h.id for h in store.search_vector(vectors[7], k=5, ef_search=200)] == exact
        assert store.image_vector(int(ids[7])) == pytest.approx(vectors[7], abs=1e-6)
    rows = compare(half_settings, queries=20, methods=["pgvector-hnsw", "faiss-flat"], repeats=1).rows
    best = max(r.recall_at_k for r in rows if r.method == "pgvector-hnsw")
    assert best >= 0.95 and next(r for r in rows if r.method == "faiss-flat").recall_at_k == 1.0


@pytest.mark.slow
def test_cli_init_storage_option_rejects_an_unknown_storage_with_exit_2(tmp_path):
    import os
    import subprocess
    import sys

    env = {k: v for k, v in os.environ.items() if not k.startswith("VSTORE_")}
    result = subprocess.run(
        [sys.executable, "-m", "vstore", "init", "--storage", "float8"],
        env={**env, "VSTORE_HOME": str(tmp_path)},
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 2 and "Traceback" not in result.stderr
    assert "--storage" in result.stderr and "vector or halfvec" in result.stderr
