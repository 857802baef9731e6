"""Where a pgvector HNSW query's time goes (not a test): compare's own queries and SQL, timed two ways
on one connection, each beside EXPLAIN ANALYZE's executor time.

- passes: every query once, then again, as `vstore compare` times them (the CPU caches hold other
  queries' pages when a query comes round again);
- back to back: each query repeated at once (its graph pages are still in the CPU caches).

Also the floor outside the executor: a prepared `SELECT 1` round trip and the planning time.

    VSTORE_HOME=/tmp/vsscale-1m-half python -m benchmarks.query_overhead --ef-search 120 --json

Figures and their reading: docs/benchmarks.md ("What the curves show").
"""

from __future__ import annotations

import argparse
import json
import statistics
import time
from collections.abc import Callable

import numpy as np
import psycopg

from vstore.compare.base import load_corpus
from vstore.compare.harness import build_queries
from vstore.config import Settings
from vstore.db import indexes, sql
from vstore.db.connect import connect


def _ms(run: Callable[..., object], *args: object) -> float:
    started = time.perf_counter()
    run(*args)
    return (time.perf_counter() - started) * 1000.0


def measure(conn: psycopg.Connection, queries: np.ndarray, k: int, repeats: int) -> dict[str, float]:
    knn = sql.load("queries/compare_knn_images")
    explain = "EXPLAIN (ANALYZE, TIMING OFF, SUMMARY ON, FORMAT JSON) " + knn

    def search(q: np.ndarray) -> None:
        conn.execute(knn, {"q": q, "k": k}, prepare=True).fetchall()

    def executor(q: np.ndarray) -> tuple[float, float]:
        plan = conn.execute(explain, {"q": q, "k": k}).fetchone()[0][0]  # type: ignore[index]
        return float(plan["Execution Time"]), float(plan["Planning Time"])

    for q in queries:  # warm-up, as compare does
        search(q)
    passes = np.array([[_ms(search, q) for q in queries] for _ in range(repeats)])
    pass_executor = [executor(q) for q in queries]
    back_to_back = [statistics.median(_ms(search, q) for _ in range(repeats)) for q in queries]
    hot_executor = [statistics.median(executor(q)[0] for _ in range(repeats)) for q in queries]
    floor = statistics.median(
        _ms(lambda: conn.execute("SELECT 1", prepare=True).fetchall()) for _ in range(200)
    )
    return {
        "passes_p50_ms": float(np.median(np.median(passes, axis=0))),
        "passes_executor_p50_ms": statistics.median(e for e, _ in pass_executor),
        "planning_p50_ms": statistics.median(p for _, p in pass_executor),
        "back_to_back_p50_ms": statistics.median(back_to_back),
        "back_to_back_executor_p50_ms": statistics.median(hot_executor),
        "select_1_round_trip_ms": floor,
    }


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--ef-search", type=int, default=120)
    parser.add_argument("--queries", type=int, default=200, help="compare's query sample (same seed)")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--json", action="store_true", help="one JSON object instead of lines")
    args = parser.parse_args()
    settings = Settings.from_env()
    queries = build_queries(settings, load_corpus(settings, "images"), args.queries, seed=0).vectors
    with connect(settings) as conn, conn.transaction():
        indexes.set_query_knobs(conn, ef_search=args.ef_search)
        conn.execute("SET LOCAL enable_seqscan = off")
        conn.execute("SET LOCAL max_parallel_workers_per_gather = 0")
        figures = measure(conn, queries, k=11, repeats=args.repeats)  # k + 1, as compare asks
    figures["ef_search"] = args.ef_search
    if args.json:
        print(json.dumps(figures))
    else:
        for name, value in figures.items():
            print(f"{name:32} {value:.3f}" if isinstance(value, float) else f"{name:32} {value}")


if __name__ == "__main__":
    main()
