"""Vector index management on images.embedding / captions.embedding: create (HNSW or IVFFlat), drop,
status, query knobs, and the drop-then-rebuild used around bulk loads.

Index names are fixed per table and kind (`images_embedding_hnsw`, `captions_embedding_ivfflat`), so the
hot queries need not know which one exists. All identifiers come from the allow-lists below, never from
user text.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import psycopg

from vstore.db.connect import scalar
from vstore.errors import ConfigError, NotFound

VECTOR_TABLES = ("images", "captions")
INDEX_KINDS = ("hnsw", "ivfflat")
# Binary quantisation: an HNSW index over binary_quantize(embedding)::bit(d) with Hamming distance, a
# candidate generator for a re-rank by <=> (compare method pgvector-bq). Its access method is hnsw too;
# list_indexes tells it apart by its expression.
BQ_KIND = "bq"
DEFAULT_HNSW = {"m": 16, "ef_construction": 64}
# hnsw.ef_search for searches: 100 gives recall@10 >= 0.95 at 100k rows (docs/search.md); pgvector's is 40
DEFAULT_EF_SEARCH = 100
OPCLASSES = {"vector": "vector_cosine_ops", "halfvec": "halfvec_cosine_ops"}  # by column type


def column_type(conn: psycopg.Connection, table: str) -> tuple[str, int]:
    """('vector' or 'halfvec', dimension) of `table`.embedding (`vstore init --storage`)."""
    _check(table)
    found, dim = conn.execute(
        "SELECT format_type(atttypid, atttypmod), atttypmod FROM pg_attribute "
        "WHERE attrelid = %s::regclass AND attname = 'embedding'",
        (f"public.{table}",),
    ).fetchall()[0]
    return ("halfvec" if str(found).startswith("halfvec") else "vector"), int(dim)


def column_storage(conn: psycopg.Connection, table: str) -> str:
    """'vector' or 'halfvec': the type of `table`.embedding."""
    return column_type(conn, table)[0]


def default_nlist(rows: int) -> int:
    """pgvector's advice (rows/1000, sqrt(rows) beyond 1M), at least 4, and at most rows/39 (Faiss wants
    39 training points per centroid)."""
    nlist = rows // 1000 if rows <= 1_000_000 else int(math.sqrt(rows))
    return max(1, min(max(nlist, 4), rows // 39))


def index_name(table: str, kind: str) -> str:
    _check(table, kind)
    return f"{table}_embedding_{kind}"


def _check(table: str, kind: str | None = None) -> None:
    if table not in VECTOR_TABLES:
        raise ConfigError(f"no vector column on {table!r}; choose one of {', '.join(VECTOR_TABLES)}.")
    if kind is not None and kind not in (*INDEX_KINDS, BQ_KIND):
        raise ConfigError(f"unknown index type {kind!r}; choose one of {', '.join(INDEX_KINDS)}.")


def index_ddl(
    table: str,
    kind: str,
    *,
    m: int = 16,
    ef_construction: int = 64,
    lists: int | None = None,
    rows: int | None = None,
    storage: str = "vector",
    dim: int | None = None,
) -> str:
    """CREATE INDEX statement. IVFFlat `lists` defaults to default_nlist(rows); `storage` is the column
    type (vector or halfvec), which picks the operator class; the bq kind needs the dimension."""
    name = index_name(table, kind)
    if storage not in OPCLASSES:
        raise ConfigError(f"unknown storage {storage!r}; choose vector or halfvec.")
    if kind == BQ_KIND:
        if not dim or dim < 1 or m < 2 or ef_construction < 2 * m:
            raise ConfigError("a binary-quantised index needs the dimension, m >= 2, ef_construction >= 2*m.")
        return (
            f"CREATE INDEX {name} ON public.{table} USING hnsw "
            f"((binary_quantize(embedding)::bit({int(dim)})) bit_hamming_ops) "
            f"WITH (m = {int(m)}, ef_construction = {int(ef_construction)})"
        )
    if kind == "hnsw":
        if m < 2 or ef_construction < 2 * m:
            raise ConfigError("HNSW needs m >= 2 and ef_construction >= 2*m (pgvector's rule).")
        options = f"m = {int(m)}, ef_construction = {int(ef_construction)}"
    else:
        if lists is None:
            lists = default_nlist(rows or 0)
        if lists < 1:
            raise ConfigError("--lists must be at least 1.")
        options = f"lists = {int(lists)}"
    return (
        f"CREATE INDEX {name} ON public.{table} USING {kind} (embedding {OPCLASSES[storage]}) "
        f"WITH ({options})"
    )


@dataclass(frozen=True)
class IndexInfo:
    table: str
    name: str
    kind: str
    definition: str
    size_bytes: int
    valid: bool
    parameters: dict[str, int] = field(default_factory=dict)  # m/ef_construction or lists, from reloptions


def _parameters(reloptions: list[str] | None) -> dict[str, int]:
    params: dict[str, int] = {}
    for option in reloptions or []:
        key, _, value = option.partition("=")
        params[key] = int(value) if value.isdigit() else value  # type: ignore[assignment]
    return params


def list_indexes(conn: psycopg.Connection) -> list[IndexInfo]:
    """Vector indexes (hnsw/ivfflat) on the vector tables."""
    rows = conn.execute(
        """
        SELECT t.relname, i.relname, am.amname, pg_get_indexdef(i.oid), pg_relation_size(i.oid), x.indisvalid,
               i.reloptions
        FROM pg_index x
        JOIN pg_class i ON i.oid = x.indexrelid
        JOIN pg_class t ON t.oid = x.indrelid
        JOIN pg_namespace n ON n.oid = t.relnamespace
        JOIN pg_am am ON am.oid = i.relam
        WHERE n.nspname = 'public' AND t.relname = ANY(%s) AND am.amname = ANY(%s)
        ORDER BY t.relname, i.relname
        """,
        (list(VECTOR_TABLES), list(INDEX_KINDS)),
    ).fetchall()
    return [
        IndexInfo(
            r[0],
            r[1],
            BQ_KIND if "binary_quantize(" in r[3] else r[2],
            r[3],
            int(r[4]),
            bool(r[5]),
            _parameters(r[6]),
        )
        for r in rows
    ]


def create_index(conn: psycopg.Connection, table: str, kind: str, **params: int | None) -> IndexInfo:
    """Build one index (replacing an index of the same kind). Runs in its own committed transaction."""
    rows = scalar(conn, f"SELECT count(*) FROM public.{table}") if kind == "ivfflat" else None
    given = {k: v for k, v in params.items() if v is not None}
    storage, dim = column_type(conn, table)
    ddl = index_ddl(table, kind, rows=rows, storage=storage, dim=dim, **given)
    with conn.transaction():
        conn.execute(f"DROP INDEX IF EXISTS public.{index_name(table, kind)}")
        conn.execute(ddl)
    return next(i for i in list_indexes(conn) if i.name == index_name(table, kind))


def drop_index(conn: psycopg.Connection, table: str, kind: str) -> None:
    name = index_name(table, kind)
    if not any(i.name == name for i in list_indexes(conn)):
        raise NotFound(f"there is no {kind} index on {table}; `vstore index status` lists the indexes.")
    with conn.transaction():
        conn.execute(f"DROP INDEX public.{name}")


def defer_indexes(conn: psycopg.Connection, table: str) -> list[str]:
    """Drop the vector indexes of `table` before a bulk load, remembering their definitions in
    deferred_indexes (committed first, so a crash mid-load cannot lose them). Returns the names."""
    names = []
    with conn.transaction():
        for index in list_indexes(conn):
            if index.table != table:
                continue
            conn.execute(
                "INSERT INTO public.deferred_indexes (name, definition) VALUES (%s, %s) "
                "ON CONFLICT (name) DO UPDATE SET definition = EXCLUDED.definition",
                (index.name, index.definition),
            )
            conn.execute(f'DROP INDEX public."{index.name}"')
            names.append(index.name)
    return names


def rebuild_deferred(conn: psycopg.Connection) -> list[str]:
    """Recreate every deferred index (parallel maintenance workers do the build), then ANALYZE."""
    rows = conn.execute("SELECT name, definition FROM public.deferred_indexes ORDER BY name").fetchall()
    for name, definition in rows:
        with conn.transaction():
            conn.execute(f'DROP INDEX IF EXISTS public."{name}"')
            conn.execute(definition)
            conn.execute("DELETE FROM public.deferred_indexes WHERE name = %s", (name,))
    if rows:
        for table in VECTOR_TABLES:
            conn.execute(f"ANALYZE public.{table}")
        if not conn.autocommit:
            conn.commit()
    return [r[0] for r in rows]


def set_query_knobs(
    conn: psycopg.Connection,
    *,
    ef_search: int | None = None,
    probes: int | None = None,
    exact: bool = False,
    iterative: bool = False,
) -> None:
    """SET LOCAL the index knobs; call inside the query's transaction. `exact` forbids index scans so
    the planner does a true exact scan (sequential scan + top-k sort)."""
    if ef_search is not None:
        if not 1 <= ef_search <= 1000:
            raise ConfigError("--ef-search must be between 1 and 1000.")
        conn.execute(f"SET LOCAL hnsw.ef_search = {int(ef_search)}")
    if probes is not None:
        if probes < 1:
            raise ConfigError("--probes must be at least 1.")
        conn.execute(f"SET LOCAL ivfflat.probes = {int(probes)}")
    if exact:
        conn.execute("SET LOCAL enable_indexscan = off")
        conn.execute("SET LOCAL enable_bitmapscan = off")
    if iterative:
        # Filtered searches: keep scanning the index until k rows pass the filter (pgvector >= 0.8).
        conn.execute("SET LOCAL hnsw.iterative_scan = relaxed_order")
        conn.execute("SET LOCAL ivfflat.iterative_scan = relaxed_order")


@dataclass(frozen=True)
class BuildProgress:
    """One running CREATE INDEX, from pg_stat_progress_create_index (any session on this database)."""

    pid: int
    table: str
    index: str | None
    phase: str
    blocks_done: int
    blocks_total: int
    tuples_done: int
    tuples_total: int

    @property
    def percent(self) -> float | None:
        if self.tuples_total:
            return 100.0 * self.tuples_done / self.tuples_total
        if self.blocks_total:
            return 100.0 * self.blocks_done / self.blocks_total
        return None


@dataclass(frozen=True)
class IndexStatus:
    indexes: list[IndexInfo]
    deferred: dict[str, str]  # name -> definition, dropped for a bulk load and not rebuilt yet
    building: list[BuildProgress]


def build_progress(conn: psycopg.Connection) -> list[BuildProgress]:
    rows = conn.execute(
        """
        SELECT p.pid, t.relname, i.relname, p.phase, p.blocks_done, p.blocks_total, p.tuples_done,
               p.tuples_total
        FROM pg_stat_progress_create_index p
        JOIN pg_class t ON t.oid = p.relid
        LEFT JOIN pg_class i ON i.oid = p.index_relid
        WHERE p.datname = current_database()
        ORDER BY p.pid
        """
    ).fetchall()
    return [
        BuildProgress(r[0], r[1], r[2], r[3], int(r[4] or 0), int(r[5] or 0), int(r[6] or 0), int(r[7] or 0))
        for r in rows
    ]


def index_status(conn: psycopg.Connection) -> IndexStatus:
    """Existing vector indexes, deferred ones, and builds in progress (for `vstore index status`)."""
    deferred = conn.execute("SELECT name, definition FROM public.deferred_indexes ORDER BY name").fetchall()
    return IndexStatus(list_indexes(conn), {r[0]: r[1] for r in deferred}, build_progress(conn))
