"""Full-text search over the captions and its fusion with vector search (reciprocal rank fusion).

`--mode text` needs no model: PostgreSQL's full text over the generated captions.tsv column (GIN index,
the configuration chosen at `vstore init --text-search`). `--mode hybrid` takes the best `depth` hits of
each list and scores each hit sum(1 / (rrf_k + rank)) over the lists it is in (ranks from 1), as
Cormack et al. (2009) and the SQL API's vstore.hybrid_images do; ties go to the better single rank, then
the smaller id. The vector list comes from search/filters.py, so a filtered hybrid search keeps its recall.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import psycopg

from vstore.db.sql import load
from vstore.errors import ConfigError
from vstore.search.filters import Filters

MODES = ("vector", "text", "hybrid")
DEFAULT_RRF_K = 60
MIN_DEPTH = 50  # each list contributes at least this many candidates (the SQL API's greatest(k, 50))


@dataclass(frozen=True)
class Fused:
    id: int
    score: float
    text_rank: int | None
    vector_rank: int | None


def rrf(text_ids: Sequence[int], vector_ids: Sequence[int], rrf_k: int = DEFAULT_RRF_K) -> list[Fused]:
    """Reciprocal rank fusion of two ranked id lists, best first."""
    if rrf_k < 1:
        raise ConfigError("--rrf-k must be at least 1.")
    text_rank = {id_: r for r, id_ in enumerate(text_ids, 1)}
    vector_rank = {id_: r for r, id_ in enumerate(vector_ids, 1)}
    fused = []
    for id_ in dict.fromkeys([*text_ids, *vector_ids]):
        t, v = text_rank.get(id_), vector_rank.get(id_)
        score = (1.0 / (rrf_k + t) if t else 0.0) + (1.0 / (rrf_k + v) if v else 0.0)
        fused.append(Fused(id_, score, t, v))
    fused.sort(key=lambda f: (-f.score, min(r for r in (f.text_rank, f.vector_rank) if r), f.id))
    return fused


def depth(k: int) -> int:
    return max(k, MIN_DEPTH)


def text_rows(
    conn: psycopg.Connection,
    query: str,
    *,
    target: str,
    k: int,
    filters: Filters,
    exclude_id: int | None = None,
) -> Sequence[Sequence[Any]]:
    """The k best full-text matches: rows of queries/text_images (id, path, root, dataset, split, score,
    taken_at) or queries/text_captions (id, text, image_id, path, root, dataset, split, score, taken_at)."""
    if target not in ("images", "captions"):
        raise ConfigError(f"unknown target {target!r}; choose images or captions.")
    params: dict[str, Any] = {**filters.checked().params(), "query": query, "k": k}
    if target == "images":
        params["exclude_id"] = exclude_id
    return conn.execute(load(f"queries/text_{target}"), params).fetchall()
