"""`vstore compare`: pgvector against Faiss (and sklearn) on the same queries, in one run.

Queries are caption embeddings searched against images (text->image, as in the research) plus stored
image embeddings searched against the other images ("stored-image->image"). The stored-image queries are
NOT held out: their vectors stay in every index (pgvector's index is the table's own, so it cannot be
built without them), and only their own row is dropped from the results and from the ground truth. That
flatters graph and cluster indexes (the search starts next to the query's own node or in its own list),
so recall is reported per query kind as well (`recall_by_kind`); the cross-modal queries are the
unbiased ones. Ground truth is exact kNN by matrix product over the exported corpus.

Recall@k counts a returned id as a hit when its exact distance is within the k-th true distance (plus
1e-5), divided by min(k, candidates): ties at the boundary and float rounding between engines do not
count as misses, a corpus smaller than k asks for no more than it holds, and so every exact method scores
1.0. A setting that returns fewer rows than it could (pgvector HNSW at ef_search < k returns at most
ef_search rows) is not hidden in the recall: `returned` is the mean share of the rows it could have
returned, and the table marks such rows with '*'.

Latency: each query runs once untimed to warm caches, then `repeats` timed passes over all queries,
one query at a time; a query's latency is its median over the passes; p50/p95/p99 are taken over queries,
QPS is queries / median pass time. Faiss, numpy and sklearn run with `threads` threads
(default 1: pgvector answers one query on one backend process). pgvector's server_ms is the executor time
from EXPLAIN (ANALYZE, TIMING OFF) on a sample of queries: p50_ms - server_ms is the client, protocol and
planning overhead.
"""

from __future__ import annotations

import os
import platform
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np

from vstore.compare.base import BuildOptions, Corpus, SearchMethod, load_corpus
from vstore.compare.exact import NumpyExact
from vstore.compare.methods import iter_methods
from vstore.config import Settings
from vstore.errors import ConfigError, NotFound

TARGETS = ("images", "captions")
STORED = "stored-"  # prefix of the query kind whose vectors are rows of the searched table
TIE_EPSILON = 1e-5
SERVER_SAMPLE = 20

# progress(message): one line per method or setting, for stderr.
Progress = Callable[[str], None]


@dataclass
class QuerySet:
    vectors: np.ndarray  # float32 [n, dim]
    exclude: np.ndarray  # int64 [n]: the id to leave out of the results (held-out self), -1 for none
    kinds: list[str]  # per query: "text->image", "image->image", ...


@dataclass
class CompareRow:
    method: str
    params: dict[str, Any]
    recall_at_k: float
    returned: float  # mean share of the rows the method could have returned (1.0: none missing)
    recall_by_kind: dict[str, float]
    p50_ms: float
    p95_ms: float
    p99_ms: float
    qps: float
    build_s: float | None
    size_bytes: int
    server_ms: float | None  # p50 executor time inside PostgreSQL (pgvector only)
    k: int
    queries: int
    rows: int
    threads: int
    cpu_count: int
    metric: str = "cosine"
    build_params: dict[str, Any] = field(default_factory=dict)
    # per query kind ("text->image", "stored-image->image"): {"p50_ms", "p95_ms"}; recall is recall_by_kind
    latency_by_kind: dict[str, dict[str, float]] = field(default_factory=dict)


@dataclass
class CompareReport:
    rows: list[CompareRow]
    meta: dict[str, Any]

    def to_json(self) -> list[dict[str, Any]]:
        """The `--json` document: a list of rows (each carries k, queries, threads and cpu_count)."""
        return [asdict(r) for r in self.rows]


def _sample_table(
    settings: Settings, table: str, n: int, rng: np.random.Generator
) -> tuple[np.ndarray, np.ndarray]:
    """(ids, vectors) of up to n random rows of a table, without loading the whole table."""
    from vstore.db import sql
    from vstore.db.connect import connection, vector_array

    with connection(settings) as conn:
        ids = np.array(
            [r[0] for r in conn.execute(sql.load("queries/compare_sample_ids_" + table))], np.int64
        )
        if len(ids) == 0 or n == 0:
            return ids[:0], np.zeros((0, 0), np.float32)
        chosen = np.sort(rng.choice(ids, size=min(n, len(ids)), replace=False))
        rows = conn.execute(sql.load("queries/compare_vectors_" + table), {"ids": chosen.tolist()}).fetchall()
    found = {int(r[0]): vector_array(r[1]) for r in rows}
    return chosen, np.stack([found[int(i)] for i in chosen]).astype(np.float32)


