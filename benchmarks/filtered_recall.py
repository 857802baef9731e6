"""Filtered vector search: recall@10 and p50 of HNSW alone, of the exact scan, and of the plan vstore picks,
at several selectivities, beside the unfiltered HNSW p50 (not a test; docs/search.md has the figures).

Runs on a `vstore bench synth` database (refuses any other): the images get a capture date from a random
permutation (so a date range passes a chosen fraction of the rows, unrelated to where the vectors lie),
written once with the vector index dropped and rebuilt (an UPDATE of every row would insert each one into
the graph again). Queries are caption vectors (text->image); the truth is the exact scan of the matching
rows, whose exactness tests/test_filters.py checks against numpy.

    VSTORE_HOME=/tmp/vs22/home100k python -m benchmarks.filtered_recall --queries 200 --json
"""

from __future__ import annotations

import argparse
import json
import statistics
import time
from datetime import UTC, datetime, timedelta

import numpy as np

from vstore.bench.guard import refuse_user_data
from vstore.config import Settings
from vstore.db.connect import connect, vector_array
from vstore.search.filters import Filters, nearest

BASE = datetime(2000, 1, 1, tzinfo=UTC)


def date_rows(conn, seed: int = 0) -> int:  # noqa: ANN001
    """Give every image a date BASE + (its place in a random permutation) seconds, once."""
    n = int(conn.execute("SELECT count(*) FROM public.images").fetchone()[0])
    dated = int(conn.execute("SELECT count(*) FROM public.images WHERE taken_at IS NOT NULL").fetchone()[0])
    if dated == n:
        return n
    indexes = conn.execute(
        "SELECT indexname, indexdef FROM pg_indexes WHERE tablename = 'images' AND indexdef LIKE '%hnsw%'"
    ).fetchall()
    with conn.transaction():
        for name, _ in indexes:
            conn.execute(f'DROP INDEX public."{name}"')
        conn.execute("SELECT setseed(%s)", (seed / 1000.0,))
        conn.execute(
            "UPDATE public.images i SET taken_at = %s + make_interval(secs => p.r) FROM (SELECT id, "
            "row_number() OVER (ORDER BY random()) - 1 AS r FROM public.images) p WHERE p.id = i.id",
            (BASE,),
        )
        for _, definition in indexes:
            conn.execute(definition)
    conn.execute("ANALYZE public.images")
    return n


def run(settings: Settings, n_queries: int, k: int, selectivities: list[float], repeats: int) -> dict:
    conn = connect(settings, autocommit=True)
    refuse_user_data(conn, lambda name, root, fmt: name == "synth")
    n = date_rows(conn)
    queries = [
        vector_array(r[0])
        for r in conn.execute(
            "SELECT embedding FROM public.captions ORDER BY id LIMIT %s", (n_queries,)
        ).fetchall()
    ]

    def timed(filters: Filters, plan: str | None) -> tuple[list[list[int]], float, str]:
        ids, times, kinds = [], [], set()
        for rep in range(repeats):
            for q in queries:
                started = time.perf_counter()
                result = nearest(conn, q, k=k, filters=filters, plan=plan)  # type: ignore[arg-type]
                times.append((time.perf_counter() - started) * 1000.0)
                kinds.add(result.plan.kind)
                if rep == 0:
                    ids.append([int(r[0]) for r in result.rows])
        return ids, statistics.median(times), "/".join(sorted(kinds))

    def recall(found: list[list[int]], truth: list[list[int]]) -> float:
        return float(
            np.mean([len(set(f) & set(t)) / max(1, len(t)) for f, t in zip(found, truth, strict=True)])
        )

    _, unfiltered_p50, _ = timed(Filters(), "hnsw")
    rows = []
    for s in selectivities:
        filters = Filters(taken_before=BASE + timedelta(seconds=int(round(s * n))))
        truth, exact_p50, _ = timed(filters, "exact")
        hnsw, hnsw_p50, _ = timed(filters, "hnsw")
        chosen, chosen_p50, kind = timed(filters, None)
        rows.append(
            {
                "selectivity": s,
                "matching_rows": int(round(s * n)),
                "hnsw_recall": recall(hnsw, truth),
                "hnsw_p50_ms": hnsw_p50,
                "exact_p50_ms": exact_p50,
                "chosen_plan": kind,
                "chosen_recall": recall(chosen, truth),
                "chosen_p50_ms": chosen_p50,
                "chosen_vs_unfiltered": chosen_p50 / unfiltered_p50,
                "hnsw_short_answers": sum(len(h) < len(t) for h, t in zip(hnsw, truth, strict=True)),
            }
        )
    conn.close()
    return {
        "rows": n,
        "queries": len(queries),
        "k": k,
        "unfiltered_p50_ms": unfiltered_p50,
        "by_selectivity": rows,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--queries", type=int, default=200)
    parser.add_argument("-k", type=int, default=10)
    parser.add_argument("--repeats", type=int, default=2)
    parser.add_argument("--selectivity", type=float, action="append")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    result = run(
        Settings.from_env(), args.queries, args.k, args.selectivity or [0.5, 0.1, 0.01, 0.001], args.repeats
    )
    if args.json:
        print(json.dumps(result, indent=2))
        return
    print(
        f"{result['rows']} rows, {result['queries']} queries, "
        f"unfiltered HNSW p50 {result['unfiltered_p50_ms']:.2f} ms"
    )
    for r in result["by_selectivity"]:
        print(
            f"{r['selectivity'] * 100:g} %: HNSW recall {r['hnsw_recall']:.3f} "
            f"p50 {r['hnsw_p50_ms']:.2f} ms | exact p50 {r['exact_p50_ms']:.2f} ms | "
            f"chosen {r['chosen_plan']} recall {r['chosen_recall']:.3f} "
            f"p50 {r['chosen_p50_ms']:.2f} ms ({r['chosen_vs_unfiltered']:.1f}x unfiltered)"
        )


if __name__ == "__main__":
    main()
