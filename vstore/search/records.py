"""Catalog reads: one stored image with its captions (or its stored embedding), the datasets with their
splits, row counts. No model is needed for any of them."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import psycopg

from vstore.db.connect import vector_array
from vstore.db.sql import load
from vstore.encode.paths import filesystem_path
from vstore.errors import NotFound

COUNTED_TABLES = ("datasets", "images", "captions", "text_queries")


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
    root: str = ""  # the dataset's root (resolved when it was ingested); `path` lies under it


@dataclass
class DatasetSummary:
    name: str
    format: str
    images: int  # searchable images (status 'ok')
    splits: dict[str, int]  # images per split, for datasets that have splits


def get_image(conn: psycopg.Connection, image_id: int) -> ImageRecord:
    """One stored image, its file and its captions; NotFound for an unknown id."""
    row = conn.execute(load("queries/search_get_image"), {"id": int(image_id)}).fetchone()
    if row is None:
        raise NotFound(f"there is no image with id {image_id}.")
    return ImageRecord(
        id=row[0],
        dataset=row[1],
        path=filesystem_path(row[2], row[3]),
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
        root=row[2],
    )


def list_datasets(conn: psycopg.Connection) -> list[DatasetSummary]:
    """Each dataset with its searchable ('ok') images per split, by name."""
    summaries: dict[str, DatasetSummary] = {}
    for name, fmt, split, n in conn.execute(load("queries/search_datasets")).fetchall():
        summary = summaries.setdefault(name, DatasetSummary(name, fmt, 0, {}))
        summary.images += int(n)
        if split is not None:
            summary.splits[split] = int(n)
    return list(summaries.values())


def count_rows(conn: psycopg.Connection) -> dict[str, int]:
    """Rows per table, and images by status (`images_ok`, `images_failed`, ...)."""
    row = conn.execute(load("queries/search_counts")).fetchone()
    assert row is not None
    counts = {table: int(n) for table, n in zip(COUNTED_TABLES, row, strict=True)}
    for status, n in conn.execute(load("queries/search_images_by_status")).fetchall():
        counts[f"images_{status}"] = int(n)
    return counts


def split_names(conn: psycopg.Connection, dataset_id: int | None) -> list[str]:
    """The splits of one dataset (or of all, for None), in name order."""
    return [r[0] for r in conn.execute(load("queries/search_split_names"), {"d": dataset_id}).fetchall()]


def check_split(conn: psycopg.Connection, split: str | None, dataset_id: int | None) -> None:
    """An unknown --split is an error, like an unknown --dataset, naming the splits there are."""
    if split is None:
        return
    known = split_names(conn, dataset_id)
    if split not in known:
        where = " in that dataset" if dataset_id is not None else ""
        raise NotFound(
            f"there is no split named {split!r}{where}; the splits are: {', '.join(known) or 'none'}."
        )


def image_embedding(conn: psycopg.Connection, image_id: int) -> np.ndarray:
    """The stored embedding of an image (the query of `--like ID`)."""
    row = conn.execute(load("queries/search_image_embedding"), {"id": int(image_id)}).fetchone()
    if row is None:
        raise NotFound(f"there is no image with id {image_id}; ids come from `vstore search` output.")
    if row[0] is None:
        raise NotFound(f"image {image_id} has no embedding (status {row[1]!r}); re-run the ingest for it.")
    return vector_array(row[0])
