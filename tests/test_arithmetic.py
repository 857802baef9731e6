"""Query arithmetic ("a cat" + beach.jpg - "snow", weights as 2:'a cat') in the Python API, the CLI, and
the same sum written in SQL with pgvector's vector operators and l2_normalize, on hand-made vectors.

Texts: 'a cat' = e0, 'snow' = e1, 'beach' = e2. Images: A = (e0 + e1)/√2 (a cat in the snow),
B = (e0 + e2)/√2 (a cat on a beach), C = e0, D = e2, E = e1.
2·cat + beach − snow = (2, −1, 1)/√6: cosines B 3/√12 = 0.866, C 2/√6 = 0.816, D 1/√6 = 0.408,
A 1/√12 = 0.289, E −1/√6: order B, C, D, A, E. Without the minus term, (2, 0, 1)/√5: B 0.949, C 0.894,
A 0.632, D 0.447, E 0: the minus term moves A below D.
"""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import psycopg
import pytest

from tests.test_search import FakeEncoder, add_dataset
from vstore.db.connect import connection
from vstore.errors import ConfigError
from vstore.search.arithmetic import QueryTerm, parse_term, parse_terms
from vstore.search.store import Store

DIM = 32
E = np.eye(DIM, dtype=np.float32)
TEXTS = {"a cat": E[0], "snow": E[1], "beach": E[2]}
WITH_MINUS = ["B", "C", "D", "A", "E"]
WITHOUT_MINUS = ["B", "C", "A", "D", "E"]


@pytest.fixture
def scene(settings):
    r = 1 / math.sqrt(2)
    images = np.stack([r * (E[0] + E[1]), r * (E[0] + E[2]), E[0], E[2], E[1]])
    with connection(settings) as conn:
        ids = add_dataset(conn, "scene", images)
    names = dict(zip(ids, "ABCDE", strict=True))
    with Store(settings, encoder=FakeEncoder(TEXTS, {(0, 0, 255): E[2]})) as store:
        store.cache_texts(list(TEXTS))  # SQL clients read these through vstore.text('...')
    return settings, names, ids


def test_weights_plus_and_minus_give_the_hand_computed_order(scene, tmp_path: Path):
    from PIL import Image

    settings, names, _ = scene
    beach = tmp_path / "beach.png"
    Image.new("RGB", (4, 4), (0, 0, 255)).save(beach)
    with Store(settings, encoder=FakeEncoder(TEXTS, {(0, 0, 255): E[2]})) as store:
        terms = parse_terms(["2:a cat"], [str(beach)], ["snow"])
        assert terms == [QueryTerm("a cat", 2.0), QueryTerm(beach, 1.0), QueryTerm("snow", -1.0)]
        hits = store.search_terms(terms, k=5, exact=True)
        assert [names[h.id] for h in hits] == WITH_MINUS
        expected = [
            3 / math.sqrt(12),
            2 / math.sqrt(6),
            1 / math.sqrt(6),
            1 / math.sqrt(12),
            -1 / math.sqrt(6),
        ]
        assert [h.similarity for h in hits] == pytest.approx(expected, abs=1e-5)
        without = store.search_terms(parse_terms(["2:a cat"], [str(beach)]), k=5, exact=True)
        assert [names[h.id] for h in without] == WITHOUT_MINUS


def test_terms_parse_weights_and_refuse_nonsense():
    assert parse_term("0.5:a dog") == QueryTerm("a dog", 0.5)
    assert parse_term("a dog: portrait") == QueryTerm("a dog: portrait", 1.0)  # no leading number
    assert parse_term("missing.jpg") == QueryTerm("missing.jpg", 1.0)  # not a file: a text
    with pytest.raises(ConfigError, match="above 0"):
        parse_term("0:a dog")
    with pytest.raises(ConfigError, match="empty"):
        parse_term("2:  ")


def test_terms_that_cancel_out_are_refused(scene):
    settings, _, _ = scene
    with Store(settings, encoder=FakeEncoder(TEXTS, {})) as store:
        with pytest.raises(ConfigError, match="cancel out"):
            store.search_terms([QueryTerm("a cat"), QueryTerm("a cat", -1.0)])


def test_cli_plus_minus_and_weights(scene, monkeypatch, capsys):
    from vstore.cli import main

    settings, names, ids = scene
    monkeypatch.setenv("VSTORE_DATABASE_URL", settings.database_url)
    # Every text is in the cache, so no model is loaded; --like adds a stored image (D = beach) as a term.
    args = ["search", "2:a cat", "--like", str(ids[3]), "--minus", "snow", "-k", "5", "--exact", "--json"]
    assert main(args) == 0
    import json

    rows = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert [names[r["id"]] for r in rows] == WITH_MINUS


SQL_WEIGHTED = """
SELECT id FROM vstore.search_images(
    l2_normalize(vstore.text('a cat') * array_fill(2, ARRAY[vector_dims(vstore.text('a cat'))])::vector
                 + (SELECT embedding FROM images WHERE id = %(beach)s)
                 - vstore.text('snow')),
    5)
"""
SQL_REPEATED = """
SELECT id FROM vstore.search_images(
    l2_normalize(vstore.text('a cat') + vstore.text('a cat') + vstore.text('beach') - vstore.text('snow')), 5)
"""


def test_the_same_sum_from_sql_with_pgvector_operators(scene):
    # The statements docs/search.md shows, through a real connection (exact scan: the HNSW index is
    # approximate, and on five rows the planner may choose either).
    settings, names, ids = scene
    with psycopg.connect(settings.database_url) as conn:
        conn.execute("SET enable_indexscan = off")
        weighted = [names[r[0]] for r in conn.execute(SQL_WEIGHTED, {"beach": ids[3]}).fetchall()]
        repeated = [names[r[0]] for r in conn.execute(SQL_REPEATED).fetchall()]
    assert weighted == WITH_MINUS and repeated == WITH_MINUS


def test_a_weight_prefix_means_the_same_with_or_without_plus_minus(scene, monkeypatch, capsys):
    # Alone, "2:a cat" is the term 'a cat' weighted 2: the same unit vector as "a cat", not the literal text
    # "2:a cat" (which is not in the cache: searching it would need a model, and there is none here).
    import json

    from vstore.cli import main

    settings, names, _ = scene
    monkeypatch.setenv("VSTORE_DATABASE_URL", settings.database_url)

    def ids(*query: str) -> list[str]:
        assert main(["search", *query, "-k", "5", "--exact", "--json"]) == 0
        return [names[json.loads(line)["id"]] for line in capsys.readouterr().out.splitlines()]

    assert ids("2:a cat") == ids("a cat") == ids("1:a cat", "--plus", "0.5:a cat")
    assert main(["search", "0:a cat"]) == 2
    assert "use --minus" in capsys.readouterr().err
