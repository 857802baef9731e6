"""The bulk-load lease: a large load into a small table drops (defers) the vector indexes, loads without
them and rebuilds them when it ends, which is several times faster than maintaining HNSW row by row
(docs/ingest.md). The lease (db/indexes.begin_bulk_load) keeps concurrent ingests from rebuilding each
other's indexes; an interrupted load leaves its indexes recorded as deferred, and the next command
rebuilds them."""

from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Protocol

import psycopg

from vstore.config import Settings
from vstore.errors import VstoreError


class IndexTimes(Protocol):
    """What a load reports about the indexes (IngestReport, ImportReport)."""

    indexes_rebuilt: list[str]
    index_s: float


def wants_bulk_load(settings: Settings, planned_new: int, stored_rows: int) -> bool:
    """Defer the indexes when at least Settings.bulk_load_rows new rows are planned and they outnumber the
    rows already in the table (see docs/ingest.md for the measurements)."""
    return planned_new >= settings.bulk_load_rows and planned_new > stored_rows


def heal_deferred(conn: psycopg.Connection, report: IndexTimes) -> None:
    """Rebuild what a bulk load that crashed before its rebuild left deferred."""
    from vstore.db.indexes import rebuild_deferred

    started = time.perf_counter()
    report.indexes_rebuilt += rebuild_deferred(conn)
    report.index_s += time.perf_counter() - started


@contextmanager
def deferred_indexes(
    settings: Settings, conn: psycopg.Connection, report: IndexTimes, *, active: bool
) -> Iterator[None]:
    """Within the block, with `active`, the images and captions vector indexes are dropped under the
    lease; they are rebuilt on the way out, also when the block fails (Ctrl-C or an error mid-load must
    not leave them dropped: searches would scan every row)."""
    if not active:
        yield
        return
    from vstore.db.indexes import begin_bulk_load, defer_indexes

    begin_bulk_load(conn)  # before dropping: nobody rebuilds what this load deferred
    failed = True
    try:
        # Each drop waits (at most lock_timeout) for open transactions that read the table, a reader's
        # too; if the second one runs out, the first table's indexes are rebuilt on the way out.
        defer_indexes(conn, "images")
        defer_indexes(conn, "captions")
        yield
        failed = False
    finally:
        started = time.perf_counter()
        report.indexes_rebuilt += end_bulk_load(settings, conn, raise_errors=not failed)
        report.index_s += time.perf_counter() - started


def end_bulk_load(settings: Settings, conn: psycopg.Connection, *, raise_errors: bool) -> list[str]:
    """Give the lease back and rebuild the deferred indexes (unless another ingest's bulk load still runs:
    that one rebuilds them when it ends). The rebuild uses a fresh connection: this one may be broken by
    the interruption; closing it releases the lease anyway."""
    from vstore.db.connect import connection
    from vstore.db.indexes import end_bulk_load as give_back_lease
    from vstore.db.indexes import rebuild_deferred

    try:
        give_back_lease(conn)
    except psycopg.Error:
        conn.close()
    try:
        with connection(settings, autocommit=True) as fresh:
            return rebuild_deferred(fresh)
    except (psycopg.Error, VstoreError):
        if raise_errors:
            raise
        return []  # an error is already on its way out; `vstore index rebuild` or the next ingest heals
