"""`vstore bench storage`: what the embedding column's storage does to an exact scan.

A vector(512) is 2,056 bytes with its header, over PostgreSQL's ~2 KB TOAST threshold. With the default
EXTENDED storage the value is (pglz fails to shrink float noise) moved out of line into the TOAST table,
so an exact scan fetches and reassembles every row through the TOAST index; PLAIN keeps it in the heap
row (vstore's schema sets PLAIN). halfvec (2 bytes per dimension) stays inline under either storage.
Each variant is a scratch UNLOGGED copy of the table's vectors, scanned with the same prepared query,
then dropped.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

import numpy as np
from psycopg import sql

from vstore.config import Settings
from vstore.db.connect import connection, vector_array
from vstore.errors import NotFound

# variant -> (column type template, storage); table names and types come only from here.
VARIANTS = {
    "plain": ("vector({dim})", "PLAIN"),
    "extended": ("vector({dim})", "EXTENDED"),
    "halfvec": ("halfvec({dim})", "EXTENDED"),
}


@dataclass
class StorageRow:
    variant: str
    heap_bytes: int
    toast_bytes: int
    p50_ms: float
    server_ms: float
    rows: int


def storage_effect(
    settings: Settings, *, queries: int = 20, k: int = 10, repeats: int = 3, seed: int = 0
) -> list[StorageRow]:
    """Time an exact k-NN scan over copies of images.embedding stored each way."""
    from vstore.db.migrations import require_model

    dim = require_model(settings).dim
    out = []
    with connection(settings, autocommit=True) as conn:
        conn.execute("SET max_parallel_workers_per_gather = 0")  # one process per query, like `compare`
        counted = conn.execute("SELECT count(*) FROM public.images WHERE embedding IS NOT NULL").fetchall()
        n = int(counted[0][0])
        if n == 0:
            raise NotFound("there are no image vectors; ingest data or run `vstore bench synth` first.")
        sample = conn.execute(
            "SELECT embedding FROM public.images WHERE embedding IS NOT NULL "
            "ORDER BY md5(id::text || %s) LIMIT %s",
            (str(seed), queries),
        ).fetchall()
        probes = [vector_array(r[0]) for r in sample]
        for variant, (type_template, storage) in VARIANTS.items():
            table = f"vstore_bench_{variant}"
            # Identifiers quoted; the type and storage keywords are VARIANTS' constants (dim an int).
            names = {
                "table": sql.Identifier(table),
                "type": sql.SQL(type_template.format(dim=int(dim))),
                "storage": sql.SQL(storage),
            }
            drop = sql.SQL("DROP TABLE IF EXISTS public.{table}").format(**names)
            conn.execute(drop)
            try:
                create = "CREATE UNLOGGED TABLE public.{table} (id bigint, embedding {type})"
                conn.execute(sql.SQL(create).format(**names))
                conn.execute(
                    sql.SQL("ALTER TABLE public.{table} ALTER COLUMN embedding SET STORAGE {storage}").format(
                        **names
                    )
                )
                conn.execute(
                    sql.SQL(
                        "INSERT INTO public.{table} SELECT id, embedding::{type} FROM public.images "
                        "WHERE embedding IS NOT NULL"
                    ).format(**names)
                )
                conn.execute(sql.SQL("VACUUM ANALYZE public.{table}").format(**names))
                heap, toast = conn.execute(
                    "SELECT pg_relation_size(c.oid), "
                    "coalesce(pg_total_relation_size(nullif(c.reltoastrelid, 0)), 0) "
                    "FROM pg_class AS c WHERE c.oid = %s::regclass",
                    (f"public.{table}",),
                ).fetchall()[0]
                query = sql.SQL(
                    "SELECT id FROM public.{table} ORDER BY embedding <=> %b::{type} LIMIT %b"
                ).format(**names)
                latencies = np.empty((repeats, len(probes)))
                for probe in probes:  # warm-up: the table into shared buffers / page cache
                    conn.execute(query, (probe, k), prepare=True).fetchall()
                for r in range(repeats):
                    for i, probe in enumerate(probes):
                        started = time.perf_counter()
                        conn.execute(query, (probe, k), prepare=True).fetchall()
                        latencies[r, i] = time.perf_counter() - started
                server = [
                    float(
                        conn.execute(
                            sql.SQL("EXPLAIN (ANALYZE, TIMING OFF, FORMAT JSON) {}").format(query), (p, k)
                        ).fetchall()[0][0][0]["Execution Time"]
                    )
                    for p in probes[:5]
                ]
                out.append(
                    StorageRow(
                        variant,
                        int(heap),
                        int(toast),
                        float(np.median(np.median(latencies, axis=0))) * 1000.0,
                        float(np.median(server)),
                        n,
                    )
                )
            finally:
                conn.execute(drop)
    return out