def build_queries(settings: Settings, corpus: Corpus, n: int, seed: int = 0) -> QuerySet:
    """Half cross-modal queries (captions against images, or images against captions), half stored rows
    of the searched table (each left out of its own answers); all of one kind when the other table is
    empty, and fewer than n when the tables hold fewer rows."""
    if n < 1:
        raise ConfigError("--queries must be at least 1.")
    if len(corpus) < 2:
        raise NotFound(
            f"{corpus.table} holds {len(corpus)} vectors; ingest data (or `vstore bench synth`) first."
        )
    rng = np.random.default_rng(seed)
    other = "captions" if corpus.table == "images" else "images"
    cross_ids, cross = _sample_table(settings, other, n - n // 2, rng)
    own_n = n - len(cross_ids)
    own_rows = np.sort(rng.choice(len(corpus), size=min(own_n, len(corpus)), replace=False))
    vectors = [corpus.vectors[own_rows]] + ([cross] if len(cross_ids) else [])
    src, dst = corpus.table[:-1].replace("caption", "text"), other[:-1].replace("caption", "text")
    kinds = [f"{STORED}{src}->{src}"] * len(own_rows) + [f"{dst}->{src}"] * len(cross_ids)
    exclude = np.concatenate([corpus.ids[own_rows], np.full(len(cross_ids), -1, np.int64)])
    return QuerySet(np.ascontiguousarray(np.vstack(vectors), dtype=np.float32), exclude, kinds)


def _describe_queries(query_set: QuerySet, asked: int) -> str:
    """The first progress line: how many queries of which kinds, and why fewer than asked."""
    counts = {kind: query_set.kinds.count(kind) for kind in dict.fromkeys(query_set.kinds)}
    kinds = ", ".join(f"{n} {kind}" for kind, n in counts.items())
    got = len(query_set.vectors)
    short = f" (of {asked} asked: the database holds fewer rows to sample)" if got < asked else ""
    return f"{got} queries{short}: {kinds}"


def _drop_excluded(ids: np.ndarray, exclude: int, k: int) -> np.ndarray:
    kept = ids[(ids != exclude) & (ids >= 0)]
    return kept[:k]


def ground_truth(corpus: Corpus, queries: QuerySet, k: int) -> tuple[np.ndarray, np.ndarray]:
    """Per query, (the k-th exact cosine distance, the hit threshold; how many candidates the exact top k
    holds, min(k, rows that can answer)), the held-out self excluded from both."""
    exact = NumpyExact(corpus).search_batch(queries.vectors, k + 1)
    kth = np.empty(len(queries.vectors), np.float32)
    wanted = np.empty(len(queries.vectors), np.int64)
    for i, row in enumerate(exact):
        top = _drop_excluded(row, queries.exclude[i], k)
        rows = corpus.rows_of(top)
        kth[i] = float(np.max(1.0 - corpus.vectors[rows] @ queries.vectors[i])) if len(rows) else np.inf
        wanted[i] = len(top)
    return kth, wanted


def recall_per_query(
    corpus: Corpus, queries: QuerySet, results: list[np.ndarray], kth: np.ndarray, wanted: np.ndarray, k: int
) -> tuple[np.ndarray, np.ndarray]:
    """Per query: (|returned ids within the k-th true distance| / min(k, candidates), rows returned / the
    same), the held-out self dropped first."""
    recalls = np.zeros(len(results))
    returned = np.zeros(len(results))
    for i, ids in enumerate(results):
        want = max(int(wanted[i]), 1)
        ids = np.unique(_drop_excluded(ids, queries.exclude[i], k))
        rows = corpus.rows_of(ids)
        rows = rows[rows >= 0]
        distances = 1.0 - corpus.vectors[rows] @ queries.vectors[i]
        recalls[i] = min(want, int(np.sum(distances <= kth[i] + TIE_EPSILON))) / want
        returned[i] = min(want, len(ids)) / want
    return recalls, returned


def time_method(
    method: SearchMethod, queries: QuerySet, k: int, repeats: int
) -> tuple[list[np.ndarray], np.ndarray, float]:
    """(results of the first timed pass, per-query median latency in ms, median pass seconds)."""
    want = k + 1  # room for a held-out self that the method returns
    for query in queries.vectors:  # warm-up: caches, prepared statement, lazy allocations
        method.search(query, want)
    latencies = np.empty((repeats, len(queries.vectors)))
    passes = []
    results: list[np.ndarray] = []
    clock = time.perf_counter
    for r in range(repeats):
        started = clock()
        for i, query in enumerate(queries.vectors):
            t0 = clock()
            ids, _ = method.search(query, want)
            latencies[r, i] = clock() - t0
            if r == 0:
                results.append(ids)
        passes.append(clock() - started)
    return results, np.median(latencies, axis=0) * 1000.0, float(np.median(passes))


def machine_info(settings: Settings, threads: int) -> dict[str, Any]:
    import faiss
    import sklearn

    from vstore.db.connect import connection

    with connection(settings) as conn:
        pg = conn.execute("SELECT current_setting('server_version')").fetchall()[0][0]
        extension = conn.execute("SELECT extversion FROM pg_extension WHERE extname = 'vector'").fetchall()
    pgvector = extension[0][0] if extension else None
    return {
        "cpu_count": os.cpu_count(),
        "threads": threads,
        "machine": platform.machine(),
        "python": platform.python_version(),
        "numpy": np.__version__,
        "faiss": faiss.__version__,
        "sklearn": sklearn.__version__,
        "postgresql": pg,
        "pgvector": pgvector,
    }


def parse_ks(k: int | Sequence[int]) -> tuple[int, ...]:
    """-k 10 or -k 1,5,10,50,100: sorted, deduplicated, each within 1..1000."""
    ks = tuple(sorted({int(k)} if isinstance(k, int) else {int(v) for v in k}))
    if not ks or ks[0] < 1 or ks[-1] > 1000:
        raise ConfigError("-k must be between 1 and 1000 (several: -k 1,5,10,50,100).")
    return ks


def compare(
    settings: Settings,
    *,
    k: int | Sequence[int] = 10,
    queries: int = 200,
    seed: int = 0,
    target: str = "images",
    methods: Sequence[str] | None = None,
    options: BuildOptions | None = None,
    repeats: int = 3,
    progress: Progress | None = None,
) -> CompareReport:
    """Build every method, sweep its settings, and measure recall@k and latency on one query set, for
    each k when several are given (one row per method, setting and k: latency against k)."""
    from threadpoolctl import threadpool_limits

    if target not in TARGETS:
        raise ConfigError(f"unknown --target {target!r}; choose images or captions.")
    ks = parse_ks(k)
    if repeats < 1:
        raise ConfigError("--repeats must be at least 1.")
    options = options or BuildOptions()
    corpus = load_corpus(settings, target)
    query_set = build_queries(settings, corpus, queries, seed)
    if progress:
        progress(_describe_queries(query_set, queries))
    truth = {kk: ground_truth(corpus, query_set, kk) for kk in ks}
    info = machine_info(settings, options.threads)
    info.update(
        k=ks[0] if len(ks) == 1 else list(ks),
        queries=len(query_set.vectors),
        rows=len(corpus),
        target=target,
        seed=seed,
        repeats=repeats,
        metric=options.metric,
        query_kinds={kind: query_set.kinds.count(kind) for kind in dict.fromkeys(query_set.kinds)},
    )
    kinds = np.array(query_set.kinds)
    rows: list[CompareRow] = []
    for method in iter_methods(corpus, settings, methods, options):
        try:
            for params in method.sweep:
                method.configure(**params)
                for kk in ks:
                    if progress:
                        progress(f"{method.label} k={kk}: {len(query_set.vectors)} queries x {repeats}")
                    with threadpool_limits(options.threads):
                        results, latency_ms, pass_s = time_method(method, query_set, kk, repeats)
                    server = method.server_ms(query_set.vectors[:SERVER_SAMPLE], kk + 1)
                    kth, wanted = truth[kk]
                    recalls, returned = recall_per_query(corpus, query_set, results, kth, wanted, kk)
                    rows.append(
                        CompareRow(
                            method=method.name,
                            params=dict(params),
                            recall_at_k=float(recalls.mean()),
                            returned=float(returned.mean()),
                            recall_by_kind={
                                kind: float(recalls[kinds == kind].mean()) for kind in info["query_kinds"]
                            },
                            latency_by_kind={
                                kind: {
                                    "p50_ms": float(np.percentile(latency_ms[kinds == kind], 50)),
                                    "p95_ms": float(np.percentile(latency_ms[kinds == kind], 95)),
                                }
                                for kind in info["query_kinds"]
                            },
                            p50_ms=float(np.percentile(latency_ms, 50)),
                            p95_ms=float(np.percentile(latency_ms, 95)),
                            p99_ms=float(np.percentile(latency_ms, 99)),
                            qps=len(query_set.vectors) / pass_s,
                            build_s=method.build_s,
                            size_bytes=int(method.size_bytes),
                            server_ms=float(np.median(server)) if server else None,
                            k=kk,
                            queries=len(query_set.vectors),
                            rows=len(corpus),
                            threads=options.threads,
                            cpu_count=os.cpu_count() or 0,
                            metric=options.metric,
                            build_params=dict(method.build_params),
                        )
                    )
        finally:
            method.close()
    return CompareReport(rows=rows, meta=info)
