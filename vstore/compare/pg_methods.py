"""pgvector as a SearchMethod: exact scan, HNSW over hnsw.ef_search, IVFFlat over ivfflat.probes.

Fair timing: one connection per method, the k-NN query prepared once (psycopg prepare=True) with the
vector bound in binary, and the knobs set with SET LOCAL once per setting: `configure` opens the
transaction that the whole setting's queries run in. A planner that would pick another vector index than
the one under test (both HNSW and IVFFlat present) is overruled by dropping the other index inside that
transaction; the rollback at the end of the setting restores it. That holds an exclusive lock on the
table while the setting runs, acceptable for a benchmark, and only taken when EXPLAIN shows it is needed.
"""

from __future__ import annotations

import json
import re
import time
from typing import Any

import numpy as np
import psycopg
from psycopg import sql as pgsql

from vstore.compare.base import BuildOptions, Corpus, SearchMethod
from vstore.config import Settings
from vstore.db import indexes, knobs, sql
from vstore.db.connect import connect
from vstore.db.indexes import default_nlist
from vstore.errors import ConfigError, VstoreError

PG_KINDS = ("exact", "hnsw", "ivfflat")
BUILD_MEMORY = "1GB"  # maintenance_work_mem for builds: the HNSW graph must fit, or the build slows down


def _index_option(definition: str, option: str) -> int | None:
    match = re.search(rf"\b{option}\s*=\s*'?(\d+)", definition)
    return int(match.group(1)) if match else None


def _find_index(
    conn: psycopg.Connection, table: str, kind: str, metric: str = "cosine"
) -> indexes.IndexInfo | None:
    name = indexes.index_name(table, kind, metric)
    return next((i for i in indexes.list_indexes(conn) if i.name == name and i.valid), None)


def pg_hnsw_params(settings: Settings, table: str) -> tuple[int, int]:
    """(m, ef_construction) of the table's pgvector HNSW index, or pgvector's defaults (16, 64)."""
    with connect(settings) as conn:
        found = _find_index(conn, table, "hnsw")
    if found is None:
        return indexes.DEFAULT_HNSW["m"], indexes.DEFAULT_HNSW["ef_construction"]
    return (
        _index_option(found.definition, "m") or 16,
        _index_option(found.definition, "ef_construction") or 64,
    )


def build_pg_index(
    conn: psycopg.Connection,
    table: str,
    kind: str,
    *,
    workers: int,
    metric: str = "cosine",
    **params: int | None,
) -> tuple[indexes.IndexInfo, float]:
    """Build (or rebuild) an index with `workers` processes in all (leader + parallel workers, the way
    Faiss counts threads) and enough maintenance memory; returns the index and build seconds."""
    conn.execute(pgsql.SQL("SET max_parallel_maintenance_workers = {}").format(max(0, int(workers) - 1)))
    conn.execute(pgsql.SQL("SET maintenance_work_mem = {}").format(BUILD_MEMORY))
    if not conn.autocommit:
        conn.commit()
    started = time.perf_counter()
    info = indexes.create_index(conn, table, kind, metric, **params)
    seconds = time.perf_counter() - started
    conn.execute("RESET max_parallel_maintenance_workers")
    conn.execute("RESET maintenance_work_mem")
    if not conn.autocommit:
        conn.commit()
    return info, seconds


