"""Full text and hybrid search in SQL (revision 0006): vstore.text_images/text_captions against rankings
worked out by hand, reciprocal rank fusion against the formula, each side of a hybrid alone when the other
is empty, the filter arguments, and all of it from psql under the reader role."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime

import numpy as np
import psycopg
import pytest
from pgvector.psycopg import register_vector

from vstore.db.roles import ensure_reader

DIM = 32


def _unit(cos: float, axis: int = 1) -> np.ndarray:
    """A unit vector at cosine `cos` to e0 (leaning towards e_axis)."""
    v = np.zeros(DIM, dtype=np.float32)
    v[0], v[axis] = cos, np.sqrt(1 - cos * cos)
    return v


# name -> (caption, cosine to the query vector e0, label, taken_at year, width)
ROWS = {
    "a": ("a green leaf", 1.0, "plant", 2001, 100),
    "b": ("the blue sky", 0.9, "sky", 2002, 200),
    "c": ("a red apple", 0.8, "fruit|red", 2003, 300),
    "d": ("red apples, red cherries", 0.7, "fruit|red", 2004, 400),
}
Q = _unit(1.0)


@pytest.fixture
def db(settings):
    with psycopg.connect(settings.database_url) as conn:
        register_vector(conn)
        dataset = conn.execute(
            "INSERT INTO datasets (name, root, format) VALUES ('d', '/data', 'folder') RETURNING id"
        ).fetchone()[0]
        ids = {}
        for name, (caption, cos, label, year, width) in ROWS.items():
            ids[name] = conn.execute(
                "INSERT INTO images (dataset_id, path, embedding, label, taken_at, width, height) "
                "VALUES (%s, %s, %s, %s, %s, %s, 100) RETURNING id",
                (dataset, f"{name}.jpg", _unit(cos), label, datetime(year, 6, 1, tzinfo=UTC), width),
            ).fetchone()[0]
            conn.execute(
                "INSERT INTO captions (image_id, source_id, text, embedding) VALUES (%s, '0', %s, %s)",
                (ids[name], caption, _unit(cos, axis=2)),
            )
        conn.commit()
        yield conn, {v: k for k, v in ids.items()}, settings


def _names(rows, names) -> list[str]:
    return [names[r[0]] for r in rows]


def test_text_images_ranks_by_word_matches_with_english_stemming(db):
    conn, names, _ = db
    # 'red' twice in d, once in c; 'apple' matches 'apples' (stemmed); 'the' is a stop word
    assert _names(conn.execute("SELECT * FROM vstore.text_images('red')").fetchall(), names) == ["d", "c"]
    assert _names(conn.execute("SELECT * FROM vstore.text_images('apple')").fetchall(), names) == ["c", "d"]
    assert conn.execute("SELECT * FROM vstore.text_images('the')").fetchall() == []
    # web-search syntax: a phrase (word order matters), and a word left out
    assert _names(conn.execute("""SELECT * FROM vstore.text_images('"red apple"')""").fetchall(), names) == [
        "d",
        "c",
    ]
    assert conn.execute("""SELECT * FROM vstore.text_images('"leaf green"')""").fetchall() == []
    assert _names(conn.execute("SELECT * FROM vstore.text_images('red -cherries')").fetchall(), names) == [
        "c"
    ]
    rows = conn.execute("SELECT id, score FROM vstore.text_images('red')").fetchall()
    assert rows[0][1] > rows[1][1] > 0


def test_the_simple_configuration_does_not_stem(settings):
    from vstore.db.migrations import read_text_search

    with psycopg.connect(settings.database_url) as conn:
        assert read_text_search(conn) == "english"
        assert conn.execute(
            "SELECT to_tsvector('simple', 'apples') @@ websearch_to_tsquery('simple', 'apple')"
        ).fetchone() == (False,)


def test_text_captions_returns_captions_best_first(db):
    conn, _, _ = db
    rows = conn.execute("SELECT text FROM vstore.text_captions('red', 5)").fetchall()
    assert [r[0] for r in rows] == ["red apples, red cherries", "a red apple"]


def test_rrf_fuses_the_two_rankings_by_the_formula(db):
    conn, names, _ = db
    # vector ranks (cosine to e0): a 1, b 2, c 3, d 4; text ranks for 'red': d 1, c 2.
    # RRF with k = 60: d 1/61 + 1/64 = .032018 > c 1/62 + 1/63 = .032002 > a 1/61 > b 1/62
    rows = conn.execute(
        "SELECT id, score, text_rank, vector_rank FROM vstore.hybrid_images('red', %s, 4)", (Q,)
    ).fetchall()
    assert _names(rows, names) == ["d", "c", "a", "b"]
    expected = {"d": 1 / 61 + 1 / 64, "c": 1 / 62 + 1 / 63, "a": 1 / 61, "b": 1 / 62}
    for id_, score, _, _ in rows:
        assert score == pytest.approx(expected[names[id_]], abs=1e-12)
    # other rrf_k: the same formula, from the same ranks
    ranks = {"a": (None, 1), "b": (None, 2), "c": (2, 3), "d": (1, 4)}
    for rrf_k in (1, 2, 1000):
        want = {n: sum(1 / (rrf_k + r) for r in pair if r is not None) for n, pair in ranks.items()}
        rows = conn.execute(
            "SELECT id, score FROM vstore.hybrid_images('red', %s, 4, %s)", (Q, rrf_k)
        ).fetchall()
        assert _names(rows, names) == sorted(want, key=lambda n: -want[n]), rrf_k
        for id_, score in rows:
            assert score == pytest.approx(want[names[id_]], abs=1e-12)


def test_hybrid_equals_each_side_alone_when_the_other_is_empty(db):
    conn, _, _ = db
    vector_only = conn.execute("SELECT id FROM vstore.search_images_filtered(%s, 3)", (Q,)).fetchall()
    assert conn.execute("SELECT id FROM vstore.hybrid_images('zebra', %s, 3)", (Q,)).fetchall() == vector_only
    assert conn.execute("SELECT id FROM vstore.hybrid_images('', %s, 3)", (Q,)).fetchall() == vector_only
    text_only = conn.execute("SELECT id FROM vstore.text_images('red apple', 3)").fetchall()
    assert conn.execute("SELECT id FROM vstore.hybrid_images('red apple', NULL, 3)").fetchall() == text_only
    cap_vector = conn.execute(
        "SELECT id FROM vstore.search_captions_filtered(%s, 3)", (_unit(1.0, 2),)
    ).fetchall()
    assert (
        conn.execute("SELECT id FROM vstore.hybrid_captions('zebra', %s, 3)", (_unit(1.0, 2),)).fetchall()
        == cap_vector
    )
    cap_text = conn.execute("SELECT id FROM vstore.text_captions('red', 3)").fetchall()
    assert conn.execute("SELECT id FROM vstore.hybrid_captions('red', NULL, 3)").fetchall() == cap_text


def test_filter_arguments_and_the_distance_cutoff(db):
    conn, names, _ = db
    one = "SELECT id FROM vstore.{}"
    assert _names(conn.execute(one.format("text_images('red', label => 'fruit')")).fetchall(), names) == [
        "d",
        "c",
    ]
    assert _names(conn.execute(one.format("text_images('red', min_width => 350)")).fetchall(), names) == ["d"]
    assert _names(
        conn.execute(one.format("text_images('red', taken_before => '2004-01-01')")).fetchall(), names
    ) == ["c"]
    assert conn.execute(one.format("text_images('red', dataset => 'nope')")).fetchall() == []
    rows = conn.execute(
        "SELECT id FROM vstore.search_images_filtered(%s, 10, taken_after => '2002-01-01', label => 'red')",
        (Q,),
    ).fetchall()
    assert _names(rows, names) == ["c", "d"]
    # the cutoff: cosine distance of b is 0.1, of c 0.2; at most 0.15 keeps a and b only
    rows = conn.execute(
        "SELECT id, distance FROM vstore.search_images_filtered(%s, 10, max_distance => 0.15)", (Q,)
    ).fetchall()
    assert _names(rows, names) == ["a", "b"] and all(d <= 0.15 for _, d in rows)
    rows = conn.execute(
        "SELECT id FROM vstore.hybrid_images('sky', %s, 10, max_distance => 0.15)", (Q,)
    ).fetchall()
    assert set(_names(rows, names)) == {"a", "b"}


def test_reader_role_calls_the_new_functions_from_psql(db):
    conn, names, settings = db
    name = f"reader_{uuid.uuid4().hex[:8]}"  # roles are server-wide: one of its own, dropped after
    reader = ensure_reader(settings, name)
    try:
        _search_as_reader(reader.url, names)
    finally:
        conn.rollback()
        conn.execute(f"DROP OWNED BY {name}")
        conn.execute(f"DROP ROLE {name}")
        conn.commit()


def _search_as_reader(url: str, names: dict) -> None:
    with psycopg.connect(url, autocommit=True) as rconn:
        register_vector(rconn)
        assert _names(rconn.execute("SELECT id FROM vstore.text_images('red', 5)").fetchall(), names) == [
            "d",
            "c",
        ]
        rows = rconn.execute("SELECT id FROM vstore.hybrid_images('red', %s, 4)", (Q,)).fetchall()
        assert _names(rows, names) == ["d", "c", "a", "b"]
        assert (
            len(
                rconn.execute(
                    "SELECT * FROM vstore.hybrid_captions('red', %s, 4)", (_unit(1.0, 2),)
                ).fetchall()
            )
            == 4
        )


def test_text_search_finds_nothing_in_missing_images(db):
    conn, names, _ = db
    conn.execute("UPDATE images SET status = 'missing' WHERE path = 'd.jpg'")
    assert _names(conn.execute("SELECT id FROM vstore.text_images('red')").fetchall(), names) == ["c"]
    assert [r[0] for r in conn.execute("SELECT text FROM vstore.text_captions('red')").fetchall()] == [
        "a red apple"
    ]
