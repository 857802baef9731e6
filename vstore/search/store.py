"""Store: search in all four directions (text->image, image->image, text->text, image->text), plus get and
counts. It owns one psycopg connection and runs every query in its own short transaction, so the index
knobs (SET LOCAL) never leak from one search to the next.

The encoder is loaded lazily, for the database's model, only when a query needs one: a text already in
the text_queries cache, or `search_like(id)`, needs no model at all. Every text the Store encodes is
written to that cache, which is what `vstore.text('...')` reads for SQL clients. Under a role that may
not write (`vstore db reader`, a read-only replica) new texts are still searched, uncached, and
`Store.uncached` names them.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import numpy as np
import psycopg
from psycopg import sql as pgsql

from vstore.config import Settings
from vstore.db.connect import CANNOT_WRITE, connect, scalar, vector_array
from vstore.db.datasets import dataset_id as find_dataset_id
from vstore.db.indexes import DEFAULT_EF_SEARCH, set_query_knobs
from vstore.db.migrations import checked_model
from vstore.db.sql import load
from vstore.encode.encoder import Encoder, ModelSpec
from vstore.encode.paths import filesystem_path
from vstore.errors import ConfigError, ModelMismatch, NotFound, ReadOnlyDatabase
from vstore.search.arithmetic import QueryTerm

Target = Literal["images", "captions"]
TARGETS: tuple[str, ...] = ("images", "captions")
MAX_K = 1000  # pgvector's hnsw.ef_search ceiling; iterative scans need ef_search >= k to return k rows
# pgvector's default hnsw.ef_search is 40: recall@10 0.93 on 100k x 512 clustered vectors, 0.975 at 100 for
# 0.3 ms more per query (docs/search.md). vstore searches use 100 unless told otherwise.


@dataclass(frozen=True)
class ImageHit:
    """An image found by a search. `path` is absolute: the dataset root joined with the stored path."""

    id: int
    path: str
    image_id: int  # the same as id; present so image and caption hits share their fields
    dataset: str
    split: str | None
    distance: float  # cosine distance, 0 = same direction, 2 = opposite
    similarity: float  # 1 - distance (the cosine similarity of the normalised vectors)
    relative_path: str = ""  # as stored: relative to the dataset root, '/'-separated


@dataclass(frozen=True)
class CaptionHit:
    """A caption found by a search, with the image it describes."""

    id: int
    text: str
    image_id: int
    path: str  # the caption's image, absolute
    dataset: str
    split: str | None
    distance: float
    similarity: float
    relative_path: str = ""  # the image's path as stored, relative to the dataset root


Hit = ImageHit | CaptionHit


@dataclass(frozen=True)
class SearchOptions:
    """Everything about a search except its query. Filters are structured values, always bound."""

    target: Target = "images"
    k: int = 10
    dataset: str | None = None
    split: str | None = None
    ef_search: int | None = None  # None: DEFAULT_EF_SEARCH
    probes: int | None = None
    exact: bool = False


@dataclass(frozen=True)
class CachedText:
    id: int
    text: str
    added: bool  # False when the text was already in the cache (it was not encoded again)


@dataclass(frozen=True)
class ImageRecord:
    id: int
    dataset: str
    path: str  # absolute
    relative_path: str
    split: str | None
    status: str
    error: str | None
    width: int | None
    height: int | None
    source_id: str | None
    label: str | None
    content_hash: str | None
    has_embedding: bool
    captions: list[str]


@dataclass
class DatasetSummary:
    name: str
    format: str
    images: int  # searchable images (status 'ok')
    splits: dict[str, int]  # images per split, for datasets that have splits


def absolute_path(root: str, relative: str) -> str:
    """The file of a stored path (see vstore.encode.paths: names that are not UTF-8 are escaped)."""
    return filesystem_path(root, relative)


def _image_hit(r: Sequence[Any]) -> ImageHit:
    # columns of queries/search_images: id, path, root, dataset, split, distance
    distance = float(r[5])
    return ImageHit(r[0], absolute_path(r[2], r[1]), r[0], r[3], r[4], distance, 1.0 - distance, r[1])


def _caption_hit(r: Sequence[Any]) -> CaptionHit:
    # columns of queries/search_captions: id, text, image_id, path, root, dataset, split, distance
    distance = float(r[7])
    return CaptionHit(r[0], r[1], r[2], absolute_path(r[4], r[3]), r[5], r[6], distance, 1.0 - distance, r[3])


def _check_text(text: str) -> str:
    if not isinstance(text, str) or not text.strip():
        raise ConfigError("the query text is empty; give some words to search for.")
    if "\x00" in text:
        raise ConfigError("the query text contains a NUL character, which PostgreSQL text cannot store.")
    return text


class Store:
    """`with Store(settings) as store: store.search_text("a dog on a skateboard", k=5)`.

    `encoder` may be given (tests inject a small fake); otherwise the database's model is loaded on the
    first query that needs it (`Settings.device`/`threads` apply)."""

    def __init__(self, settings: Settings, *, encoder: Encoder | None = None) -> None:
        self.settings = settings
        self._encoder = encoder
        self._conn: psycopg.Connection | None = None
        self._model: ModelSpec | None = None
        # Texts of the last query that were encoded and searched but could not be written to the cache
        # (the role may not write); empty when everything was cached.
        self.uncached: list[str] = []

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
                self._model = checked_model(conn)
            except BaseException:
                conn.close()
                raise
            self._conn = conn
        return self._conn

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

    def search_text(self, text: str, **options: Any) -> list[Hit]:
        """Text -> images (default) or, with target="captions", text -> text."""
        vector = self.embed_text([text])[0]
        return self.search_vector(vector, **options)

    def search_image(self, path: str | Path, **options: Any) -> list[Hit]:
        """An image file -> images (default) or, with target="captions", image -> text."""
        return self.search_vector(self.encode_image(path), **options)

    def search_terms(self, terms: Sequence[QueryTerm], **options: Any) -> list[Hit]:
        """Query arithmetic: the weighted sum of texts, image files and stored images, renormalised, e.g.
        `[QueryTerm("a cat", 2), QueryTerm(Path("beach.jpg")), QueryTerm("snow", -1)]` (see
        search/arithmetic.py; `parse_terms` reads the CLI's '2:a cat' form). Texts go through the cache."""
        return self.search_vector(self.combined_vector(terms), **options)

    def combined_vector(self, terms: Sequence[QueryTerm]) -> np.ndarray:
        """The query vector of `search_terms`."""
        from vstore.search.arithmetic import combine

        texts = [t.query for t in terms if isinstance(t.query, str)]
        cached = dict(zip(texts, self.embed_text(texts), strict=True)) if texts else {}

        def vector_of(term: QueryTerm) -> np.ndarray:
            if isinstance(term.query, str):
                return cached[term.query]
            if isinstance(term.query, Path):
                return self.encode_image(term.query)
            return self.image_vector(int(term.query))

        return combine(terms, vector_of)

    def search_like(self, image_id: int, **options: Any) -> list[Hit]:
        """A stored image -> the images nearest to it (itself excluded), or its nearest captions."""
        opts = SearchOptions(**options)
        return self._search(self.image_vector(image_id), opts, exclude_id=int(image_id))

    def image_vector(self, image_id: int) -> np.ndarray:
        """The stored embedding of an image (the query of `--like ID`)."""
        row = self.conn.execute(load("queries/search_image_embedding"), {"id": int(image_id)}).fetchone()
        if row is None:
            raise NotFound(f"there is no image with id {image_id}; ids come from `vstore search` output.")
        if row[0] is None:
            raise NotFound(
                f"image {image_id} has no embedding (status {row[1]!r}); re-run the ingest for it."
            )
        return vector_array(row[0])

    def search_vector(self, vector: np.ndarray, **options: Any) -> list[Hit]:
        """The k nearest images or captions to an L2-normalised vector of the database's dimension."""
        return self._search(np.asarray(vector, dtype=np.float32), SearchOptions(**options), exclude_id=None)

    def _search(self, vector: np.ndarray, opts: SearchOptions, *, exclude_id: int | None) -> list[Hit]:
        if opts.target not in TARGETS:
            raise ConfigError(f"unknown target {opts.target!r}; choose images or captions.")
        if not 1 <= opts.k <= MAX_K:
            raise ConfigError(f"-k must be between 1 and {MAX_K}.")
        if opts.ef_search is not None and not 1 <= opts.ef_search <= MAX_K:
            raise ConfigError(f"--ef-search must be between 1 and {MAX_K}.")
        if vector.shape != (self.model.dim,):
            raise ModelMismatch(
                f"query vector has shape {vector.shape}, this database holds {self.model.dim}-d."
            )
        conn = self.conn
        dataset_id = find_dataset_id(self.conn, opts.dataset)
        params = {
            "q": vector,
            "k": opts.k,
            "dataset_id": dataset_id,
            "split": opts.split,
            "exclude_id": exclude_id,
        }
        # ef_search below k would cap HNSW results at ef_search rows: raise it to k.
        ef_search = max(opts.ef_search or DEFAULT_EF_SEARCH, opts.k)
        with conn.transaction():
            set_query_knobs(conn, ef_search=ef_search, probes=opts.probes, exact=opts.exact, iterative=True)
            if opts.target == "images":
                rows = conn.execute(load("queries/search_images"), params, prepare=True).fetchall()
                if not rows:
                    self._check_split(opts.split, dataset_id)
                return [_image_hit(r) for r in rows]
            del params["exclude_id"]
            rows = conn.execute(load("queries/search_captions"), params, prepare=True).fetchall()
            if not rows:
                self._check_split(opts.split, dataset_id)
            return [_caption_hit(r) for r in rows]

    def _check_split(self, split: str | None, dataset_id: int | None) -> None:
        """An unknown --split is an error, like an unknown --dataset, naming the splits there are (checked
        only when a search came back empty, so a normal search pays nothing for it)."""
        if split is None:
            return
        known = [
            r[0]
            for r in self.conn.execute(
                "SELECT DISTINCT split FROM public.images WHERE split IS NOT NULL "
                "AND (%(d)s::bigint IS NULL OR dataset_id = %(d)s::bigint) ORDER BY split",
                {"d": dataset_id},
            ).fetchall()
        ]
        if split not in known:
            where = " in that dataset" if dataset_id is not None else ""
            raise NotFound(
                f"there is no split named {split!r}{where}; the splits are: {', '.join(known) or 'none'}."
            )

    # -- encoding and the text cache -----------------------------------------------------------------------

    def embed_text(self, texts: Sequence[str]) -> np.ndarray:
        """Vectors for `texts`, from the text_queries cache where present; the others are encoded and added
        to the cache (so `vstore.text('...')` finds them from SQL). One row per text, in order."""
        vectors, _ = self._embed_and_cache(texts)
        return vectors

    def cache_texts(self, texts: Sequence[str]) -> list[CachedText]:
        """Pre-fill the text cache for SQL clients (`vstore embed-text`). Returns each text's cache row.
        ReadOnlyDatabase when this role may not write the cache."""
        _, cached = self._embed_and_cache(texts)
        if self.uncached:
            raise ReadOnlyDatabase(
                f"this database role may not write the text cache, so {len(self.uncached)} text(s) were not "
                "cached. Cache them with the owner's URL (`vstore db url`, or unset VSTORE_DATABASE_URL); "
                "this role can then find them with vstore.text('...')."
            )
        return cached

    def _embed_and_cache(self, texts: Sequence[str]) -> tuple[np.ndarray, list[CachedText]]:
        texts = [_check_text(t) for t in texts]
        conn = self.conn
        self.uncached = []
        unique = list(dict.fromkeys(texts))
        found = {
            r[0]: vector_array(r[1])
            for r in conn.execute(load("queries/search_cached_texts"), {"texts": unique}).fetchall()
        }
        missing = [t for t in unique if t not in found]
        ids: dict[str, tuple[int, bool]] = {}
        if missing:
            encoded = self.encoder.encode_texts(missing)
            for text, vector in zip(missing, encoded, strict=True):
                found[text] = np.asarray(vector, dtype=np.float32)
            try:
                with conn.transaction():
                    for text, vector in zip(missing, encoded, strict=True):
                        params = {"text": text, "embedding": vector}
                        ids[text] = (int(scalar(conn, load("queries/search_cache_text"), params)), True)
            except CANNOT_WRITE:  # searched all the same; the caller tells the user it was not cached
                ids.clear()
                self.uncached = missing
        if len(ids) < len(unique):
            for text, id_ in conn.execute(
                "SELECT text, id FROM public.text_queries WHERE text = ANY(%s::text[])", (unique,)
            ).fetchall():
                ids.setdefault(text, (int(id_), False))
        vectors = np.stack([found[t] for t in texts]) if texts else np.zeros((0, self.model.dim), np.float32)
        return vectors, [CachedText(ids[t][0], t, ids[t][1]) for t in unique if t in ids]

    def encode_image(self, path: str | Path) -> np.ndarray:
        """The vector of an image file, through the same preparation as ingest (encode/images.py)."""
        from vstore.encode.images import prepare_file

        pixels = prepare_file(path, self.encoder.image_transform())
        return self.encoder.encode_images(pixels[None])[0]

    def encode_image_bytes(self, data: bytes) -> np.ndarray:
        """The vector of an image file's bytes (an upload), through the same preparation as ingest."""
        from vstore.encode.images import prepare

        pixels = prepare(data, self.encoder.image_transform())[0]
        return self.encoder.encode_images(pixels[None])[0]

    # -- records -------------------------------------------------------------------------------------------

    def get(self, image_id: int) -> ImageRecord:
        row = self.conn.execute(load("queries/search_get_image"), {"id": int(image_id)}).fetchone()
        if row is None:
            raise NotFound(f"there is no image with id {image_id}.")
        return ImageRecord(
            id=row[0],
            dataset=row[1],
            path=absolute_path(row[2], row[3]),
            relative_path=row[3],
            split=row[4],
            status=row[5],
            error=row[6],
            width=row[7],
            height=row[8],
            source_id=row[9],
            label=row[10],
            content_hash=row[11],
            has_embedding=bool(row[12]),
            captions=list(row[13]),
        )

    def datasets(self) -> list[DatasetSummary]:
        """Each dataset with its searchable ('ok') images per split, by name."""
        summaries: dict[str, DatasetSummary] = {}
        for name, fmt, split, n in self.conn.execute(load("queries/search_datasets")).fetchall():
            summary = summaries.setdefault(name, DatasetSummary(name, fmt, 0, {}))
            summary.images += int(n)
            if split is not None:
                summary.splits[split] = int(n)
        return list(summaries.values())

    def counts(self) -> dict[str, int]:
        """Rows per table, and images by status."""
        conn = self.conn
        counts = {
            t: int(scalar(conn, pgsql.SQL("SELECT count(*) FROM public.{}").format(pgsql.Identifier(t))))
            for t in ("datasets", "images", "captions", "text_queries")
        }
        for status, n in conn.execute(
            "SELECT status, count(*) FROM public.images GROUP BY status"
        ).fetchall():
            counts[f"images_{status}"] = int(n)
        return counts