class PgvectorMethod(SearchMethod):
    def __init__(self, kind: str, corpus: Corpus, conn: psycopg.Connection, metric: str = "cosine") -> None:
        super().__init__(name=f"pgvector-{kind}", exact=kind == "exact")
        self.kind = kind
        self.table = corpus.table
        self.conn = conn
        self.metric = indexes.check_metric(metric)  # <=>, <#> or <-> with a matching operator class
        suffix = "" if metric == "cosine" else f"_{metric}"
        self.query_sql = sql.load(f"queries/compare_knn_{corpus.table}{suffix}")
        self.created_index: str | None = None  # built by this method; dropped on close unless kept
        self.keep_index = False
        self.hide: list[str] = []  # other vector indexes dropped inside each setting's transaction
        self._probe = corpus.vectors[0] if len(corpus) else None
        self.threads = 1  # processes per query: the leader plus threads - 1 parallel workers

    @classmethod
    def open(cls, kind: str, corpus: Corpus, settings: Settings, options: BuildOptions) -> PgvectorMethod:
        if kind not in PG_KINDS:
            raise ConfigError(f"unknown pgvector method {kind!r}; choose one of {', '.join(PG_KINDS)}.")
        method = cls(kind, corpus, connect(settings), options.metric)
        method.threads = options.threads
        try:
            method._prepare_index(corpus, options)
            method._check_plan()
        except BaseException:
            method.close()
            raise
        return method

    def _prepare_index(self, corpus: Corpus, options: BuildOptions) -> None:
        conn = self.conn
        if self.kind == "exact":
            self.size_bytes = int(
                conn.execute("SELECT pg_table_size(%s::regclass)", (f"public.{self.table}",)).fetchall()[0][0]
            )
            conn.commit()
            return
        existing = _find_index(conn, self.table, self.kind, self.metric)
        if self.kind == "hnsw":
            m = options.m or (existing and _index_option(existing.definition, "m")) or 16
            efc = (
                options.ef_construction
                or (existing and _index_option(existing.definition, "ef_construction"))
                or 64
            )
            if existing is not None and (
                _index_option(existing.definition, "m"),
                _index_option(existing.definition, "ef_construction"),
            ) != (m, efc):
                raise ConfigError(
                    f"the {self.table} HNSW index has other parameters than --m {m} --ef-construction {efc}; "
                    "compare measures the index that exists: drop those options, or rebuild it first with "
                    f"`vstore index create --table {self.table} --type hnsw --m {m} --ef-construction {efc}`."
                )
            if existing is None or options.rebuild_hnsw:
                # A rebuilt schema index stays; one that was absent is removed again afterwards.
                name = indexes.index_name(self.table, "hnsw", self.metric)
                self.created_index = None if existing is not None else name
                existing, self.build_s = build_pg_index(
                    conn,
                    self.table,
                    "hnsw",
                    workers=options.build_threads,
                    metric=self.metric,
                    m=m,
                    ef_construction=efc,
                )
            self.build_params = {"m": m, "ef_construction": efc}
            self.sweep = [{"ef_search": e} for e in options.ef_sweep]
        else:
            lists = options.nlist or default_nlist(len(corpus))
            if (
                existing is not None
                and options.nlist
                and _index_option(existing.definition, "lists") != lists
            ):
                raise ConfigError(
                    f"the {self.table} IVFFlat index has another list count than --nlist {lists}; drop "
                    f"that option or the index (`vstore index drop --table {self.table} --type ivfflat`)."
                )
            if existing is None:
                existing, self.build_s = build_pg_index(
                    conn,
                    self.table,
                    "ivfflat",
                    workers=options.build_threads,
                    metric=self.metric,
                    lists=lists,
                )
                self.created_index = existing.name
                self.keep_index = options.keep_ivfflat
            lists = _index_option(existing.definition, "lists") or lists
            self.build_params = {"lists": lists}
            self.sweep = [{"probes": p} for p in options.probe_sweep if p <= lists] or [{"probes": lists}]
        self.size_bytes = existing.size_bytes
        conn.commit()

    def _plan_indexes(self) -> set[str]:
        if self._probe is None:
            return set()
        explain = pgsql.SQL("EXPLAIN (FORMAT JSON) {}").format(pgsql.SQL(self.query_sql))
        plan = self.conn.execute(explain, {"q": self._probe, "k": 10}).fetchall()[0][0]
        return set(re.findall(r'"Index Name": "([^"]+)"', json.dumps(plan)))

    def _check_plan(self) -> None:
        """Make sure each setting measures the intended access path: the planner may prefer a sequential
        scan on a small or never-analysed table, or the other vector index when both exist."""
        if self.kind == "exact":
            return
        wanted = indexes.index_name(self.table, self.kind, self.metric)
        self.configure(**self.sweep[0])
        used = self._plan_indexes()
        self.conn.rollback()
        if wanted not in used:
            self.hide = [
                i.name for i in indexes.list_indexes(self.conn) if i.table == self.table and i.name != wanted
            ]
            self.conn.rollback()
            self.configure(**self.sweep[0])
            used = self._plan_indexes()
            self.conn.rollback()
            if wanted not in used:
                raise VstoreError(
                    f"PostgreSQL does not use {wanted} for the k-NN query, even with other indexes hidden; "
                    f"run `ANALYZE {self.table}` and retry."
                )

    def configure(self, **params: Any) -> None:
        super().configure(**params)
        conn = self.conn
        conn.rollback()  # end the previous setting's transaction (and restore any hidden index)
        for name in self.hide:
            conn.execute(pgsql.SQL("DROP INDEX public.{}").format(pgsql.Identifier(name)))
        indexes.set_query_knobs(
            conn, ef_search=params.get("ef_search"), probes=params.get("probes"), exact=self.kind == "exact"
        )
        # Same parallelism as Faiss/numpy get: a parallel seq scan would otherwise use 3 processes.
        workers = knobs.PARALLEL_WORKERS.clamp(int(self.threads) - 1)
        conn.execute(pgsql.SQL("SET LOCAL max_parallel_workers_per_gather = {}").format(workers))
        if self.kind != "exact":
            # Measure the index even where the planner would scan (small, never-analysed tables), or
            # sort the rows of a join (captions of present images) instead of walking the index in order.
            conn.execute("SET LOCAL enable_seqscan = off")
            conn.execute("SET LOCAL enable_sort = off")

    def search(self, query: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
        rows = self.conn.execute(
            self.query_sql, {"q": np.asarray(query, dtype=np.float32), "k": k}, prepare=True
        ).fetchall()
        distances = np.fromiter((r[1] for r in rows), np.float32, len(rows))
        # Back to cosine distance on the unit vectors: <#> is -(inner product), <-> the L2 distance.
        if self.metric == "ip":
            distances = 1.0 + distances
        elif self.metric == "l2":
            distances = distances * distances / 2.0
        return np.fromiter((r[0] for r in rows), np.int64, len(rows)), distances

    def server_ms(self, queries: np.ndarray, k: int) -> list[float] | None:
        """Executor time reported by EXPLAIN (ANALYZE, TIMING OFF): the work inside the server, without
        planning, protocol and client decoding (TIMING OFF keeps per-node clock calls out of it)."""
        times = []
        for query in queries:
            plan = self.conn.execute(
                pgsql.SQL("EXPLAIN (ANALYZE, TIMING OFF, FORMAT JSON) {}").format(pgsql.SQL(self.query_sql)),
                {"q": np.asarray(query, dtype=np.float32), "k": k},
            ).fetchall()[0][0]
            times.append(float(plan[0]["Execution Time"]))
        return times

    def close(self) -> None:
        conn = self.conn
        if conn.closed:
            return
        try:
            conn.rollback()
            if self.created_index and not self.keep_index:
                conn.execute(
                    pgsql.SQL("DROP INDEX IF EXISTS public.{}").format(pgsql.Identifier(self.created_index))
                )
                conn.commit()
        finally:
            conn.close()
