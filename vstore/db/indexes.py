"""Vector index management on images.embedding / captions.embedding: create (HNSW or IVFFlat), drop,
status, query knobs, and the drop-then-rebuild used around bulk loads.

Index names are fixed per table and kind (`images_embedding_hnsw`, `captions_embedding_ivfflat`), so the
hot queries need not know which one exists. Tables and kinds are checked against the allow-lists below
before anything else, and every identifier reaches SQL as psycopg.sql.Identifier, never as text.
"""

from __future__ import annotations

import math
import weakref
from dataclasses import dataclass, field, replace

import psycopg
from psycopg import sql

from vstore.db import knobs, locks
from vstore.db.connect import scalar
from vstore.db.knobs import DEFAULT_EF_SEARCH  # noqa: F401 (re-exported: searches import it here)
from vstore.errors import ConfigError, NotFound

VECTOR_TABLES = ("images", "captions")
INDEX_KINDS = ("hnsw", "ivfflat")
# Distance metrics: the operator-class infix (`vector_<infix>_ops` / `halfvec_<infix>_ops`) and operator.
# The schema's indexes are cosine; the others are built for a `vstore compare/eval --metric` run (named with
# a suffix) and dropped after it.
METRICS = {"cosine": ("cosine", "<=>"), "ip": ("ip", "<#>"), "l2": ("l2", "<->")}
# Binary quantisation: an HNSW index over binary_quantize(embedding)::bit(d) with Hamming distance, a
# candidate generator for a re-rank by <=> (compare method pgvector-bq). Its access method is hnsw too;
# list_indexes tells it apart by its expression.
BQ_KIND = "bq"
DEFAULT_HNSW = {"m": 16, "ef_construction": 64}
STORAGE_TYPES = ("vector", "halfvec")  # column types of images/captions.embedding (`vstore init --storage`)


def column_type(conn: psycopg.Connection, table: str) -> tuple[str, int]:
    """('vector' or 'halfvec', dimension) of `table`.embedding (`vstore init --storage`)."""
    _check(table)
    found, dim = conn.execute(
        "SELECT format_type(atttypid, atttypmod), atttypmod FROM pg_attribute "
        "WHERE attrelid = %s::regclass AND attname = 'embedding'",
        (f"public.{table}",),
    ).fetchall()[0]
    return ("halfvec" if str(found).startswith("halfvec") else "vector"), int(dim)


