"""The database side of an ingest: dataset row, chunked look-ups of stored rows, and per-batch writes with
binary COPY into temp staging tables followed by one INSERT ... ON CONFLICT upsert per table.

Each batch is one transaction: a crash loses at most the batch in flight, and the unique keys
images(dataset_id, path) and captions(image_id, source_id) make a re-run update rows instead of
duplicating them.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import psycopg

from vstore.db.connect import vector_array
from vstore.db.datasets import OpenedDataset, open_dataset
from vstore.db.sql import load

IMAGE_STAGE_TYPES = [
    "text",
    "text",
    "text",
    "int8",
    "float8",
    "int4",
    "int4",
    "text",
    "text",
    "text",
    "text",
    "vector",
    "bool",
    "float8",
]
IMAGE_STAGE_COLUMNS = (
    "split, path, content_hash, size, mtime, width, height, source_id, label, status, error, embedding, "
    "touch, taken_at"
)
CAPTION_STAGE_TYPES = ["text", "text", "text", "vector"]


@dataclass(frozen=True)
class StoredImage:
    id: int
    size: int | None
    mtime: float | None
    content_hash: str | None
    status: str
    split: str | None
    source_id: str | None
    label: str | None
    embedded: bool  # has a vector: a row without one must be encoded, whatever its size and mtime say
    imported_vector: bool = False  # see queries/ingest_existing_images: adopt it, do not encode


@dataclass(frozen=True)
class StoredCaption:
    id: int
    source_id: str
    text: str
    embedded: bool


@dataclass
class ImageRow:
    split: str | None
    path: str
    source_id: str | None
    label: str | None
    content_hash: str | None = None
    size: int | None = None
    mtime: float | None = None
    width: int | None = None
    height: int | None = None
    status: str = "ok"
    error: str | None = None
    embedding: np.ndarray | None = None
    touch: bool = False  # content unchanged: update metadata/status only, keep the stored embedding
    taken_at: float | None = None  # EXIF capture date (POSIX seconds); None: the file's mtime stands in

    def as_copy_row(self) -> tuple:
        return (
            self.split,
            self.path,
            self.content_hash,
            self.size,
            self.mtime,
            self.width,
            self.height,
            self.source_id,
            self.label,
            self.status,
            self.error,
            self.embedding,
            self.touch,
            self.taken_at if self.taken_at is not None else self.mtime,
        )


@dataclass
class CaptionRow:
    path: str
    source_id: str
    text: str
    embedding: np.ndarray


class Writer:
    """Owns one connection (not autocommit); every public method leaves no transaction open."""

    def __init__(self, conn: psycopg.Connection) -> None:
        self.conn = conn
        # Commit per batch without waiting for the WAL flush (about 10 ms per commit on an ordinary disk):
        # a server crash can then lose the last fraction of a second of batches, which the next run
        # re-ingests; the database itself stays consistent. This session only.
        conn.execute("SET synchronous_commit = off")
        with conn.transaction():
            conn.execute(load("queries/ingest_create_image_stage"))
            conn.execute(load("queries/ingest_create_caption_stage"))
            conn.execute(load("queries/ingest_create_seen"))
            conn.execute("TRUNCATE ingest_seen")

    def open_dataset(
        self, name: str, root: str, format: str, *, source: str | None = None, explicit: bool = False
    ) -> OpenedDataset:
        """The dataset row of `source` (default: `root`); see vstore.db.datasets.open_dataset."""
        return open_dataset(
            self.conn, name=name, root=root, source=source or root, format=format, explicit=explicit
        )

    def count_images(self, dataset_id: int | None = None) -> int:
        with self.conn.transaction():
            if dataset_id is None:
                row = self.conn.execute("SELECT count(*) FROM public.images").fetchone()
            else:
                row = self.conn.execute(
                    "SELECT count(*) FROM public.images WHERE dataset_id = %s", (dataset_id,)
                ).fetchone()
        return int(row[0]) if row else 0

    def stored_images(self, dataset_id: int, paths: Sequence[str]) -> dict[str, StoredImage]:
        with self.conn.transaction():
            rows = self.conn.execute(
                load("queries/ingest_existing_images"), {"dataset_id": dataset_id, "paths": list(paths)}
            ).fetchall()
        return {r[0]: StoredImage(*r[1:]) for r in rows}

    def embeddings_by_path(self, dataset_id: int, paths: Sequence[str]) -> dict[str, np.ndarray]:
        """The stored vectors of these paths (an imported vector being adopted by its first ingest)."""
        if not paths:
            return {}
        with self.conn.transaction():
            rows = self.conn.execute(
                load("queries/ingest_embeddings_by_path"), {"dataset_id": dataset_id, "paths": list(paths)}
            ).fetchall()
        return {r[0]: vector_array(r[1]) for r in rows}

    def stored_captions(self, dataset_id: int, paths: Sequence[str]) -> dict[str, list[StoredCaption]]:
        """Stored captions of the given image paths, by path."""
        with self.conn.transaction():
            rows = self.conn.execute(
                load("queries/ingest_existing_captions"), {"dataset_id": dataset_id, "paths": list(paths)}
            ).fetchall()
        by_path: dict[str, list[StoredCaption]] = {}
        for path, source_id, id_, text, embedded in rows:
            by_path.setdefault(path, []).append(StoredCaption(int(id_), source_id, text, bool(embedded)))
        return by_path

    def delete_captions(self, ids: Sequence[int]) -> int:
        """Delete captions the source no longer has (their own transaction: a re-run finds them gone)."""
        if not ids:
            return 0
        with self.conn.transaction():
            cursor = self.conn.execute("DELETE FROM public.captions WHERE id = ANY(%s)", (list(ids),))
            return max(cursor.rowcount, 0)

    def embeddings_by_hash(
        self, hashes: Sequence[str]
    ) -> dict[str, tuple[np.ndarray, int | None, int | None]]:
        if not hashes:
            return {}
        with self.conn.transaction():
            rows = self.conn.execute(
                load("queries/ingest_embeddings_by_hash"), {"hashes": list(hashes)}
            ).fetchall()
        return {r[0]: (vector_array(r[1]), r[2], r[3]) for r in rows}

    def remember_seen(self, paths: Sequence[str]) -> None:
        """Record scanned paths in the session's temp table (kept across commits, never in Python)."""
        with self.conn.transaction():
            with self.conn.cursor().copy("COPY ingest_seen (path) FROM STDIN") as copy:
                for path in paths:
                    copy.write_row((path,))

    def write_batch(
        self, dataset_id: int, images: Sequence[ImageRow], captions: Sequence[CaptionRow]
    ) -> None:
        """One transaction: COPY both stages, upsert images (full and touch), then captions."""
        if not images and not captions:
            return
        params = {"dataset_id": dataset_id}
        with self.conn.transaction():
            cursor = self.conn.cursor()
            if images:
                with cursor.copy(
                    f"COPY ingest_image_stage ({IMAGE_STAGE_COLUMNS}) FROM STDIN WITH (FORMAT BINARY)"
                ) as copy:
                    copy.set_types(IMAGE_STAGE_TYPES)
                    for image in images:
                        copy.write_row(image.as_copy_row())
                if any(not image.touch for image in images):
                    cursor.execute(load("queries/ingest_upsert_images"), params)
                if any(image.touch for image in images):
                    cursor.execute(load("queries/ingest_touch_images"), params)
            if captions:
                with cursor.copy(
                    "COPY ingest_caption_stage (path, source_id, text, embedding) "
                    "FROM STDIN WITH (FORMAT BINARY)"
                ) as copy:
                    copy.set_types(CAPTION_STAGE_TYPES)
                    for caption in captions:
                        copy.write_row((caption.path, caption.source_id, caption.text, caption.embedding))
                cursor.execute(load("queries/ingest_upsert_captions"), params)

    def mark_missing(self, dataset_id: int, splits: Sequence[str] | None) -> int:
        with self.conn.transaction():
            self.conn.execute("ANALYZE ingest_seen")
            cursor = self.conn.execute(
                load("queries/ingest_mark_missing"),
                {"dataset_id": dataset_id, "splits": list(splits) if splits else None},
            )
            return max(cursor.rowcount, 0)
