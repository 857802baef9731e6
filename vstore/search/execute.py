"""One search on a connection, whatever its mode: vector (through the filter plan chooser,
search/filters.py), text (full text over the captions), or hybrid (both, fused by reciprocal rank,
search/hybrid.py); then duplicates collapsed and date order, when asked. The Store (search/store.py)
owns the connection, the model and the query vector; this module only runs the query."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import psycopg

from vstore.db.sql import load
from vstore.search import hybrid
from vstore.search.duplicates import DEFAULT_MAX_DISTANCE, first_of_each_group
from vstore.search.filters import Filters, nearest, order_by_date
from vstore.search.options import MAX_K, SearchOptions
from vstore.search.results import Hit, caption_hit, image_hit, text_caption_hit, text_image_hit

COLLAPSE_FETCH = 3  # --collapse-duplicates asks for 3k hits, so k remain after the groups fold


def run_search(
    conn: psycopg.Connection,
    vector: np.ndarray | None,
    opts: SearchOptions,
    *,
    dataset_id: int | None,
    exclude_id: int | None,
    words: str | None = None,
) -> tuple[list[Hit], str]:
    """(hits, the plan in words) of one search; `vector` is None for mode text, `words` None for vector."""
    filters = Filters(
        dataset_id=dataset_id,
        split=opts.split,
        label=opts.label,
        taken_after=opts.taken_after,
        taken_before=opts.taken_before,
        min_width=opts.min_width,
        min_height=opts.min_height,
    ).checked()
    # collapsing drops hits: ask for more, so k remain when there are k groups
    fetch = min(MAX_K, opts.k * COLLAPSE_FETCH) if opts.collapse_duplicates else opts.k
    if opts.mode == "text":
        assert words is not None
        with conn.transaction():
            rows = hybrid.text_rows(
                conn, words, target=opts.target, k=fetch, filters=filters, exclude_id=exclude_id
            )
        hits: list[Hit] = [
            text_image_hit(r) if opts.target == "images" else text_caption_hit(r) for r in rows
        ]
        plan = "text: full text over the captions (GIN index on captions.tsv)"
    else:
        assert vector is not None
        depth = hybrid.depth(fetch) if opts.mode == "hybrid" else fetch
        found = nearest(
            conn,
            vector,
            target=opts.target,
            k=depth,
            filters=filters,
            max_distance=opts.max_distance,
            exclude_id=exclude_id,
            ef_search=opts.ef_search,
            plan="exact" if opts.exact else None,
            probes=opts.probes,
        )
        make = image_hit if opts.target == "images" else caption_hit
        hits = [make(r) for r in found.rows]
        plan = f"vector, {found.plan.describe()}"
        if opts.mode == "hybrid":
            assert words is not None
            hits, plan = _fuse(conn, words, vector, hits, opts, filters, exclude_id, fetch, plan)
    if opts.collapse_duplicates:
        within = DEFAULT_MAX_DISTANCE if opts.duplicate_distance is None else opts.duplicate_distance
        keep = set(first_of_each_group(conn, [h.image_id for h in hits], within))
        seen: set[int] = set()
        collapsed: list[Hit] = []
        for h in hits:
            if h.image_id in keep and h.image_id not in seen:
                seen.add(h.image_id)
                collapsed.append(h)
        hits = collapsed
        plan += f"; duplicates collapsed within {within}"
    hits = hits[: opts.k]
    if opts.order == "date":
        hits = order_by_date(hits, lambda h: h.taken_at)
        plan += "; newest first"
    return hits, plan


def _fuse(
    conn: psycopg.Connection,
    words: str,
    vector: np.ndarray,
    by_vector: list[Hit],
    opts: SearchOptions,
    filters: Filters,
    exclude_id: int | None,
    fetch: int,
    plan: str,
) -> tuple[list[Hit], str]:
    """Hybrid: the full-text list beside the vector list, fused by reciprocal rank (search/hybrid.py).
    Hits found by words only get their distance too, and the cutoff applies to them as well."""
    with conn.transaction():
        rows = hybrid.text_rows(
            conn, words, target=opts.target, k=hybrid.depth(fetch), filters=filters, exclude_id=exclude_id
        )
        text_only = [r[0] for r in rows if r[0] not in {h.id for h in by_vector}]
        distance: dict[int, float | None] = (
            dict(
                conn.execute(
                    load(f"queries/distances_{opts.target}"), {"q": vector, "ids": text_only}
                ).fetchall()
            )
            if text_only
            else {}
        )
    fused = hybrid.rrf([r[0] for r in rows], [h.id for h in by_vector], opts.rrf_k)
    vector_hit = {h.id: h for h in by_vector}
    text_row = {r[0]: r for r in rows}
    make = text_image_hit if opts.target == "images" else text_caption_hit
    hits: list[Hit] = []
    for f in fused:
        if f.id in vector_hit:
            hits.append(replace(vector_hit[f.id], score=f.score))
            continue
        found = distance.get(f.id)
        d = float(found) if found is not None else None
        if opts.max_distance is not None and (d is None or d > opts.max_distance):
            continue
        hits.append(make(text_row[f.id], score=f.score, distance=d))
    return hits[:fetch], f"hybrid (rrf_k {opts.rrf_k}): {len(rows)} text + {plan}"
