"""Every lock vstore takes, in one registry, and the bounded ways it takes them.

A second party is always assumed: `vstore db reader`'s role, psql, another vstore process. Two kinds:

- Rows of `vstore.locks` (revision 0008): dataset creation, the bulk-load lease, the model switch. The
  table is the owner's and nobody else has any privilege on it; locking a row (SELECT ... FOR UPDATE or FOR
  SHARE) needs UPDATE privilege, so the reader can neither hold these locks nor fake one (a lease that
  looks taken). Only vstore's own sessions can make each other wait, and every wait ends with a message
  naming the holder.
- Advisory keys, only where that table cannot exist yet: CREATE EXTENSION, the first `init`, and the
  migrations (which create and drop the table). pg_advisory_lock may be called by every role, so any
  session can hold these keys: the wait is bounded and the error names the holder. Everyday commands never
  take them (init on a migrated database returns before locking).

Every vstore session runs with lock_timeout (Settings.lock_timeout, set in db/connect.py), so a wait is
never unbounded; these helpers turn the timeout into a LockTimeout that says who holds the lock.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass

import psycopg
from psycopg import sql

from vstore.errors import LockTimeout


@dataclass(frozen=True)
class AdvisoryLock:
    name: str
    key: int  # pg_advisory_lock(bigint) key, unique in ADVISORY_LOCKS


@dataclass(frozen=True)
class RowLock:
    name: str  # vstore.locks.name, unique in ROW_LOCKS


# Keys 4242003 and 4242004 were the dataset and bulk-load keys before they became rows; 4242005 was both
# the extension key and the reembed key (a collision): the extension keeps it, reembed is a row now.
MIGRATIONS = AdvisoryLock("migrations", 4242001)  # alembic/env.py: one migration run at a time
INIT = AdvisoryLock("init", 4242002)  # the first `init` records the model under it
EXTENSION = AdvisoryLock("extension", 4242005)  # CREATE EXTENSION vector, once
ADVISORY_LOCKS = (MIGRATIONS, INIT, EXTENSION)

DATASETS = RowLock("datasets")  # two ingests of same-named folders must not pick the same name
BULK_LOAD = RowLock("bulk_load")  # shared: an ingest loads with deferred indexes; exclusive: rebuild
REEMBED = RowLock("reembed")  # one model switch at a time
ROW_LOCKS = (DATASETS, BULK_LOAD, REEMBED)

LOCK_TABLE = sql.Identifier("vstore", "locks")


def lock_timeout_s(conn: psycopg.Connection) -> float:
    row = conn.execute("SELECT current_setting('lock_timeout')").fetchone()
    text = str(row[0]) if row else "0"
    units = {"ms": 0.001, "s": 1.0, "min": 60.0, "h": 3600.0, "d": 86400.0}
    for unit in sorted(units, key=len, reverse=True):
        if text.endswith(unit) and text[: -len(unit)].isdigit():
            return int(text[: -len(unit)]) * units[unit]
    return float(text) / 1000 if text.isdigit() else 0.0


def describe_sessions(conn: psycopg.Connection, pids: Iterable[int]) -> str:
    """'pid 123 (role vstore_reader, psql, since 17:50:01 UTC); ...' for the sessions still there."""
    rows = conn.execute(
        "SELECT pid, usename, application_name, "
        "to_char(coalesce(xact_start, backend_start) AT TIME ZONE 'UTC', 'YYYY-MM-DD HH24:MI:SS') "
        "FROM pg_stat_activity WHERE pid = ANY(%s) ORDER BY pid",
        (sorted(set(pids)),),
    ).fetchall()
    parts = [
        f"pid {pid} (role {user}, {application or 'no application_name'}, since {since} UTC)"
        for pid, user, application, since in rows
    ]
    return "; ".join(parts[:5]) + (f"; and {len(parts) - 5} more" if len(parts) > 5 else "")


def _timeout_error(conn: psycopg.Connection, what: str, pids: list[int], fix: str) -> LockTimeout:
    holders = describe_sessions(conn, pids) if pids else ""
    held = f"held by {holders}" if holders else "held by a session that has ended since"
    return LockTimeout(
        f"waited {lock_timeout_s(conn):g} s for {what}, {held}. {fix} "
        "(VSTORE_LOCK_TIMEOUT sets how long vstore waits)."
    )


def advisory_holders(conn: psycopg.Connection, key: int) -> list[int]:
    rows = conn.execute(
        "SELECT DISTINCT pid FROM pg_locks WHERE locktype = 'advisory' AND granted "
        "AND database = (SELECT oid FROM pg_database WHERE datname = current_database()) "
        "AND classid::bigint = %s AND objid::bigint = %s AND objsubid = 1 AND pid <> pg_backend_pid()",
        (key >> 32, key & 0xFFFFFFFF),
    ).fetchall()
    return [int(r[0]) for r in rows]


def take_advisory(conn: psycopg.Connection, lock: AdvisoryLock, *, transaction: bool) -> None:
    """pg_advisory_xact_lock (inside the caller's transaction) or pg_advisory_lock (until unlock or the
    session ends), waiting at most lock_timeout; LockTimeout names the holders."""
    function = "pg_advisory_xact_lock" if transaction else "pg_advisory_lock"
    try:
        with conn.transaction():  # a savepoint inside a transaction: the failure leaves it usable
            conn.execute(sql.SQL("SELECT {}(%s)").format(sql.Identifier(function)), (lock.key,))
    except psycopg.errors.LockNotAvailable:
        raise _timeout_error(
            conn,
            f"vstore's {lock.name} lock (advisory key {lock.key})",
            advisory_holders(conn, lock.key),
            "Any role may take advisory keys: end that session (pg_terminate_backend), then retry",
        ) from None


def release_advisory(conn: psycopg.Connection, lock: AdvisoryLock) -> None:
    conn.execute("SELECT pg_advisory_unlock(%s)", (lock.key,))


def _row_holders(conn: psycopg.Connection, lock: RowLock) -> list[int]:
    """Sessions that lock rows of vstore.locks; the one whose transaction is the row's locker when the
    row has a single locker (its xmax), all of them when it is shared (xmax is then a multixact)."""
    rows = conn.execute(
        "SELECT DISTINCT l.pid, a.backend_xid::text = (SELECT xmax::text FROM vstore.locks WHERE name = %s) "
        "FROM pg_locks l JOIN pg_stat_activity a ON a.pid = l.pid "
        "WHERE l.locktype = 'relation' AND l.relation = 'vstore.locks'::regclass AND l.granted "
        "AND l.mode = 'RowShareLock' AND l.pid <> pg_backend_pid()",
        (lock.name,),
    ).fetchall()
    exact = [int(pid) for pid, is_locker in rows if is_locker]
    return exact or [int(pid) for pid, _ in rows]


def rows_held(conn: psycopg.Connection) -> bool:
    """Whether another session holds a lock on some row of vstore.locks (readable by any role)."""
    row = conn.execute(
        "SELECT EXISTS (SELECT 1 FROM pg_locks WHERE locktype = 'relation' AND granted "
        "AND relation = to_regclass('vstore.locks') AND mode = 'RowShareLock' AND pid <> pg_backend_pid())"
    ).fetchone()
    return bool(row and row[0])


def take_row(conn: psycopg.Connection, lock: RowLock, *, shared: bool = False, wait: bool = True) -> bool:
    """Lock the lock's row of vstore.locks until the caller's transaction ends (call it inside one).
    Exclusive (FOR UPDATE) or shared (FOR SHARE). With `wait`, waits at most lock_timeout and raises
    LockTimeout naming the holder; without, returns False at once when another session holds it."""
    if conn.info.transaction_status == psycopg.pq.TransactionStatus.IDLE:
        raise RuntimeError("take_row needs an open transaction: the row lock ends with it")
    mode = sql.SQL("FOR SHARE" if shared else "FOR UPDATE")
    query = sql.SQL("SELECT name FROM {} WHERE name = %s {}{}").format(
        LOCK_TABLE, mode, sql.SQL("" if wait else " NOWAIT")
    )
    for _attempt in range(2):
        try:
            with conn.transaction():
                if conn.execute(query, (lock.name,)).fetchone() is not None:
                    return True
                # a lock newer than the revision that filled the table: add its row, then lock it
                conn.execute(
                    sql.SQL("INSERT INTO {} (name) VALUES (%s) ON CONFLICT DO NOTHING").format(LOCK_TABLE),
                    (lock.name,),
                )
        except psycopg.errors.LockNotAvailable:
            if not wait:
                return False
            raise _timeout_error(
                conn,
                f"vstore's {lock.name} lock",
                _row_holders(conn, lock),
                "Another vstore command holds it: let it finish, or end it, then retry",
            ) from None
    raise RuntimeError(f"vstore.locks has no row {lock.name!r} and none could be added")


class RowHold:
    """A row lock held across many transactions of `conn` (which commits as it goes): a second session of
    the same login locks the row in a transaction that stays open until release(); a killed process's
    sessions end, which releases it. `held` is False (nothing held) when `wait` is off and another session
    holds the lock; `holders()` then says who."""

    def __init__(self, conn: psycopg.Connection, lock: RowLock, *, shared: bool = False, wait: bool = True):
        self.lock = lock
        self._conn = sibling(conn)
        try:
            self._conn.execute("BEGIN")
            self.held = take_row(self._conn, lock, shared=shared, wait=wait)
        except BaseException:
            self._conn.close()
            raise

    def holders(self) -> str:
        return (
            describe_sessions(self._conn, _row_holders(self._conn, self.lock)) or "a session that ended since"
        )

    def release(self) -> None:
        self._conn.close()


@contextmanager
def holding_row(
    conn: psycopg.Connection, lock: RowLock, *, shared: bool = False, wait: bool = True
) -> Iterator[RowHold]:
    hold = RowHold(conn, lock, shared=shared, wait=wait)
    try:
        yield hold
    finally:
        hold.release()


def sibling(conn: psycopg.Connection) -> psycopg.Connection:
    """A new session with `conn`'s parameters (server, database, user, password, options)."""
    params = conn.info.get_parameters()
    password = conn.info.password
    if password:
        params["password"] = password
    if "options" not in params:
        options = conn.execute("SELECT current_setting('lock_timeout')").fetchone()
        params["options"] = f"-c lock_timeout={options[0] if options else '0'}"
    # A RowHold's session idles in its transaction for as long as the lock is held (a whole bulk load):
    # a server-wide idle_in_transaction_session_timeout must not end it, and with it the lock.
    params["options"] += " -c idle_in_transaction_session_timeout=0"
    params.setdefault("connect_timeout", "10")
    return psycopg.connect(psycopg.conninfo.make_conninfo(**params), autocommit=True)


