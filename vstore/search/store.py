"""Store: search in all four directions (text->image, image->image, text->text, image->text). It owns one
psycopg connection and runs every query in its own short transaction, so the index knobs (SET LOCAL)
never leak from one search to the next.

The encoder is loaded lazily, for the database's model, only when a query needs one: a text already in
the text_queries cache (search/cache.py), or `search_like(id)`, needs no model at all. Catalog reads
(get, datasets, counts) are in search/records.py; the Store forwards them on its connection.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from pathlib import Path
from typing import Unpack

import numpy as np
import psycopg

from vstore.config import Settings
from vstore.db.connect import connect
from vstore.db.datasets import dataset_id as find_dataset_id
from vstore.db.migrations import checked_model
from vstore.encode.encoder import Encoder, ModelSpec
from vstore.errors import ConfigError, ModelMismatch, ReadOnlyDatabase
from vstore.search import records
from vstore.search.arithmetic import QueryTerm
from vstore.search.cache import (
    CachedText,
    EmbeddedTexts,
    check_model,
    embed_through_cache,
    recorded_model_key,
    switched,
)
from vstore.search.duplicates import DEFAULT_MAX_DISTANCE, Group, find_duplicates
from vstore.search.execute import run_search
from vstore.search.options import (
    MAX_K,
    TARGETS,
    SearchFields,
    SearchOptions,
    SearchQuery,
    Target,
    check_options,
    merged_options,
)
from vstore.search.records import DatasetSummary, ImageRecord
from vstore.search.results import CaptionHit, Hit, ImageHit, SearchResult

# Re-exported: the search API in one import (`from vstore.search.store import Store, SearchOptions`).
__all__ = ["MAX_K", "TARGETS", "CachedText", "CaptionHit", "DatasetSummary", "Hit", "ImageHit"]
__all__ += ["ImageRecord", "SearchOptions", "SearchQuery", "SearchResult", "Store", "Target"]


class Store:
    """`with Store(settings) as store: store.search_text("a dog on a skateboard", k=5)`.

    `encoder` may be given (tests inject a small fake, `vstore serve` shares one); otherwise the database's
    model is loaded on the first query that needs it (`Settings.device`/`threads` apply). `model`: the
    model `encoder` was loaded for; a database recorded with another is ModelSwitched at connect.

    Before every encode the Store compares the database's model record with its own (one read by primary
    key), so a process that loaded its model before a `vstore reembed` never encodes or caches with the
    old one: ModelSwitched says so."""

    def __init__(
        self, settings: Settings, *, encoder: Encoder | None = None, model: ModelSpec | None = None
    ) -> None:
        self.settings = settings
        self._encoder = encoder
        self._expected = model
        self._conn: psycopg.Connection | None = None
        self._model: ModelSpec | None = None
        self._model_key = ""  # embedding_model.model_key of self._model, read with it
        # How the last search ran (SearchResult.plan/took_ms; `vstore search --explain`)
        self.last_plan = ""
        self.last_took_ms = 0.0

    # -- lifecycle -------------------------------------------------------------------------------------

    def __enter__(self) -> Store:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        if self._conn is not None:
            self._conn.close()
            self._conn = None

    @property
    def conn(self) -> psycopg.Connection:
        if self._conn is None:
            # autocommit: each search opens its own explicit transaction (conn.transaction()).
            conn = connect(self.settings, autocommit=True)
            try:
                model = checked_model(conn)
                if self._expected is not None and model != self._expected:
                    raise switched(self._expected, model)
                self._model, self._model_key = model, recorded_model_key(conn)
            except BaseException:
                conn.close()
                raise
            self._conn = conn
        return self._conn

    def check_model(self) -> None:
        """ModelSwitched when the database's model is no longer the one this Store encodes with (a
        `vstore reembed` since it connected). One read by primary key; called before every encode."""
        check_model(self.conn, self.model, self._model_key)

    @property
    def model(self) -> ModelSpec:
        """The database's embedding model (the schema is checked to be current on first use)."""
        if self._model is None:
            _ = self.conn
        assert self._model is not None
        return self._model

    @property
    def encoder_loaded(self) -> bool:
        return self._encoder is not None

    @property
    def encoder(self) -> Encoder:
        if self._encoder is None:
            from vstore.encode.encoder import load_encoder

            self._encoder = load_encoder(
                self.model, device=self.settings.device, threads=self.settings.threads
            )
        if self._encoder.dim != self.model.dim:
            raise ModelMismatch(
                f"the encoder makes {self._encoder.dim}-d vectors but this database holds {self.model.dim}-d "
                f"{self.model.label} vectors; use the database's model."
            )
        return self._encoder

    # -- queries -----------------------------------------------------------------------------------------

    def search(self, query: SearchQuery, options: SearchOptions | None = None) -> SearchResult:
        """`vstore search` in one call: the hits, the query texts this role could not cache, and how the
        search ran (plan, database time)."""
        opts = options or SearchOptions()
        if opts.mode != "vector":
            if query.text is None or query.arithmetic or query.image is not None or query.like is not None:
                raise ConfigError(
                    f"--mode {opts.mode} searches by words: give a TEXT query (not --image, --like, "
                    "--plus or --minus), or use --mode vector."
                )
            if opts.mode == "text":
                return self._result(self._search(None, opts, exclude_id=None, words=query.text))
            embedded = self.embed_texts([query.text])
            hits = self._search(embedded.vectors[0], opts, exclude_id=None, words=query.text)
            return self._result(hits, embedded.uncached)
        if query.arithmetic:
            vector, uncached = self._combined(query.terms())
            return self._result(self.search_vector(vector, opts), uncached)
        if query.text is not None:
            embedded = self.embed_texts([query.text])
            return self._result(self.search_vector(embedded.vectors[0], opts), embedded.uncached)
        if query.image is not None:
            return self._result(self.search_image(query.image, opts))
        assert query.like is not None
        return self._result(self.search_like(query.like, opts))

    def _result(self, hits: list[Hit], uncached: list[str] | None = None) -> SearchResult:
        return SearchResult(hits, uncached or [], self.last_plan, self.last_took_ms)

    def search_text(
        self, text: str, options: SearchOptions | None = None, **fields: Unpack[SearchFields]
    ) -> list[Hit]:
        """Text -> images (default) or, with target="captions", text -> text; mode="text" finds by the
        captions' words (no model), mode="hybrid" by both."""
        return self.search(SearchQuery(text=text), merged_options(options, fields)).hits

    def search_image(
        self, path: str | Path, options: SearchOptions | None = None, **fields: Unpack[SearchFields]
    ) -> list[Hit]:
        """An image file -> images (default) or, with target="captions", image -> text."""
        return self.search_vector(self.encode_image(path), merged_options(options, fields))

    def search_terms(
        self, terms: Sequence[QueryTerm], options: SearchOptions | None = None, **fields: Unpack[SearchFields]
    ) -> list[Hit]:
        """Query arithmetic: the weighted sum of texts, image files and stored images, renormalised, e.g.
        `[QueryTerm("a cat", 2), QueryTerm(Path("beach.jpg")), QueryTerm("snow", -1)]` (see
        search/arithmetic.py; `parse_terms` reads the CLI's '2:a cat' form). Texts go through the cache."""
        return self.search_vector(self.combined_vector(terms), merged_options(options, fields))

    def combined_vector(self, terms: Sequence[QueryTerm]) -> np.ndarray:
        """The query vector of `search_terms`."""
        return self._combined(terms)[0]

    def _combined(self, terms: Sequence[QueryTerm]) -> tuple[np.ndarray, list[str]]:
        from vstore.search.arithmetic import combine

        texts = [t.query for t in terms if isinstance(t.query, str)]
        embedded = self.embed_texts(texts) if texts else None
        cached = dict(zip(texts, embedded.vectors, strict=True)) if embedded is not None else {}

        def vector_of(term: QueryTerm) -> np.ndarray:
            if isinstance(term.query, str):
                return cached[term.query]
            if isinstance(term.query, Path):
                return self.encode_image(term.query)
            return self.image_vector(int(term.query))

        return combine(terms, vector_of), embedded.uncached if embedded is not None else []

    def search_like(
        self, image_id: int, options: SearchOptions | None = None, **fields: Unpack[SearchFields]
    ) -> list[Hit]:
        """A stored image -> the images nearest to it (itself excluded), or its nearest captions."""
        opts = merged_options(options, fields)
        return self._search(self.image_vector(image_id), opts, exclude_id=int(image_id))

    def image_vector(self, image_id: int) -> np.ndarray:
        """The stored embedding of an image (the query of `--like ID`)."""
        return records.image_embedding(self.conn, image_id)

    def search_vector(
        self, vector: np.ndarray, options: SearchOptions | None = None, **fields: Unpack[SearchFields]
    ) -> list[Hit]:
        """The k nearest images or captions to an L2-normalised vector of the database's dimension."""
        opts = merged_options(options, fields)
        return self._search(np.asarray(vector, dtype=np.float32), opts, exclude_id=None)

    def _search(
        self,
        vector: np.ndarray | None,
        opts: SearchOptions,
        *,
        exclude_id: int | None,
        words: str | None = None,
    ) -> list[Hit]:
        check_options(opts)
        if vector is not None and vector.shape != (self.model.dim,):
            self.check_model()  # a stored vector of a model switched to since: say that, not "mismatch"
            raise ModelMismatch(
                f"query vector has shape {vector.shape}, this database holds {self.model.dim}-d."
            )
        conn = self.conn
        dataset_id = find_dataset_id(conn, opts.dataset)
        started = time.perf_counter()
        hits, plan = run_search(conn, vector, opts, dataset_id=dataset_id, exclude_id=exclude_id, words=words)
        self.last_plan, self.last_took_ms = plan, (time.perf_counter() - started) * 1000.0
        if not hits:  # an unknown --split is an error, checked only when nothing came back
            records.check_split(conn, opts.split, dataset_id)
        return hits

    # -- encoding and the text cache -----------------------------------------------------------------------

    def embed_texts(self, texts: Sequence[str]) -> EmbeddedTexts:
        """Vectors for `texts` through the text cache (search/cache.py), with the texts not cached."""
        return embed_through_cache(self.conn, texts, self._encode_texts, self.model.dim, self._model_key)

    def _encode_texts(self, texts: list[str]) -> np.ndarray:
        self.check_model()
        return self.encoder.encode_texts(texts)

    def embed_text(self, texts: Sequence[str]) -> np.ndarray:
        """Vectors for `texts`, from the text_queries cache where present; the others are encoded and added
        to the cache (so `vstore.text('...')` finds them from SQL). One row per text, in order."""
        return self.embed_texts(texts).vectors

    def cache_texts(self, texts: Sequence[str]) -> list[CachedText]:
        """Pre-fill the text cache for SQL clients (`vstore embed-text`). Returns each text's cache row.
        ReadOnlyDatabase when this role may not write the cache."""
        embedded = self.embed_texts(texts)
        if embedded.uncached:
            raise ReadOnlyDatabase(
                f"this database role may not write the text cache, so {len(embedded.uncached)} text(s) "
                "were not cached. Cache them with the owner's URL (`vstore db url`, or unset "
                "VSTORE_DATABASE_URL); this role can then find them with vstore.text('...')."
            )
        return embedded.cached

    def encode_image(self, path: str | Path) -> np.ndarray:
        """The vector of an image file, through the same preparation as ingest (encode/images.py)."""
        from vstore.encode.images import prepare_file

        self.check_model()
        pixels = prepare_file(path, self.encoder.image_transform())
        return self.encoder.encode_images(pixels[None])[0]

    def encode_image_bytes(self, data: bytes) -> np.ndarray:
        """The vector of an image file's bytes (an upload), through the same preparation as ingest."""
        from vstore.encode.images import prepare

        self.check_model()
        pixels = prepare(data, self.encoder.image_transform())[0]
        return self.encoder.encode_images(pixels[None])[0]

    def duplicates(
        self, max_distance: float = DEFAULT_MAX_DISTANCE, *, dataset: str | None = None
    ) -> list[Group]:
        """Groups of near-identical images with a suggested keeper (search/duplicates.py); deletes nothing."""
        return find_duplicates(self.conn, max_distance, dataset_id=find_dataset_id(self.conn, dataset))

    # -- catalog reads (search/records.py) -----------------------------------------------------------------

    def get(self, image_id: int) -> ImageRecord:
        return records.get_image(self.conn, image_id)

    def datasets(self) -> list[DatasetSummary]:
        """Each dataset with its searchable ('ok') images per split, by name."""
        return records.list_datasets(self.conn)

    def counts(self) -> dict[str, int]:
        """Rows per table, and images by status."""
        return records.count_rows(self.conn)
