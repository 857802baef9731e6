"""Filtered vector search (search/filters.py): both plans against numpy brute force at several
selectivities, the plan chooser's decision, the distance cutoff, and date order."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import numpy as np
import psycopg
import pytest
from pgvector.psycopg import register_vector

from vstore.bench.synth import synth_vectors
from vstore.db.connect import connect
from vstore.errors import ConfigError
from vstore.search.filters import Filters, choose_plan, nearest, order_by_date

DIM = 32
N = 800
BASE = datetime(2020, 1, 1, tzinfo=UTC)


@pytest.fixture
def data(settings):
    rng = np.random.default_rng(5)
    vectors = synth_vectors(N, DIM, clusters=8, seed=21)
    order = rng.permutation(N)  # image i was taken at BASE + order[i] hours: unrelated to its vector
    widths = rng.integers(100, 1000, N)
    labels = ["cat" if i % 7 == 0 else ("dog|cat" if i % 11 == 0 else "dog") for i in range(N)]
    with psycopg.connect(settings.database_url) as conn:
        register_vector(conn)
        dataset = conn.execute(
            "INSERT INTO datasets (name, root, format) VALUES ('d', '/data', 'folder') RETURNING id"
        ).fetchone()[0]
        with conn.cursor() as cur:
            cur.executemany(
                "INSERT INTO images (dataset_id, path, embedding, taken_at, width, height, label) "
                "VALUES (%s, %s, %s, %s, %s, 100, %s)",
                [
                    (
                        dataset,
                        f"{i:04d}.jpg",
                        vectors[i],
                        BASE + timedelta(hours=int(order[i])),
                        int(widths[i]),
                        labels[i],
                    )
                    for i in range(N)
                ],
            )
        ids = np.array([r[0] for r in conn.execute("SELECT id FROM images ORDER BY path").fetchall()])
        conn.execute("ANALYZE images")
        conn.commit()
    conn = connect(settings, autocommit=True)
    yield conn, vectors, ids, order, widths, labels
    conn.close()


def _truth(vectors, passing, q, k):
    distance = 1.0 - vectors @ q
    candidates = np.flatnonzero(passing)
    return candidates[np.argsort(distance[candidates], kind="stable")[:k]], distance


@pytest.mark.parametrize("fraction", [0.5, 0.1, 0.02, 0.005])
def test_the_exact_plan_equals_brute_force_at_every_selectivity(data, fraction):
    conn, vectors, ids, order, _, _ = data
    cut = int(N * fraction)
    filters = Filters(taken_before=BASE + timedelta(hours=cut))
    passing = order < cut
    for qi in (0, 17, 333):
        q = vectors[qi] + 0.3 * vectors[(qi + 1) % N]
        q = (q / np.linalg.norm(q)).astype(np.float32)
        want, distance = _truth(vectors, passing, q, 10)
        result = nearest(conn, q, k=10, filters=filters, plan="exact")
        assert result.plan.kind == "exact"
        assert [r[0] for r in result.rows] == list(ids[want])  # recall 1.0, and the same order
        assert [r[5] for r in result.rows] == pytest.approx(list(distance[want]), abs=1e-5)
        # the HNSW plan returns only rows that pass the filter, nearest first
        hnsw = nearest(conn, q, k=10, filters=filters, plan="hnsw")
        allowed = set(ids[passing])
        assert all(r[0] in allowed for r in hnsw.rows)
        assert [r[5] for r in hnsw.rows] == sorted(r[5] for r in hnsw.rows)


def test_the_chooser_scans_exactly_when_few_rows_match_and_uses_hnsw_otherwise(data):
    conn, vectors, ids, order, _, labels = data
    q = vectors[3]
    assert choose_plan(conn, "images", Filters()).kind == "hnsw"
    few = Filters(taken_before=BASE + timedelta(hours=40))  # 40 rows
    many = Filters(taken_before=BASE + timedelta(hours=700))  # 700 rows
    with conn.transaction():
        plan = choose_plan(conn, "images", few, exact_rows=100)
        assert (plan.kind, plan.matching_rows, plan.counted) == ("exact", 40, True)
        assert choose_plan(conn, "images", many, exact_rows=100).kind == "hnsw"
        # within the estimate margin the chooser counts (capped at exact_rows + 1)
        plan = choose_plan(conn, "images", many, exact_rows=300)
        assert plan.kind == "hnsw" and plan.counted and plan.matching_rows == 301
        # captions are counted through their images (none here)
        assert choose_plan(conn, "captions", few, exact_rows=100).matching_rows == 0
    result = nearest(conn, q, k=5, filters=few, exact_rows=100)
    assert result.plan.kind == "exact" and "40 rows match" in result.plan.describe()
    passing = order < 40
    want, _ = _truth(vectors, passing, q, 5)
    assert [r[0] for r in result.rows] == list(ids[want])
    # the label filter is one of the '|'-separated labels
    cats = nearest(conn, q, k=1000, filters=Filters(label="cat"), exact_rows=10_000)
    assert len(cats.rows) == sum("cat" in label.split("|") for label in labels)


def test_width_filter_against_brute_force(data):
    conn, vectors, ids, _, widths, _ = data
    q = vectors[50]
    want, _ = _truth(vectors, widths >= 900, q, 10)
    result = nearest(conn, q, k=10, filters=Filters(min_width=900))
    assert [r[0] for r in result.rows] == list(ids[want])


def test_max_distance_never_returns_a_farther_hit(data):
    conn, vectors, ids, _, _, _ = data
    q = vectors[9]
    distance = 1.0 - vectors @ q
    for cutoff in (0.0005, 0.05, 0.2, 0.6):
        for plan in ("hnsw", "exact"):
            rows = nearest(conn, q, k=50, max_distance=cutoff, plan=plan).rows
            assert all(r[5] <= cutoff for r in rows)
            # and nothing nearer than the cutoff is left out (up to k)
            assert len(rows) == min(50, int((distance <= cutoff + 1e-6).sum())) or plan == "hnsw"
    with pytest.raises(ConfigError):
        nearest(conn, q, max_distance=3.0)


def test_date_order_puts_the_newest_first_and_undated_last():
    rows = [(1, None), (2, BASE), (3, BASE + timedelta(days=2)), (4, BASE + timedelta(days=1))]
    assert [r[0] for r in order_by_date(rows, lambda r: r[1])] == [3, 4, 2, 1]


def test_filters_are_range_checked():
    with pytest.raises(ConfigError):
        Filters(min_width=-1).checked()
    with pytest.raises(ConfigError):
        Filters(taken_after=BASE, taken_before=BASE).checked()
    with pytest.raises(ConfigError):
        Filters(label="a\x00b").checked()
