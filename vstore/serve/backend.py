"""What the routes of `vstore serve` run on: the database's model, loaded and warmed up once before the
first request, shared by a small pool of Stores (serve/pool.py), one per request at a time. A route hands
its work to `Backend.run`, which lends it a Store, survives a database that goes away and comes back, and
follows a model switch.

A model switch (`vstore reembed`) is noticed before the next encode (Store.check_model) or when a new
connection finds another model recorded (ModelSwitched). The request that notices it loads the new model
and warms it up while the others answer 503 with Retry-After; then every Store of the old model is
closed and the request is run again on the new one. A model this process cannot load (a checkpoint file
it cannot read, weights it cannot download) leaves it answering 503 until it is restarted: it never
encodes with the old model again.
"""

from __future__ import annotations

import io
import threading
from collections.abc import Callable
from dataclasses import replace
from typing import TypeVar

from vstore.config import Settings
from vstore.db.connect import database_url, running_database_url
from vstore.db.migrations import require_model
from vstore.encode.encoder import Encoder, ModelSpec
from vstore.errors import ModelSwitched, VstoreError
from vstore.search.store import Store
from vstore.serve.pool import StorePool

T = TypeVar("T")
CONNECTION_WAIT_S = 30.0  # how long a request may wait for a free connection before it gets a 503


class SwitchingModel(VstoreError):
    """The database switched models and this server is loading the new one (or cannot): try again later."""


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
            _warm_up(loaded)
        finally:
            first.close()
        size = connections if connections is not None else settings.serve_connections
        self.pool = StorePool(settings, size=size, encoder=loaded, model=self.model, wait_s=connection_wait_s)
        self._switch = threading.Lock()  # held while a new model loads; never waited for
        self._cannot_load: tuple[ModelSpec, str] | None = None  # a model switched to that failed to load

    def run(self, work: Callable[[Store], T]) -> T:
        """`work` on a Store lent to this request alone (see StorePool.run), on the database's model."""
        try:
            return self.pool.run(work)
        except ModelSwitched:
            self._follow_switch()
            return self.pool.run(work)

    def close(self) -> None:
        self.pool.close()

    def _follow_switch(self) -> None:
        """Load the model the database records now, unless this server holds it already (another request
        switched first). SwitchingModel while another request loads it, or when it cannot be loaded."""
        if not self._switch.acquire(blocking=False):
            raise SwitchingModel(
                "the database switched models (`vstore reembed`); this server is loading the new one, "
                "retry in a few seconds."
            )
        try:
            recorded = require_model(replace(self.settings, database_url=running_database_url(self.settings)))
            if recorded == self.model:
                return
            if self._cannot_load is not None and self._cannot_load[0] == recorded:
                raise SwitchingModel(self._cannot_load[1])
            encoder = self._load(recorded)
            self.pool.renew(encoder, recorded)
            self.model, self.device = recorded, encoder.device
        finally:
            self._switch.release()

    def _load(self, model: ModelSpec) -> Encoder:
        from vstore.encode.encoder import load_encoder

        try:
            encoder = load_encoder(model, device=self.settings.device, threads=self.settings.threads)
            _warm_up(encoder)
        except (VstoreError, OSError, RuntimeError) as exc:
            reason = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
            message = (
                f"the database switched to {model.label} (`vstore reembed`), which this server cannot load "
                f"({reason}); restart `vstore serve` where that model is available."
            )
            self._cannot_load = (model, message)
            raise SwitchingModel(message) from exc
        return encoder


def _warm_up(encoder: Encoder) -> None:
    """A model's first call pays one-off costs (allocation, kernel choice); pay them now, without writing
    anything (no text cache row), through the same image preparation as a request."""
    from PIL import Image

    from vstore.encode.images import prepare

    encoder.encode_texts(["warm up"])
    png = io.BytesIO()
    Image.new("RGB", (64, 64), (128, 128, 128)).save(png, "PNG")
    encoder.encode_images(prepare(png.getvalue(), encoder.image_transform())[0][None])


__all__ = ["CONNECTION_WAIT_S", "Backend", "SwitchingModel"]
