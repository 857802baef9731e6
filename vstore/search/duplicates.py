"""Near-duplicate images: groups of images whose vectors lie within a cosine distance D of each other, each
with a suggested keeper. A review queue: vstore never deletes or hides anything on its own.

Each present image asks the HNSW index for its nearest `neighbours` images (one LATERAL query per chunk of
images, so no round trip per image); pairs within D are edges, and the groups are the connected components
of those edges (union-find), so a chain a~b~c is one group even when a and c are farther apart than D.
The keeper is the member with the most pixels, then the largest file, then the oldest (capture date, then
the smallest id); each member's distance is measured to the keeper.

The default D comes from planted variants (resized, re-encoded at JPEG quality 50, cropped 5 %): see
docs/search.md ("Near-duplicates") for the distances measured and what they mean without real weights.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass

import psycopg

from vstore.db.indexes import DEFAULT_EF_SEARCH, set_query_knobs
from vstore.db.sql import load
from vstore.encode.paths import filesystem_path
from vstore.errors import ConfigError

DEFAULT_MAX_DISTANCE = 0.02
DEFAULT_NEIGHBOURS = 10  # per image; a group larger than this is still joined through its members' edges
CHUNK = 500  # images per LATERAL query: progress between chunks, and no statement runs for minutes


@dataclass(frozen=True)
class Member:
    id: int
    path: str  # absolute
    distance: float  # cosine distance to the group's keeper (0 for the keeper)
    width: int | None
    height: int | None
    size: int | None
    dataset: str


@dataclass(frozen=True)
class Group:
    keeper: int
    members: list[Member]  # the keeper first, then by distance to it

    def as_json(self) -> dict:
        return {
            "keeper": self.keeper,
            "members": [{"id": m.id, "path": m.path, "distance": m.distance} for m in self.members],
        }


class UnionFind:
    def __init__(self) -> None:
        self.parent: dict[int, int] = {}

    def find(self, x: int) -> int:
        root = self.parent.setdefault(x, x)
        while root != self.parent[root]:
            root = self.parent[root]
        while x != root:  # path compression
            self.parent[x], x = root, self.parent[x]
        return root

    def union(self, a: int, b: int) -> None:
        ra, rb = self.find(a), self.find(b)
        if ra != rb:
            self.parent[max(ra, rb)] = min(ra, rb)

    def groups(self) -> list[list[int]]:
        found: dict[int, list[int]] = {}
        for x in list(self.parent):
            found.setdefault(self.find(x), []).append(x)
        return [sorted(members) for members in found.values() if len(members) > 1]


def components(edges: Iterable[tuple[int, int]]) -> list[list[int]]:
    """The connected components (of two or more) of an undirected edge list, each sorted, by first id."""
    sets = UnionFind()
    for a, b in edges:
        sets.union(int(a), int(b))
    return sorted(sets.groups())


def close_pairs(
    conn: psycopg.Connection,
    max_distance: float,
    *,
    dataset_id: int | None = None,
    neighbours: int = DEFAULT_NEIGHBOURS,
    progress: Callable[[int, int], None] | None = None,
) -> list[tuple[int, int, float]]:
    """(a, b, distance) with a < b for every pair the index finds within `max_distance`."""
    ids = [
        int(r[0]) for r in conn.execute(load("queries/duplicates_ids"), {"dataset_id": dataset_id}).fetchall()
    ]
    pairs: dict[tuple[int, int], float] = {}
    ef_search = max(DEFAULT_EF_SEARCH, neighbours + 1)
    for start in range(0, len(ids), CHUNK):
        chunk = ids[start : start + CHUNK]
        with conn.transaction():
            set_query_knobs(conn, ef_search=ef_search, iterative=dataset_id is not None)
            rows = conn.execute(
                load("queries/duplicates_neighbours"),
                {"ids": chunk, "dataset_id": dataset_id, "k": neighbours, "max_distance": max_distance},
            ).fetchall()
        for a, b, distance in rows:
            key = (min(a, b), max(a, b))
            pairs[key] = min(float(distance), pairs.get(key, 2.0))
        if progress is not None:
            progress(min(start + CHUNK, len(ids)), len(ids))
    return [(a, b, d) for (a, b), d in sorted(pairs.items())]


def find_duplicates(
    conn: psycopg.Connection,
    max_distance: float = DEFAULT_MAX_DISTANCE,
    *,
    dataset_id: int | None = None,
    neighbours: int = DEFAULT_NEIGHBOURS,
    progress: Callable[[int, int], None] | None = None,
) -> list[Group]:
    """Groups of near-identical present images (in one dataset, or across all), largest group first."""
    if not 0.0 <= max_distance < 2.0:
        raise ConfigError("--max-distance must be at least 0 and below 2 (cosine distance).")
    if not 1 <= neighbours <= 1000:
        raise ConfigError("neighbours must be between 1 and 1000.")
    edges = close_pairs(conn, max_distance, dataset_id=dataset_id, neighbours=neighbours, progress=progress)
    return describe_groups(conn, components((a, b) for a, b, _ in edges))


def describe_groups(conn: psycopg.Connection, groups: list[list[int]]) -> list[Group]:
    """Keeper and members (with paths and distances to the keeper) of each group of image ids."""
    if not groups:
        return []
    owner = {member: n for n, group in enumerate(groups) for member in group}
    rows = conn.execute(load("queries/duplicates_members"), {"ids": list(owner)}).fetchall()
    # columns: id, root, path, width, height, size, taken_at, dataset
    by_group: dict[int, list] = {}
    for row in rows:
        by_group.setdefault(owner[int(row[0])], []).append(row)
    keepers = {n: min(members, key=_keeper_order)[0] for n, members in by_group.items()}
    pairs = [(int(r[0]), keepers[n]) for n, members in by_group.items() for r in members]
    distance = {
        int(m): float(d)
        for m, d in conn.execute(
            load("queries/duplicates_distances"),
            {"members": [p[0] for p in pairs], "keepers": [p[1] for p in pairs]},
        ).fetchall()
    }
    result = []
    for n, members in by_group.items():
        keeper = keepers[n]
        listed = [
            Member(int(r[0]), filesystem_path(r[1], r[2]), 0.0 if r[0] == keeper else distance[int(r[0])],
                   r[3], r[4], r[5], r[7])
            for r in members
        ]  # fmt: skip
        listed.sort(key=lambda m: (m.id != keeper, m.distance, m.id))
        result.append(Group(keeper, listed))
    result.sort(key=lambda g: (-len(g.members), g.keeper))
    return result


def _keeper_order(row: tuple) -> tuple:
    """Most pixels, then the largest file, then the oldest (undated counts as newest), then smallest id."""
    _, _, _, width, height, size, taken_at, _ = row
    pixels = (width or 0) * (height or 0)
    return (-pixels, -(size or 0), taken_at is None, taken_at.timestamp() if taken_at else 0.0, row[0])


def first_of_each_group(conn: psycopg.Connection, image_ids: list[int], max_distance: float) -> list[int]:
    """`image_ids` (ranked) with every id dropped that is within `max_distance` of an earlier one through
    a chain of such pairs (search --collapse-duplicates: one hit per near-duplicate group)."""
    unique = list(dict.fromkeys(image_ids))
    if len(unique) < 2:
        return unique
    pairs = conn.execute(
        load("queries/duplicates_collapse"), {"ids": unique, "max_distance": max_distance}
    ).fetchall()
    sets = UnionFind()
    for a, b in pairs:
        sets.union(int(a), int(b))
    seen: set[int] = set()
    kept = []
    for id_ in unique:
        root = sets.find(id_)
        if root not in seen:
            seen.add(root)
            kept.append(id_)
    return kept
