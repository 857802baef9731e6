"""pgvector-bq: Hamming candidates from a binary-quantised HNSW index, re-ranked by <=>. Exact when the
re-rank depth covers every row, on both storages; the index it built is gone afterwards."""

from __future__ import annotations

import numpy as np
import pytest

from vstore.bench.synth import load_synthetic
from vstore.compare.base import BuildOptions, load_corpus
from vstore.compare.harness import compare
from vstore.compare.methods import build_method
from vstore.db.connect import connection
from vstore.db.indexes import list_indexes
from vstore.db.migrations import upgrade
from vstore.encode.encoder import TINY_TEST_MODEL, ModelSpec

TINY_SPEC = ModelSpec(name=TINY_TEST_MODEL, pretrained="random", dim=32)
ROWS = 300


@pytest.fixture(params=["vector", "halfvec"])
def loaded(request, empty_settings):
    upgrade(empty_settings, "head", TINY_SPEC, storage=request.param)
    load_synthetic(empty_settings, ROWS, captions_per_image=1, seed=8)
    return empty_settings


def test_bq_is_exact_when_the_rerank_depth_covers_all_rows(loaded):
    options = BuildOptions(rerank_sweep=(5, 1000))
    rows = compare(loaded, queries=20, methods=["pgvector-bq"], options=options, repeats=1).rows
    by_depth = {r.params["rerank"]: r for r in rows}
    assert by_depth[1000].recall_at_k == 1.0
    assert by_depth[5].recall_at_k <= 0.5  # 5 candidates can hold at most 5 of the true 10
    assert by_depth[1000].build_s is not None and by_depth[1000].size_bytes > 0
    with connection(loaded) as conn:  # built for the run, dropped after it
        assert [i.kind for i in list_indexes(conn)] == ["hnsw", "hnsw"]


def test_bq_answers_match_the_exact_order_and_the_index_is_told_apart(loaded):
    corpus = load_corpus(loaded, "images")
    method = build_method("pgvector-bq", corpus, loaded, BuildOptions(rerank_sweep=(ROWS,)))
    try:
        with connection(loaded) as conn:
            kinds = {i.name: i.kind for i in list_indexes(conn)}
        assert kinds["images_embedding_bq"] == "bq" and kinds["images_embedding_hnsw"] == "hnsw"
        method.configure(rerank=ROWS)
        query = corpus.vectors[3]
        ids, distances = method.search(query, 10)
        exact = corpus.ids[np.argsort(1.0 - corpus.vectors @ query, kind="stable")[:10]]
        assert list(ids) == list(exact)
        assert np.all(np.diff(distances) >= -1e-6)
    finally:
        method.close()


def test_bq_over_captions_skips_captions_of_missing_images(loaded):
    with connection(loaded) as conn:
        conn.execute(
            "UPDATE images SET status = 'missing' WHERE id IN (SELECT id FROM images ORDER BY id LIMIT 100)"
        )
        conn.commit()
        gone = {
            r[0]
            for r in conn.execute(
                "SELECT c.id FROM captions c JOIN images i ON i.id = c.image_id WHERE i.status = 'missing'"
            )
        }
    corpus = load_corpus(loaded, "captions")  # present captions only
    method = build_method("pgvector-bq", corpus, loaded, BuildOptions(rerank_sweep=(ROWS,)))
    try:
        method.configure(rerank=ROWS)
        for query in corpus.vectors[:5]:
            ids, _ = method.search(query, 10)
            exact = corpus.ids[np.argsort(1.0 - corpus.vectors @ query, kind="stable")[:10]]
            assert not gone & set(ids.tolist())
            assert list(ids) == list(exact)
    finally:
        method.close()
