"""Binary quantisation with re-rank (`pgvector-bq`): an HNSW index over binary_quantize(embedding)::bit(d)
with Hamming distance finds `rerank` candidates, which are re-ranked by the exact cosine distance
(<=> on the stored vector, vector or halfvec). A 512-d vector becomes 64 bytes in the index, so the
graph is small and cheap to build; what it costs is recall, which the re-rank depth buys back: the
sweep is over that depth.

The candidate scan runs with hnsw.iterative_scan = relaxed_order, so LIMIT rerank returns that many
candidates even beyond hnsw.ef_search (their order does not matter: the re-rank sorts them), up to
pgvector's hnsw.max_scan_tuples (20,000 by default).
"""

from __future__ import annotations

from typing import Any

import psycopg

from vstore.compare.base import BuildOptions, Corpus
from vstore.compare.pg_methods import PgvectorMethod, build_pg_index
from vstore.config import Settings
from vstore.db import indexes
from vstore.db.connect import connect
from vstore.errors import VstoreError

MAX_EF_SEARCH = 1000  # pgvector's upper bound for hnsw.ef_search

# {dim} is the column's dimension (an int from the catalog); the table from indexes.VECTOR_TABLES.
_QUERY = (
    "SELECT c.id, c.embedding <=> %(q)b AS distance FROM ("
    "SELECT t.id, t.embedding FROM public.{table} t{where} "
    "ORDER BY binary_quantize(t.embedding)::bit({dim}) <~> binary_quantize(%(q)b::vector)::bit({dim}) "
    "LIMIT {rerank}) c ORDER BY c.embedding <=> %(q)b LIMIT %(k)b"
)


class PgBinaryQuantMethod(PgvectorMethod):
    """Reuses PgvectorMethod's connection, per-setting transaction, timing and clean-up; builds its own
    index and swaps the query text for each re-rank depth."""

    def __init__(self, corpus: Corpus, conn: psycopg.Connection) -> None:
        super().__init__(indexes.BQ_KIND, corpus, conn)  # named pgvector-bq
        self.dim = corpus.dim

    @classmethod
    def open_bq(cls, corpus: Corpus, settings: Settings, options: BuildOptions) -> PgBinaryQuantMethod:
        method = cls(corpus, connect(settings))
        method.threads = options.threads
        try:
            method._build(options)
            method.configure(**method.sweep[0])
            method._check_plan()
        except BaseException:
            method.close()
            raise
        return method

    def _build(self, options: BuildOptions) -> None:
        conn = self.conn
        storage, self.dim = indexes.column_type(conn, self.table)
        m, efc = options.m or 16, options.ef_construction or 64
        info, self.build_s = build_pg_index(
            conn, self.table, indexes.BQ_KIND, workers=options.build_threads, m=m, ef_construction=efc
        )
        self.created_index = info.name
        self.size_bytes = info.size_bytes
        self.build_params = {"m": m, "ef_construction": efc, "storage": storage}
        self.sweep = [{"rerank": n} for n in options.rerank_sweep]
        conn.commit()

    def _check_plan(self) -> None:
        wanted = indexes.index_name(self.table, indexes.BQ_KIND)
        used = self._plan_indexes()
        self.conn.rollback()
        if wanted not in used:
            raise VstoreError(
                f"PostgreSQL does not use {wanted} for the binary-quantised candidate scan; "
                f"run `ANALYZE {self.table}` and retry."
            )

    def configure(self, **params: Any) -> None:
        rerank = int(params["rerank"])
        # only present rows, as every other search path: captions through their image (revision 0003)
        where = (
            " WHERE t.status = 'ok'"
            if self.table == "images"
            else " JOIN public.images i ON i.id = t.image_id WHERE i.status = 'ok'"
        )
        self.query_sql = _QUERY.format(table=self.table, where=where, dim=int(self.dim), rerank=rerank)
        super().configure(ef_search=min(MAX_EF_SEARCH, max(40, rerank)))
        self.params = dict(params)
        self.conn.execute("SET LOCAL hnsw.iterative_scan = relaxed_order")
