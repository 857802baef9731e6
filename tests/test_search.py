"""Store searches in all four directions on controlled vectors, filters, knobs, the text cache, the CLI."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import psycopg
import pytest

from vstore.bench.synth import copy_captions, copy_images, synth_vectors
from vstore.db.connect import connection
from vstore.encode.encoder import ModelSpec
from vstore.errors import ConfigError, NotFound
from vstore.search.store import CaptionHit, ImageHit, Store

DIM = 32
ROOT = "/data/photos"


class FakeEncoder:
    """Deterministic stand-in for the CLIP model: known texts and image colours map to given vectors."""

    device = "cpu"

    def __init__(self, texts: dict[str, np.ndarray], colours: dict[tuple[int, int, int], np.ndarray]) -> None:
        self.spec = ModelSpec(name="vstore-tiny", pretrained="random", dim=DIM)
        self.texts, self.colours = texts, colours
        self.encoded: list[str] = []

    @property
    def dim(self) -> int:
        return DIM

    def image_transform(self):
        return lambda image: np.asarray(image.resize((1, 1)), dtype=np.int64).reshape(3)

    def encode_images(self, pixels: np.ndarray) -> np.ndarray:
        return np.stack([self.colours[tuple(int(v) for v in row)] for row in pixels])

    def encode_texts(self, texts: list[str]) -> np.ndarray:
        self.encoded.extend(texts)
        return np.stack([self.texts[t] for t in texts])

    def count_tokens(self, text: str) -> int:
        return 0


def _unit(v: np.ndarray) -> np.ndarray:
    return (v / np.linalg.norm(v)).astype(np.float32)


def add_dataset(
    conn: psycopg.Connection, name: str, vectors: np.ndarray, splits: list[str] | None = None
) -> list[int]:
    """Images with the given vectors (paths img/0000.jpg ...) in a new dataset; returns their ids."""
    dataset_id = conn.execute(
        "INSERT INTO datasets (name, root, format) VALUES (%s, %s, 'folder') RETURNING id", (name, ROOT)
    ).fetchone()[0]
    start = conn.execute("SELECT coalesce(max(id), 0) + 1 FROM images").fetchone()[0]
    ids = list(range(start, start + len(vectors)))
    copy_images(conn, dataset_id, ids, [f"img/{i:04d}.jpg" for i in range(len(vectors))], vectors, splits)
    conn.commit()
    return ids


def add_captions(
    conn: psycopg.Connection, image_ids: list[int], texts: list[str], vectors: np.ndarray
) -> list[int]:
    copy_captions(conn, image_ids, texts, vectors)
    conn.commit()
    return [r[0] for r in conn.execute("SELECT id FROM captions ORDER BY id").fetchall()]


@pytest.fixture
def corpus(settings):
    """300 clustered images (dataset 'photos') with one caption each, near their image."""
    vectors = synth_vectors(300, DIM, clusters=12, seed=1)
    caption_vectors = synth_vectors(300, DIM, clusters=12, seed=2)
    with connection(settings) as conn:
        ids = add_dataset(conn, "photos", vectors, ["val" if i % 20 == 0 else "train" for i in range(300)])
        texts = [f"caption {i}" for i in range(300)]
        caption_ids = add_captions(conn, ids, texts, caption_vectors)
    return {"ids": ids, "vectors": vectors, "caption_ids": caption_ids, "caption_vectors": caption_vectors}


def _exact(vectors: np.ndarray, q: np.ndarray, k: int) -> list[int]:
    return list(np.argsort(1.0 - vectors @ q, kind="stable")[:k])


def test_text_to_image_returns_the_nearest_image(settings, corpus):
    target = 17
    query = _unit(corpus["vectors"][target] + 0.01)
    with Store(settings, encoder=FakeEncoder({"a red square": query}, {})) as store:
        hits = store.search_text("a red square", k=5)
    assert [type(h) for h in hits] == [ImageHit] * 5
    assert hits[0].id == corpus["ids"][target]
    assert hits[0].path == f"{ROOT}/img/{target:04d}.jpg"
    assert hits[0].dataset == "photos"
    assert [h.distance for h in hits] == sorted(h.distance for h in hits)
    assert all(abs(h.similarity - (1 - h.distance)) < 1e-9 for h in hits)


def test_image_file_to_image_returns_the_nearest_image(settings, corpus, tmp_path):
    from PIL import Image

    picture = tmp_path / "query.png"
    Image.new("RGB", (8, 8), (255, 0, 0)).save(picture)
    encoder = FakeEncoder({}, {(255, 0, 0): corpus["vectors"][42]})
    with Store(settings, encoder=encoder) as store:
        hits = store.search_image(picture, k=3)
    assert hits[0].id == corpus["ids"][42]
    assert hits[0].distance == pytest.approx(0.0, abs=1e-5)


def test_like_returns_the_nearest_other_image(settings, corpus):
    vectors = corpus["vectors"]
    expected = [corpus["ids"][i] for i in _exact(vectors, vectors[5], 6) if i != 5][:5]
    with Store(settings) as store:  # no encoder needed: the query vector is stored
        hits = store.search_like(corpus["ids"][5], k=5, exact=True)
        assert not store.encoder_loaded
    assert [h.id for h in hits] == expected


def test_search_vector_ranks_hand_made_images_by_cosine_distance(settings):
    # Known answer, not a stored vector searched for itself: images e0, 0.6 e0 + 0.8 e1, 0.8 e0 + 0.6 e2,
    # e3; the query e0 + e1 (normalised) has cosines 0.7071, 0.9899, 0.5657, 0 with them.
    e = np.eye(DIM, dtype=np.float32)
    images = np.stack([e[0], 0.6 * e[0] + 0.8 * e[1], 0.8 * e[0] + 0.6 * e[2], e[3]])
    with connection(settings) as conn:
        ids = add_dataset(conn, "hand", images)
    with Store(settings) as store:
        hits = store.search_vector(_unit(e[0] + e[1]), k=4)
    assert [h.id for h in hits] == [ids[1], ids[0], ids[2], ids[3]]
    expected = [1 - 1.4 / 2**0.5, 1 - 1 / 2**0.5, 1 - 0.8 / 2**0.5, 1.0]
    assert [h.distance for h in hits] == pytest.approx(expected, abs=1e-5)


def test_text_to_text_returns_the_nearest_caption(settings, corpus):
    query = _unit(corpus["caption_vectors"][123] + 0.01)
    with Store(settings, encoder=FakeEncoder({"two cats": query}, {})) as store:
        hits = store.search_text("two cats", target="captions", k=4)
    assert isinstance(hits[0], CaptionHit)
    assert hits[0].id == corpus["caption_ids"][123]
    assert hits[0].text == "caption 123"
    assert hits[0].image_id == corpus["ids"][123]
    assert hits[0].path == f"{ROOT}/img/0123.jpg"


def test_image_to_text_returns_the_nearest_caption(settings, corpus):
    vectors, caption_vectors = corpus["vectors"], corpus["caption_vectors"]
    expected = [corpus["caption_ids"][i] for i in _exact(caption_vectors, vectors[7], 3)]
    with Store(settings) as store:
        hits = store.search_like(corpus["ids"][7], target="captions", k=3, exact=True)
    assert [h.id for h in hits] == expected


def test_exact_and_default_agree_with_brute_force(settings, corpus):
    q = _unit(np.arange(DIM, dtype=np.float32) - 10)
    expected = [corpus["ids"][i] for i in _exact(corpus["vectors"], q, 10)]
    with Store(settings) as store:
        assert [h.id for h in store.search_vector(q, k=10, exact=True)] == expected
        assert [h.id for h in store.search_vector(q, k=10, ef_search=200)] == expected


def test_filter_matching_five_percent_of_rows_still_returns_k_rows(settings):
    vectors = synth_vectors(4000, DIM, clusters=20, seed=3)
    splits = ["val" if i % 20 == 0 else "train" for i in range(4000)]  # 200 rows, 5%
    with connection(settings) as conn:
        ids = add_dataset(conn, "big", vectors, splits)
        conn.execute("ANALYZE images")
        conn.commit()
    q = vectors[1]  # a train row: its HNSW neighbourhood is mostly train rows
    val_rows = np.array([i for i in range(4000) if splits[i] == "val"])
    expected = [ids[val_rows[j]] for j in _exact(vectors[val_rows], q, 30)]
    with Store(settings) as store:
        hits = store.search_vector(q, k=30, split="val")
        exact = store.search_vector(q, k=30, split="val", exact=True)
    assert len(hits) == 30
    assert all(h.split == "val" for h in hits)
    assert [h.id for h in exact] == expected
    assert len(set(h.id for h in hits) & set(expected)) >= 27  # approximate, but nearly all


def test_an_unknown_split_is_an_error_that_lists_the_splits(settings, corpus, monkeypatch, capsys):
    from vstore.cli import main

    with Store(settings) as store:
        assert len(store.search_vector(corpus["vectors"][0], k=3, split="val")) == 3
        with pytest.raises(NotFound, match="no split named 'val2017'; the splits are: train, val"):
            store.search_vector(corpus["vectors"][0], split="val2017")
        with pytest.raises(NotFound, match="no split named 'test' in that dataset"):
            store.search_vector(corpus["vectors"][0], split="test", dataset="photos", target="captions")
    monkeypatch.setenv("VSTORE_DATABASE_URL", settings.database_url)
    assert main(["search", "--like", str(corpus["ids"][0]), "--split", "val2017"]) == 1
    assert "Error: there is no split named 'val2017'" in capsys.readouterr().err


def test_dataset_filter_returns_only_that_dataset(settings):
    vectors = synth_vectors(200, DIM, seed=4)
    with connection(settings) as conn:
        add_dataset(conn, "a", vectors[:190])
        b_ids = add_dataset(conn, "b", vectors[190:])
    with Store(settings) as store:
        hits = store.search_vector(vectors[0], k=10, dataset="b")
        with pytest.raises(NotFound, match="no dataset named 'nope'"):
            store.search_vector(vectors[0], dataset="nope")
    assert sorted(h.id for h in hits) == b_ids


def test_searched_text_is_cached_for_sql_and_encoded_once(settings, corpus):
    encoder = FakeEncoder({"a dog": corpus["vectors"][3]}, {})
    with Store(settings, encoder=encoder) as store:
        store.search_text("a dog")
        store.search_text("a dog", target="captions")
    assert encoder.encoded == ["a dog"]
    with psycopg.connect(settings.database_url) as conn:
        row = conn.execute("SELECT id FROM vstore.search_images(vstore.text('a dog'), 1)").fetchone()
    assert row[0] == corpus["ids"][3]


def test_embed_text_prefills_the_cache_and_reports_new_texts(settings):
    texts = {t: _unit(np.full(DIM, i + 1.0) + np.eye(DIM)[i]) for i, t in enumerate(["one", "two"])}
    with Store(settings, encoder=FakeEncoder(texts, {})) as store:
        first = store.cache_texts(["one", "two", "one"])
        second = store.cache_texts(["two"])
    assert [(c.text, c.added) for c in first] == [("one", True), ("two", True)]
    assert [(c.text, c.added, c.id) for c in second] == [("two", False, first[1].id)]


def test_text_with_quotes_and_semicolons_is_inert(settings, corpus):
    nasty = 'x\'); DROP TABLE images; -- "quoted" $$ \\ ;'
    with Store(settings, encoder=FakeEncoder({nasty: corpus["vectors"][0]}, {})) as store:
        with pytest.raises(NotFound, match="no split named"):  # no image has that split
            store.search_text(nasty, k=1, split="val'; DELETE FROM images; --")
        assert store.counts()["images"] == 300
    with psycopg.connect(settings.database_url) as conn:
        assert conn.execute("SELECT text FROM text_queries").fetchall() == [(nasty,)]


def test_bad_options_give_clear_errors(settings, corpus):
    with Store(settings) as store:
        with pytest.raises(ConfigError, match="-k must be between"):
            store.search_like(corpus["ids"][0], k=0)
        with pytest.raises(ConfigError, match="unknown target"):
            store.search_like(corpus["ids"][0], target="videos")
        for bad in (0, -5, 1001):
            with pytest.raises(ConfigError, match="--ef-search must be between"):
                store.search_like(corpus["ids"][0], ef_search=bad)
        with pytest.raises(NotFound, match="no image with id 999999"):
            store.search_like(999999)
        with pytest.raises(ConfigError, match="empty"):
            store.embed_text([" "])


def test_real_tiny_model_text_to_text_finds_the_same_caption(settings, tiny_encoder):
    texts = ["a dog on a skateboard", "a bowl of soup", "two people on a beach", "a red bus"]
    vectors = tiny_encoder.encode_texts(texts)
    with connection(settings) as conn:
        ids = add_dataset(conn, "t", synth_vectors(4, DIM, seed=5))
        caption_ids = add_captions(conn, ids, texts, vectors)
    with Store(settings, encoder=tiny_encoder) as store:
        hits = store.search_text("a bowl of soup", target="captions", k=2)
    assert hits[0].id == caption_ids[1]
    assert hits[0].distance == pytest.approx(0.0, abs=1e-4)


def test_get_returns_the_image_with_its_captions(settings, corpus):
    with Store(settings) as store:
        record = store.get(corpus["ids"][9])
    assert record.path == f"{ROOT}/img/0009.jpg"
    assert record.captions == ["caption 9"]
    assert record.has_embedding


# -- CLI ---------------------------------------------------------------------------------------------------


def _cli(monkeypatch, settings, *args: str) -> int:
    from vstore.cli import main

    monkeypatch.setenv("VSTORE_DATABASE_URL", settings.database_url)
    monkeypatch.setenv("VSTORE_HOME", str(settings.home))
    return main(list(args))


def test_cli_json_writes_one_object_per_hit_and_nothing_else(monkeypatch, capsys, settings, corpus):
    assert _cli(monkeypatch, settings, "search", "--like", str(corpus["ids"][4]), "-k", "3", "--json") == 0
    out = capsys.readouterr()
    lines = out.out.splitlines()
    assert len(lines) == 3
    rows = [json.loads(line) for line in lines]
    assert {"id", "path", "image_id", "distance", "similarity"} <= set(rows[0])
    assert rows[0]["path"].startswith(ROOT)
    assert "random weights" in out.err


def test_cli_text_search_on_captions_caches_the_text(monkeypatch, capsys, settings, corpus):
    assert _cli(monkeypatch, settings, "search", "a dog", "--target", "captions", "-k", "2", "--json") == 0
    rows = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert len(rows) == 2 and {"id", "text", "image_id", "distance", "similarity"} <= set(rows[0])
    assert _cli(monkeypatch, settings, "embed-text", "a cat", "a dog", "--json") == 0
    cached = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert [(c["text"], c["added"]) for c in cached] == [("a cat", True), ("a dog", False)]


def test_cli_table_shows_paths_and_scores(monkeypatch, capsys, settings, corpus):
    assert _cli(monkeypatch, settings, "search", "--like", str(corpus["ids"][4]), "-k", "2") == 0
    out = capsys.readouterr().out
    # One rule for paths: every vstore output shows the absolute path (the dataset root joined in).
    assert out.splitlines()[0].split() == ["#", "distance", "similarity", "id", "path"]
    assert f"{ROOT}/img/" in out


def test_cli_rejects_two_queries_with_exit_code_2(monkeypatch, capsys, settings, corpus, tmp_path: Path):
    assert _cli(monkeypatch, settings, "search", "text", "--like", "1") == 2
    assert "one query" in capsys.readouterr().err