def default_nlist(rows: int) -> int:
    """pgvector's advice (rows/1000, sqrt(rows) beyond 1M), at least 4, and at most rows/39 (Faiss wants
    39 training points per centroid), and never past pgvector's 32768 lists."""
    nlist = rows // 1000 if rows <= 1_000_000 else int(math.sqrt(rows))
    return max(1, min(max(nlist, 4), rows // 39, knobs.LISTS.high))


def index_name(table: str, kind: str, metric: str = "cosine") -> str:
    _check(table, kind)
    check_metric(metric)
    return f"{table}_embedding_{kind}" + ("" if metric == "cosine" else f"_{metric}")


def check_metric(metric: str) -> str:
    if metric not in METRICS:
        raise ConfigError(f"unknown --metric {metric!r}; choose one of {', '.join(METRICS)}.")
    return metric


def _check(table: str, kind: str | None = None) -> None:
    if table not in VECTOR_TABLES:
        raise ConfigError(f"no vector column on {table!r}; choose one of {', '.join(VECTOR_TABLES)}.")
    if kind is not None and kind not in (*INDEX_KINDS, BQ_KIND):
        raise ConfigError(f"unknown index type {kind!r}; choose one of {', '.join(INDEX_KINDS)}.")


def check_index_options(
    kind: str, *, m: int | None = None, ef_construction: int | None = None, lists: int | None = None
) -> None:
    """The build options against pgvector's ranges (db/knobs.py) and its rule ef_construction >= 2*m
    (None: the default), before anything runs: `vstore index create` checks them before it says
    "building"."""
    if kind in ("hnsw", BQ_KIND):
        m = knobs.M.check(m) if m is not None else DEFAULT_HNSW["m"]
        ef = DEFAULT_HNSW["ef_construction"] if ef_construction is None else ef_construction
        if knobs.EF_CONSTRUCTION.check(ef) < 2 * m:
            raise ConfigError(
                f"--ef-construction {ef} is too small for --m {m}: pgvector needs ef_construction >= 2*m "
                f"({2 * m})."
            )
    if lists is not None:
        knobs.LISTS.check(lists)


def index_ddl(
    table: str,
    kind: str,
    *,
    m: int = 16,
    ef_construction: int = 64,
    lists: int | None = None,
    rows: int | None = None,
    metric: str = "cosine",
    storage: str = "vector",
    dim: int | None = None,
) -> sql.Composed:
    """CREATE INDEX statement. IVFFlat `lists` defaults to default_nlist(rows); `storage` is the column
    type (vector or halfvec) and `metric` the distance, which together pick the operator class; the bq kind
    needs the dimension."""
    name = index_name(table, kind, metric)
    if storage not in STORAGE_TYPES:
        raise ConfigError(f"unknown storage {storage!r}; choose vector or halfvec.")
    check_index_options(kind, m=m, ef_construction=ef_construction, lists=lists)
    if kind == BQ_KIND:
        if not dim or dim < 1:
            raise ConfigError("a binary-quantised index needs the dimension.")
        return sql.SQL(
            "CREATE INDEX {name} ON public.{table} USING hnsw "
            "((binary_quantize(embedding)::bit({dim})) bit_hamming_ops) "
            "WITH (m = {m}, ef_construction = {ef})"
        ).format(
            name=sql.Identifier(name),
            table=sql.Identifier(table),
            dim=int(dim),
            m=int(m),
            ef=int(ef_construction),
        )
    if kind == "hnsw":
        options = sql.SQL("m = {}, ef_construction = {}").format(int(m), int(ef_construction))
    else:
        if lists is None:
            lists = default_nlist(rows or 0)
        knobs.LISTS.check(lists)
        options = sql.SQL("lists = {}").format(int(lists))
    return sql.SQL(
        "CREATE INDEX {name} ON public.{table} USING {kind} (embedding {opclass}) WITH ({options})"
    ).format(
        name=sql.Identifier(name),
        table=sql.Identifier(table),
        kind=sql.Identifier(kind),
        opclass=sql.Identifier(f"{storage}_{METRICS[metric][0]}_ops"),
        options=options,
    )


def _count_rows(conn: psycopg.Connection, table: str) -> int:
    _check(table)
    return int(scalar(conn, sql.SQL("SELECT count(*) FROM public.{}").format(sql.Identifier(table))))


def _drop(conn: psycopg.Connection, name: str, *, if_exists: bool = False) -> None:
    """DROP INDEX public.<name>; `name` comes from index_name() or from the catalog, never from users."""
    statement = "DROP INDEX IF EXISTS public.{}" if if_exists else "DROP INDEX public.{}"
    conn.execute(sql.SQL(statement).format(sql.Identifier(name)))


@dataclass(frozen=True)
class IndexInfo:
    table: str
    name: str
    kind: str
    definition: str
    size_bytes: int
    valid: bool
    parameters: dict[str, int] = field(default_factory=dict)  # m/ef_construction or lists, from reloptions
    rows: int | None = None  # rows indexed, where the build counted them (IVFFlat: its lists depend on it)

    @property
    def sparse_lists(self) -> bool:
        """An IVFFlat index with fewer than 39 rows a list (k-means' own minimum, as in default_nlist): most
        lists hold a handful of rows or none, so a search with few probes misses neighbours."""
        lists = self.parameters.get("lists")
        return (
            self.kind == "ivfflat"
            and self.rows is not None
            and isinstance(lists, int)
            and lists * 39 > self.rows
        )


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


def create_index(
    conn: psycopg.Connection, table: str, kind: str, metric: str = "cosine", **params: int | None
) -> IndexInfo:
    """Build one index (replacing an index of the same kind and metric). Runs in its own committed
    transaction."""
    _check(table, kind)  # before the table name reaches any query
    rows = _count_rows(conn, table) if kind == "ivfflat" else None
    options = {k: v for k, v in params.items() if v is not None}
    storage, dim = column_type(conn, table)
    ddl = index_ddl(
        table,
        kind,
        rows=rows,
        metric=metric,
        storage=storage,
        dim=dim,
        **options,  # type: ignore[arg-type]
    )
    name = index_name(table, kind, metric)
    with conn.transaction():
        _drop(conn, name, if_exists=True)
        conn.execute(ddl)
    built = next(i for i in list_indexes(conn) if i.name == name)
    return replace(built, rows=rows)


def drop_index(conn: psycopg.Connection, table: str, kind: str) -> None:
    name = index_name(table, kind)
    if not any(i.name == name for i in list_indexes(conn)):
        raise NotFound(f"there is no {kind} index on {table}; `vstore index status` lists the indexes.")
    with conn.transaction():
        _drop(conn, name)


def defer_indexes(conn: psycopg.Connection, table: str) -> list[str]:
    """Drop the vector indexes of `table` before a bulk load, remembering their definitions in
    deferred_indexes (committed first, so a crash mid-load cannot lose them). Returns the names."""
    _check(table)
    names = []
    with conn.transaction():
        mine = [index for index in list_indexes(conn) if index.table == table]
        if mine:  # DROP INDEX waits for every open transaction that read the table, a reader's too
            locks.lock_tables_for_ddl(conn, [table], "dropping its vector indexes for a bulk load")
        for index in mine:
            conn.execute(
                "INSERT INTO public.deferred_indexes (name, definition) VALUES (%s, %s) "
                "ON CONFLICT (name) DO UPDATE SET definition = EXCLUDED.definition",
                (index.name, index.definition),
            )
            _drop(conn, index.name)
            names.append(index.name)
    return names


# The bulk-load leases held for connections (begin_bulk_load), by id(conn).
_leases: dict[int, locks.RowHold] = {}


def begin_bulk_load(conn: psycopg.Connection) -> None:
    """Hold the bulk-load lease (the bulk_load row of vstore.locks, shared) until end_bulk_load, or until
    `conn` is closed and collected, or the process dies: while any ingest holds it, no other command
    rebuilds the indexes it deferred. Only vstore's owner can lock that row: a reader cannot fake a load."""
    lease = locks.RowHold(conn, locks.BULK_LOAD, shared=True)
    _leases[id(conn)] = lease
    weakref.finalize(conn, _release_lease, id(conn), lease)


def _release_lease(key: int, lease: locks.RowHold) -> None:
    if _leases.get(key) is lease:
        del _leases[key]
    lease.release()


def end_bulk_load(conn: psycopg.Connection) -> None:
    lease = _leases.pop(id(conn), None)
    if lease is not None:
        lease.release()


def rebuild_deferred(conn: psycopg.Connection) -> list[str]:
    """Recreate every deferred index (parallel maintenance workers do the build), then ANALYZE.

    Does nothing while another session holds the bulk-load lease: that ingest is still loading and
    rebuilds when it ends (in its `finally`), or, if it dies, the next command does."""
    if not conn.execute("SELECT EXISTS (SELECT 1 FROM public.deferred_indexes)").fetchone()[0]:  # type: ignore[index]
        return []
    exclusive = locks.RowHold(conn, locks.BULK_LOAD, wait=False)
    if not exclusive.held:
        exclusive.release()
        if not conn.autocommit:
            conn.commit()
        return []
    try:
        rows = conn.execute("SELECT name, definition FROM public.deferred_indexes ORDER BY name").fetchall()
        if not conn.autocommit:
            conn.commit()
        for name, definition in rows:
            with conn.transaction():
                _drop(conn, name, if_exists=True)
                conn.execute(definition)  # pg_get_indexdef's text, recorded by defer_indexes
                conn.execute("DELETE FROM public.deferred_indexes WHERE name = %s", (name,))
        if rows:
            for table in VECTOR_TABLES:
                conn.execute(sql.SQL("ANALYZE public.{}").format(sql.Identifier(table)))
            if not conn.autocommit:
                conn.commit()
    finally:
        exclusive.release()
    return [r[0] for r in rows]


def bulk_load_running(conn: psycopg.Connection) -> bool:
    """Whether another vstore session holds the bulk-load lease (an ingest is loading with its indexes
    deferred, or their rebuild runs). Only the owner can lock that row, so no other role can fake it. A
    session that may not lock it (`vstore index status` under the reader, or on a standby) gets whether any
    vstore lock row is held, from pg_locks."""
    try:
        with locks.holding_row(conn, locks.BULK_LOAD, wait=False) as probe:
            return not probe.held
    except (psycopg.errors.InsufficientPrivilege, psycopg.errors.ReadOnlySqlTransaction):
        return locks.rows_held(conn)  # the reader, or a standby


def set_query_knobs(
    conn: psycopg.Connection,
    *,
    ef_search: int | None = None,
    probes: int | None = None,
    exact: bool = False,
    iterative: bool = False,
) -> None:
    """SET LOCAL the index knobs; call inside the query's transaction. `exact` forbids index scans so
    the planner does a true exact scan (sequential scan + top-k sort). Values out of the server's range
    are a ConfigError before any SQL runs (db/knobs.py)."""
    if ef_search is not None:
        conn.execute(sql.SQL("SET LOCAL hnsw.ef_search = {}").format(knobs.EF_SEARCH.check(ef_search)))
    if probes is not None:
        conn.execute(sql.SQL("SET LOCAL ivfflat.probes = {}").format(knobs.PROBES.check(probes)))
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
    bulk_load_running: bool = False  # an ingest holds the lease: its deferred indexes are not abandoned


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
    return IndexStatus(
        list_indexes(conn), {r[0]: r[1] for r in deferred}, build_progress(conn), bulk_load_running(conn)
    )
