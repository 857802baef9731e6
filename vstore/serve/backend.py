"""What the routes of `vstore serve` run on: the database's model, loaded and warmed up once before the
first request, shared by a small pool of Stores (serve/pool.py), one per request at a time. A route hands
its work to `Backend.run`, which lends it a Store and survives a database that goes away and comes back.
"""

from __future__ import annotations

import io
from collections.abc import Callable
from dataclasses import replace
from typing import TypeVar

from vstore.config import Settings
from vstore.db.connect import database_url
from vstore.encode.encoder import Encoder, ModelSpec
from vstore.search.store import Store
from vstore.serve.pool import StorePool

T = TypeVar("T")
CONNECTION_WAIT_S = 30.0  # how long a request may wait for a free connection before it gets a 503


class Backend:
    """The model (warm) and the connections. `connections`: the pool's size (default
    Settings.serve_connections); `connection_wait_s`: how long a request waits for one."""

    def __init__(
        self,
        settings: Settings,
        *,
        encoder: Encoder | None = None,
        connections: int | None = None,
        connection_wait_s: float = CONNECTION_WAIT_S,
    ) -> None:
        self.settings = settings
        # The first connection may start the embedded server, as any command does; once serving, the pool
        # only reconnects to a server that runs (someone who stops it means it).
        first = Store(replace(settings, database_url=database_url(settings)), encoder=encoder)
        try:
            self.model: ModelSpec = first.model
            loaded = first.encoder
            self.device = loaded.device
            _warm_up(first)
        finally:
            first.close()
        size = connections if connections is not None else settings.serve_connections
        self.pool = StorePool(settings, size=size, encoder=loaded, wait_s=connection_wait_s)

    def run(self, work: Callable[[Store], T]) -> T:
        """`work` on a Store lent to this request alone (see StorePool.run)."""
        return self.pool.run(work)

    def close(self) -> None:
        self.pool.close()


def _warm_up(store: Store) -> None:
    """A model's first call pays one-off costs (allocation, kernel choice); pay them now, without writing
    anything (no text cache row)."""
    from PIL import Image

    store.encoder.encode_texts(["warm up"])
    png = io.BytesIO()
    Image.new("RGB", (64, 64), (128, 128, 128)).save(png, "PNG")
    store.encode_image_bytes(png.getvalue())


__all__ = ["CONNECTION_WAIT_S", "Backend"]
