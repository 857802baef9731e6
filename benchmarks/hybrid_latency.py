"""Hybrid search's database time beside vector search's, on the same queries (not a test; docs/search.md).

Each query is a stored caption: its text for the full-text side and its stored vector for the vector side,
so no model runs and both modes search with the same vector. Times are the Store's own (SearchResult.took_ms:
the database work, fusion included, encoding excluded), medians over the queries and repeats.

    VSTORE_HOME=/tmp/vs22/home100k python -m benchmarks.hybrid_latency --queries 100 --json
"""

from __future__ import annotations

import argparse
import json
import statistics

from vstore.config import Settings
from vstore.db.connect import vector_array
from vstore.search.options import SearchOptions
from vstore.search.store import Store


def run(settings: Settings, n_queries: int, repeats: int, k: int) -> dict:
    with Store(settings) as store:
        rows = store.conn.execute(
            "SELECT text, embedding FROM public.captions ORDER BY id LIMIT %s", (n_queries,)
        ).fetchall()
        times: dict[str, list[float]] = {"vector": [], "text": [], "hybrid": []}
        for _ in range(repeats):
            for text, embedding in rows:
                vector = vector_array(embedding)
                for mode in times:
                    opts = SearchOptions(k=k, mode=mode)  # type: ignore[arg-type]
                    store._search(None if mode == "text" else vector, opts, exclude_id=None, words=text)
                    times[mode].append(store.last_took_ms)
    p50 = {mode: statistics.median(t) for mode, t in times.items()}
    return {
        "queries": len(rows),
        "repeats": repeats,
        "k": k,
        "p50_ms": p50,
        "hybrid_vs_vector": p50["hybrid"] / p50["vector"],
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--queries", type=int, default=100)
    parser.add_argument("--repeats", type=int, default=2)
    parser.add_argument("-k", type=int, default=10)
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    result = run(Settings.from_env(), args.queries, args.repeats, args.k)
    print(json.dumps(result, indent=2) if args.json else result)


if __name__ == "__main__":
    main()
