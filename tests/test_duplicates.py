"""Near-duplicate groups (search/duplicates.py) on a generated folder with planted variants (resized,
JPEG quality 50, cropped 5 %) beside distinct images: every planted pair is found, the groups equal a
brute-force computation at the same distance, the keeper rule, and nothing is deleted."""

from __future__ import annotations

import itertools

import numpy as np
import pytest

from tests import imagegen
from vstore.db.connect import connect, vector_array
from vstore.errors import ConfigError
from vstore.ingest.pipeline import ingest
from vstore.search.duplicates import components, find_duplicates


@pytest.fixture
def planted(settings, tiny_encoder, tmp_path):
    root = tmp_path / "photos"
    pairs = imagegen.make_planted_duplicates(root, 40, planted=8)
    ingest(settings, root, encoder=tiny_encoder)
    conn = connect(settings, autocommit=True)
    rows = conn.execute("SELECT id, path, embedding FROM images ORDER BY id").fetchall()
    ids = {path: id_ for id_, path, _ in rows}
    vectors = np.stack([vector_array(r[2]) for r in rows])
    yield conn, pairs, ids, [r[0] for r in rows], vectors
    conn.close()


def _brute_force_groups(order: list[int], vectors: np.ndarray, max_distance: float) -> list[list[int]]:
    distance = 1.0 - vectors @ vectors.T
    edges = [
        (order[a], order[b])
        for a, b in itertools.combinations(range(len(order)), 2)
        if distance[a, b] <= max_distance
    ]
    return components(edges)


def test_every_planted_pair_is_grouped_and_groups_equal_brute_force(planted):
    conn, pairs, ids, order, vectors = planted
    index = {id_: n for n, id_ in enumerate(order)}
    pair_distance = [1.0 - float(vectors[index[ids[a]]] @ vectors[index[ids[b]]]) for a, b in pairs]
    # The tiny test model has random weights: at the farthest planted pair's distance some distinct
    # images fall within it too (real CLIP weights separate them; docs/search.md). Brute force at the same
    # distance says what the groups must be either way.
    for max_distance in (max(pair_distance) + 1e-6, float(np.median(pair_distance))):
        groups = find_duplicates(conn, max_distance, neighbours=len(order))
        got = sorted(sorted(m.id for m in g.members) for g in groups)
        assert got == _brute_force_groups(order, vectors, max_distance)
        for g in groups:
            assert all(m.distance <= 2.0 for m in g.members) and g.members[0].id == g.keeper
    group_of = {
        m.id: g.keeper
        for g in find_duplicates(conn, max(pair_distance) + 1e-6, neighbours=len(order))
        for m in g.members
    }
    for a, b in pairs:
        assert group_of[ids[a]] == group_of[ids[b]], (a, b)


def test_the_keeper_has_the_most_pixels_then_the_largest_file(planted):
    conn, pairs, ids, _, _ = planted
    small, original = ids["0000_small.png"], ids["0000.png"]
    groups = find_duplicates(conn, 1.9, neighbours=5)
    keeper_of = {m.id: g.keeper for g in groups for m in g.members}
    # the 60 % resize has fewer pixels: never the keeper when its original is in the group
    assert keeper_of[small] == keeper_of[original] and keeper_of[original] != small
    conn.execute("UPDATE images SET width = 10000, height = 10000 WHERE id = %s", (small,))
    groups = find_duplicates(conn, 1.9, neighbours=5)
    assert {m.id: g.keeper for g in groups for m in g.members}[original] == small
    # same pixels: the larger file wins
    conn.execute("UPDATE images SET width = 1, height = 1, size = 1")
    conn.execute("UPDATE images SET size = 99 WHERE id = %s", (original,))
    groups = find_duplicates(conn, 1.9, neighbours=5)
    assert {m.id: g.keeper for g in groups for m in g.members}[original] == original


def test_duplicates_never_delete_and_check_their_arguments(planted):
    conn, _, _, order, _ = planted
    find_duplicates(conn, 1.9)
    assert conn.execute("SELECT count(*) FROM images WHERE status = 'ok'").fetchone()[0] == len(order)
    with pytest.raises(ConfigError):
        find_duplicates(conn, -0.1)
    assert find_duplicates(conn, 0.0) == [] or all(
        m.distance == pytest.approx(0.0, abs=1e-6) for g in find_duplicates(conn, 0.0) for m in g.members
    )


def test_json_shape(planted):
    conn, pairs, ids, _, _ = planted
    groups = find_duplicates(conn, 1.9, neighbours=3)
    shaped = groups[0].as_json()
    assert set(shaped) == {"keeper", "members"}
    assert set(shaped["members"][0]) == {"id", "path", "distance"}
    assert shaped["members"][0]["path"].endswith(".png") or shaped["members"][0]["path"].endswith(".jpg")