def schema_holders(conn: psycopg.Connection) -> list[int]:
    """Sessions holding locks on any table or index of schemas public and vstore (not this one)."""
    rows = conn.execute(
        "SELECT DISTINCT l.pid FROM pg_locks l JOIN pg_class c ON c.oid = l.relation "
        "JOIN pg_namespace n ON n.oid = c.relnamespace WHERE l.locktype = 'relation' AND l.granted "
        "AND l.database = (SELECT oid FROM pg_database WHERE datname = current_database()) "
        "AND n.nspname IN ('public', 'vstore') AND l.pid <> pg_backend_pid()"
    ).fetchall()
    return [int(r[0]) for r in rows]


def _relation_holders(conn: psycopg.Connection, tables: Iterable[str]) -> list[int]:
    rows = conn.execute(
        "SELECT DISTINCT pid FROM pg_locks WHERE locktype = 'relation' AND granted "
        "AND database = (SELECT oid FROM pg_database WHERE datname = current_database()) "
        "AND relation = ANY(%s::regclass[]) AND pid <> pg_backend_pid()",
        ([f"public.{t}" for t in tables],),
    ).fetchall()
    return [int(r[0]) for r in rows]


def lock_tables_for_ddl(conn: psycopg.Connection, tables: Iterable[str], why: str) -> None:
    """ACCESS EXCLUSIVE on public tables from vstore's fixed lists, inside the caller's transaction, before
    DDL (DROP INDEX, ALTER TABLE). Any open transaction that read them, the reader's too, delays that lock:
    the wait is bounded and LockTimeout names the sessions holding locks on them."""
    names = list(tables)
    targets = sql.SQL(", ").join(sql.Identifier("public", name) for name in names)
    try:
        with conn.transaction():
            conn.execute(sql.SQL("LOCK TABLE {} IN ACCESS EXCLUSIVE MODE").format(targets))
    except psycopg.errors.LockNotAvailable:
        raise _timeout_error(
            conn,
            f"an exclusive lock on {', '.join(names)} ({why})",
            _relation_holders(conn, names),
            "Those sessions are reading or writing the tables: let them finish or end them, then retry",
        ) from None
