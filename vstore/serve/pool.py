"""The database connections of `vstore serve`: a small pool of Stores, each with its own connection, lent to
one request at a time, so several requests run at once (a slow upload does not queue every text search
behind it). All of serve's connection handling is here, so other ways to reach the database (replicas)
plug in through `url`.

Surviving the database: a connection found dead (the server restarted, was stopped, or killed the
session) is closed, and so is every idle connection opened before it (they died with it); the request is
tried once more on a fresh connection, which is safe because everything serve runs is a read or the text
cache's idempotent upsert. While the database is down, requests fail at once with DatabaseUnavailable
(503, Retry-After) instead of each waiting for a connect to time out; reconnecting is tried again at most
every RETRY_S, so the server recovers by itself within seconds of the database coming back. The embedded
server is never started from here: someone who ran `vstore db stop` meant it.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import replace
from typing import Protocol, TypeVar

import psycopg

from vstore.config import Settings
from vstore.db.connect import running_database_url
from vstore.encode.encoder import Encoder, ModelSpec
from vstore.errors import DatabaseUnavailable, VstoreError
from vstore.search.store import Store

T = TypeVar("T")


class StoreFactory(Protocol):
    """How the pool makes a Store (Store itself; a replicated one can plug in here)."""

    def __call__(self, settings: Settings, *, encoder: Encoder | None, model: ModelSpec | None) -> Store: ...


RETRY_S = 1.0  # while the database is down, a new connection is tried at most this often
# What a connection that died says: the server shut down or restarted (AdminShutdown, "server closed the
# connection unexpectedly") or the connection object was already closed.
LOST = (psycopg.OperationalError, psycopg.InterfaceError)


class ServerBusy(VstoreError):
    """Every database connection of `vstore serve` stayed busy for longer than a request may wait."""


class ConnectionLost(DatabaseUnavailable):
    """A connection died under a request (the database stopped or restarted, or killed the session)."""


class StorePool:
    """Up to `size` Stores sharing one encoder, each lent to one request at a time (`lease`, or `run`)."""

    def __init__(
        self,
        settings: Settings,
        *,
        size: int,
        encoder: Encoder | None,
        model: ModelSpec | None,
        wait_s: float,
        url: Callable[[Settings], str] = running_database_url,
        open_store: StoreFactory = Store,
    ) -> None:
        if size < 1:
            raise ValueError("a pool needs at least one connection")
        self.settings, self.size, self.wait_s = settings, size, wait_s
        self.encoder, self.model = encoder, model  # what every Store is made with (renew changes them)
        self._url, self._open_store = url, open_store
        self._slots = threading.BoundedSemaphore(size)
        self._lock = threading.Lock()  # guards the fields below; never held while talking to the database
        self._idle: list[tuple[int, Store]] = []  # (generation it was opened in, store), most recent last
        self._generation = 0  # bumped when a connection is found dead: older idle ones are closed
        self._down_until = 0.0  # after a failed connect: monotonic time before which no new one is tried
        self._down: str | None = None  # why the last connect failed

    # -- lending -----------------------------------------------------------------------------------------

    @contextmanager
    def lease(self) -> Iterator[Store]:
        """A Store for this request alone. A connection that dies under it is closed (not returned) and the
        error becomes DatabaseUnavailable."""
        if not self._slots.acquire(timeout=self.wait_s):
            raise ServerBusy(
                f"all {self.size} database connections of this server stayed busy for {self.wait_s:g} s; "
                "retry shortly, or start it with more (`vstore serve --connections N`)."
            )
        try:
            generation, store = self._take()
            try:
                yield store
            except LOST as exc:
                self._lost(store)
                raise _connection_lost(exc) from exc
            except BaseException:
                self._give_back(generation, store)
                raise
            self._give_back(generation, store)
        finally:
            self._slots.release()

    def run(self, work: Callable[[Store], T]) -> T:
        """`work(store)` on a leased Store; when its connection turns out dead, once more on a fresh one
        (a database that is down then answers DatabaseUnavailable: 503)."""
        try:
            with self.lease() as store:
                return work(store)
        except ConnectionLost:
            with self.lease() as store:
                return work(store)

    def renew(self, encoder: Encoder | None = None, model: ModelSpec | None = None) -> None:
        """Close every idle connection and have new ones made (with `encoder` for `model`, when given):
        after a model switch, Stores that hold the old model must not be lent again."""
        with self._lock:
            self._generation += 1
            if encoder is not None:
                self.encoder, self.model = encoder, model
            stale, self._idle = self._idle, []
        for _, store in stale:
            store.close()

    def close(self) -> None:
        self.renew()

    # -- inside ------------------------------------------------------------------------------------------

    def _take(self) -> tuple[int, Store]:
        with self._lock:
            generation = self._generation
            while self._idle:
                opened_in, store = self._idle.pop()
                if opened_in == generation:
                    return generation, store
                store.close()  # opened before a connection was found dead, or before a model switch
            if self._down is not None and time.monotonic() < self._down_until:
                raise DatabaseUnavailable(self._down)  # tried less than RETRY_S ago: do not wait again
            encoder, model = self.encoder, self.model
        return generation, self._open(encoder, model)

    def _open(self, encoder: Encoder | None, model: ModelSpec | None) -> Store:
        """A new Store, its connection opened (and the schema and model checked) now, so a database that
        is down is found here, once per RETRY_S at most."""
        try:
            settings = replace(self.settings, database_url=self._url(self.settings))
            store = self._open_store(settings, encoder=encoder, model=model)
            _ = store.conn
        except DatabaseUnavailable as exc:
            with self._lock:
                self._down_until = time.monotonic() + RETRY_S
                self._down = str(exc)
            raise
        except LOST as exc:  # connected, then lost it while checking the schema
            raise _connection_lost(exc) from exc
        with self._lock:
            self._down = None
        return store

    def _give_back(self, generation: int, store: Store) -> None:
        with self._lock:
            if generation == self._generation:
                self._idle.append((generation, store))
                return
        store.close()

    def _lost(self, store: Store) -> None:
        try:
            store.close()
        except psycopg.Error:
            pass
        with self._lock:
            self._generation += 1


def _connection_lost(exc: BaseException) -> ConnectionLost:
    first = (str(exc).strip().splitlines() or [type(exc).__name__])[0]
    return ConnectionLost(
        f"lost the connection to PostgreSQL ({first}); this server reconnects by itself once the database "
        "runs again (`vstore db start` for the embedded one)."
    )


__all__ = ["LOST", "RETRY_S", "ConnectionLost", "ServerBusy", "StoreFactory", "StorePool"]
