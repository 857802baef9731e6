"""Searches spread over read replicas, writes on the primary (`vstore serve --replicas`).

Each search goes to the next replica in turn (round robin), skipping one that is down or lags more than
`max_lag_s` behind what it has received; when no replica can answer, the primary does. The text cache is
written on the primary only (a standby cannot write): a text query is embedded through the primary's
cache, so SQL clients find it with `vstore.text()`. With the primary down, texts already cached are read
from a replica's copy of the cache, images and similar-by-id need no cache, and a new text is encoded
and searched but reported as not cached (`uncached`), as under the reader role.
"""

from __future__ import annotations

import itertools
import time
from collections.abc import Callable, Sequence
from dataclasses import replace
from pathlib import Path
from typing import TypeVar

import numpy as np
import psycopg

from vstore.config import Settings
from vstore.db.connect import database_url
from vstore.db.replicas import LAG_QUERY
from vstore.encode.encoder import Encoder, ModelSpec
from vstore.errors import DatabaseUnavailable
from vstore.search.cache import EmbeddedTexts
from vstore.search.options import SearchOptions, SearchQuery
from vstore.search.records import DatasetSummary, ImageRecord
from vstore.search.results import Hit, SearchResult
from vstore.search.store import Store

T = TypeVar("T")
DEFAULT_MAX_LAG_S = 5.0
RECHECK_S = 1.0  # how long a replica's health answer is trusted
LOST = (psycopg.OperationalError, DatabaseUnavailable)


class ReplicatedStore:
    """The Store's searches over `replica_urls` with the primary of `settings` for cache writes."""

    def __init__(
        self,
        settings: Settings,
        replica_urls: Sequence[str],
        *,
        encoder: Encoder | None = None,
        max_lag_s: float = DEFAULT_MAX_LAG_S,
    ) -> None:
        # A fixed URL: a primary that stops stays stopped (connecting must not start the embedded server
        # again behind the operator's back); the replicas answer meanwhile.
        self.primary = Store(replace(settings, database_url=database_url(settings)), encoder=encoder)
        self.replicas = [Store(replace(settings, database_url=url), encoder=encoder) for url in replica_urls]
        self.max_lag_s = max_lag_s
        self._turn = itertools.count()
        self._health: dict[int, tuple[float, bool]] = {}  # replica index -> (checked at, usable)

    def close(self) -> None:
        for store in [self.primary, *self.replicas]:
            store.close()

    def __enter__(self) -> ReplicatedStore:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- routing ---------------------------------------------------------------------------------------

    def _usable(self, index: int) -> bool:
        checked, usable = self._health.get(index, (0.0, True))
        if time.monotonic() - checked < RECHECK_S:
            return usable
        try:
            row = self.replicas[index].conn.execute(LAG_QUERY).fetchone()
            usable = row is not None and float(row[1]) <= self.max_lag_s
        except LOST:
            self.replicas[index].close()  # reopened on the next check
            usable = False
        self._health[index] = (time.monotonic(), usable)
        return usable

    def readers(self) -> list[Store]:
        """The stores to try for a read, in order: usable replicas from the next in turn, then the primary."""
        start = next(self._turn)
        order = [(start + i) % len(self.replicas) for i in range(len(self.replicas))]
        return [self.replicas[i] for i in order if self._usable(i)] + [self.primary]

    def _read(self, call: Callable[[Store], T]) -> T:
        failure: BaseException | None = None
        for store in self.readers():
            try:
                return call(store)
            except LOST as exc:
                store.close()
                failure = exc
        raise DatabaseUnavailable(
            f"no replica and not the primary could answer ({failure}); start them "
            "(`vstore db start`, `vstore db replica start NAME`) and retry."
        )

    # -- the Store's reads and searches -------------------------------------------------------------------

    def embed_texts(self, texts: Sequence[str]) -> EmbeddedTexts:
        """Through the primary's cache (written there); with the primary down, a replica's copy of it."""
        try:
            return self.primary.embed_texts(texts)
        except LOST:
            self.primary.close()
        self._share_encoder()
        return self._read(lambda store: store.embed_texts(texts))

    def _share_encoder(self) -> None:
        """One model in memory: the replicas' stores use the encoder the primary's store loaded."""
        if self.primary.encoder_loaded:
            for store in self.replicas:
                if not store.encoder_loaded:
                    store._encoder = self.primary._encoder

    def search_vector(self, vector: np.ndarray, options: SearchOptions | None = None) -> list[Hit]:
        return self._read(lambda store: store.search_vector(vector, options))

    def search_like(self, image_id: int, options: SearchOptions | None = None) -> list[Hit]:
        return self._read(lambda store: store.search_like(image_id, options))

    def search(self, query: SearchQuery, options: SearchOptions | None = None) -> SearchResult:
        if query.text is not None and not query.arithmetic:
            embedded = self.embed_texts([query.text])
            return SearchResult(self.search_vector(embedded.vectors[0], options), embedded.uncached)
        if query.image is not None:
            return SearchResult(self.search_vector(self.encode_image(query.image), options))
        if query.like is not None and not query.arithmetic:
            return SearchResult(self.search_like(query.like, options))
        return self._read(lambda store: store.search(query, options))

    def encode_image(self, path: str | Path) -> np.ndarray:
        return self._encoder_store().encode_image(path)

    def encode_image_bytes(self, data: bytes) -> np.ndarray:
        return self._encoder_store().encode_image_bytes(data)

    # -- catalog reads and the model ------------------------------------------------------------------

    def get(self, image_id: int) -> ImageRecord:
        return self._read(lambda store: store.get(image_id))

    def datasets(self) -> list[DatasetSummary]:
        return self._read(lambda store: store.datasets())

    def counts(self) -> dict[str, int]:
        return self._read(lambda store: store.counts())

    @property
    def model(self) -> ModelSpec:
        return self._encoder_store().model

    @property
    def encoder(self) -> Encoder:
        return self._encoder_store().encoder

    def _encoder_store(self) -> Store:
        """A store whose model record is readable (for the encoder): the primary, else a replica."""
        try:
            _ = self.primary.model
            return self.primary
        except LOST:
            self.primary.close()
        self._share_encoder()
        return self._read(_with_model)


def _with_model(store: Store) -> Store:
    _ = store.model  # reads the model record: raises when the server cannot answer
    return store
