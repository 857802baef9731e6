"""`vstore compare`: pgvector against Faiss (and sklearn) on the same queries, in one run.

Queries are caption embeddings searched against images (text->image, as in the research) plus held-out
image embeddings: an image query's own row is removed from its results and from the ground truth, which
is what searching with an image that is not in the collection would give. Ground truth is exact kNN by
matrix product over the exported corpus.

Recall@k counts a returned id as a hit when its exact distance is within the k-th true distance (plus
1e-5): ties at the boundary and float rounding between engines do not count as misses, so every exact
method scores 1.0. Latency: each query runs once untimed to warm caches, then `repeats` timed passes over
all queries, one query at a time; a query's latency is its median over the passes; p50/p95/p99 are taken
over queries, QPS is queries / median pass time. Faiss, numpy and sklearn run with `threads` threads
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
    build_params: dict[str, Any] = field(default_factory=dict)
    # per query kind ("text->image", "image->image"): {"recall_at_k", "p50_ms", "p95_ms", "queries"}
    by_kind: dict[str, dict[str, float]] = field(default_factory=dict)


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
    """Half cross-modal queries (captions against images, or images against captions), half held-out rows
    of the searched table; all of one kind when the other table is empty."""
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
    kinds = [f"{src}->{src}"] * len(own_rows) + [f"{dst}->{src}"] * len(cross_ids)
    exclude = np.concatenate([corpus.ids[own_rows], np.full(len(cross_ids), -1, np.int64)])
    return QuerySet(np.ascontiguousarray(np.vstack(vectors), dtype=np.float32), exclude, kinds)


def _drop_excluded(ids: np.ndarray, exclude: int, k: int) -> np.ndarray:
    kept = ids[(ids != exclude) & (ids >= 0)]
    return kept[:k]


def ground_truth(corpus: Corpus, queries: QuerySet, k: int) -> np.ndarray:
    """The k-th exact cosine distance per query (held-out self excluded): the hit threshold."""
    exact = NumpyExact(corpus).search_batch(queries.vectors, k + 1)
    kth = np.empty(len(queries.vectors), np.float32)
    for i, row in enumerate(exact):
        top = _drop_excluded(row, queries.exclude[i], k)
        rows = corpus.rows_of(top)
        kth[i] = float(np.max(1.0 - corpus.vectors[rows] @ queries.vectors[i])) if len(rows) else np.inf
    return kth


def recall(corpus: Corpus, queries: QuerySet, results: list[np.ndarray], kth: np.ndarray, k: int) -> float:
    """Mean over queries of |returned ids within the k-th true distance| / k."""
    total = 0.0
    for i, ids in enumerate(results):
        ids = np.unique(_drop_excluded(ids, queries.exclude[i], k))
        rows = corpus.rows_of(ids)
        rows = rows[rows >= 0]
        distances = 1.0 - corpus.vectors[rows] @ queries.vectors[i]
        total += min(k, int(np.sum(distances <= kth[i] + TIE_EPSILON))) / k
    return total / len(results)


def by_kind(
    corpus: Corpus,
    queries: QuerySet,
    results: list[np.ndarray],
    kth: np.ndarray,
    latency_ms: np.ndarray,
    k: int,
) -> dict[str, dict[str, float]]:
    """Recall and latency percentiles of each query kind on its own: text->image queries come from
    another distribution than the indexed images (the modality gap), so they fare differently."""
    out = {}
    kinds = np.array(queries.kinds)
    for kind in dict.fromkeys(queries.kinds):
        rows = np.flatnonzero(kinds == kind)
        subset = QuerySet(queries.vectors[rows], queries.exclude[rows], [kind] * len(rows))
        out[kind] = {
            "recall_at_k": recall(corpus, subset, [results[i] for i in rows], kth[rows], k),
            "p50_ms": float(np.percentile(latency_ms[rows], 50)),
            "p95_ms": float(np.percentile(latency_ms[rows], 95)),
            "queries": float(len(rows)),
        }
    return out


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


def compare(
    settings: Settings,
    *,
    k: int = 10,
    queries: int = 200,
    seed: int = 0,
    target: str = "images",
    methods: Sequence[str] | None = None,
    options: BuildOptions | None = None,
    repeats: int = 3,
    progress: Progress | None = None,
) -> CompareReport:
    """Build every method, sweep its settings, and measure recall@k and latency on one query set."""
    from threadpoolctl import threadpool_limits

    if target not in TARGETS:
        raise ConfigError(f"unknown --target {target!r}; choose images or captions.")
    if not 1 <= k <= 1000:
        raise ConfigError("-k must be between 1 and 1000.")
    if repeats < 1:
        raise ConfigError("--repeats must be at least 1.")
    options = options or BuildOptions()
    corpus = load_corpus(settings, target)
    query_set = build_queries(settings, corpus, queries, seed)
    kth = ground_truth(corpus, query_set, k)
    info = machine_info(settings, options.threads)
    info.update(
        k=k,
        queries=len(query_set.vectors),
        rows=len(corpus),
        target=target,
        seed=seed,
        repeats=repeats,
        query_kinds={kind: query_set.kinds.count(kind) for kind in dict.fromkeys(query_set.kinds)},
    )
    rows: list[CompareRow] = []
    for method in iter_methods(corpus, settings, methods, options):
        try:
            for params in method.sweep:
                method.configure(**params)
                if progress:
                    progress(f"{method.label}: {len(query_set.vectors)} queries x {repeats}")
                with threadpool_limits(options.threads):
                    results, latency_ms, pass_s = time_method(method, query_set, k, repeats)
                server = method.server_ms(query_set.vectors[:SERVER_SAMPLE], k + 1)
                rows.append(
                    CompareRow(
                        method=method.name,
                        params=dict(params),
                        recall_at_k=recall(corpus, query_set, results, kth, k),
                        p50_ms=float(np.percentile(latency_ms, 50)),
                        p95_ms=float(np.percentile(latency_ms, 95)),
                        p99_ms=float(np.percentile(latency_ms, 99)),
                        qps=len(query_set.vectors) / pass_s,
                        build_s=method.build_s,
                        size_bytes=int(method.size_bytes),
                        server_ms=float(np.median(server)) if server else None,
                        k=k,
                        queries=len(query_set.vectors),
                        rows=len(corpus),
                        threads=options.threads,
                        cpu_count=os.cpu_count() or 0,
                        build_params=dict(method.build_params),
                        by_kind=by_kind(corpus, query_set, results, kth, latency_ms, k),
                    )
                )
        finally:
            method.close()
    return CompareReport(rows=rows, meta=info)


def format_table(rows: Sequence[CompareRow]) -> str:
    """A plain-text table, one line per method and setting; then recall and p50 per query kind."""
    kinds = list(dict.fromkeys(kind for r in rows for kind in r.by_kind))
    header: tuple[str, ...] = (
        "method",
        "params",
        "recall",
        "p50_ms",
        "p95_ms",
        "p99_ms",
        "qps",
        "server_ms",
        "build_s",
        "size_MB",
        *(f"{column} {kind}" for kind in kinds for column in ("recall", "p50")),
    )
    lines = [header]
    for r in rows:
        lines.append(
            (
                r.method,
                ",".join(f"{k}={v}" for k, v in r.params.items()) or "-",
                f"{r.recall_at_k:.3f}",
                f"{r.p50_ms:.3f}",
                f"{r.p95_ms:.3f}",
                f"{r.p99_ms:.3f}",
                f"{r.qps:.0f}",
                "-" if r.server_ms is None else f"{r.server_ms:.3f}",
                "-" if r.build_s is None else f"{r.build_s:.2f}",
                f"{r.size_bytes / 1e6:.1f}",
                *(
                    f"{r.by_kind[kind][column]:{fmt}}" if kind in r.by_kind else "-"
                    for kind in kinds
                    for column, fmt in (("recall_at_k", ".3f"), ("p50_ms", ".3f"))
                ),
            )
        )
    widths = [max(len(line[i]) for line in lines) for i in range(len(header))]
    return "\n".join(
        "  ".join(cell.ljust(w) for cell, w in zip(line, widths, strict=True)).rstrip() for line in lines
    )
