"""What a search returns: image and caption hits, and the result of `Store.search` (hits plus the texts
that could not be written to the text cache)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from vstore.encode.paths import filesystem_path


@dataclass(frozen=True)
class ImageHit:
    """An image found by a search. `path` is absolute: the dataset root joined with the stored path."""

    id: int
    path: str
    image_id: int  # the same as id; present so image and caption hits share their fields
    dataset: str
    split: str | None
    distance: float | None  # cosine distance, 0 = same direction, 2 = opposite; None: found by words only
    similarity: float | None  # 1 - distance (the cosine similarity of the normalised vectors)
    relative_path: str = ""  # as stored: relative to the dataset root, '/'-separated
    taken_at: datetime | None = None  # EXIF capture date, else the file's mtime
    score: float | None = None  # --mode text: ts_rank; hybrid: the reciprocal-rank-fusion score


@dataclass(frozen=True)
class CaptionHit:
    """A caption found by a search, with the image it describes."""

    id: int
    text: str
    image_id: int
    path: str  # the caption's image, absolute
    dataset: str
    split: str | None
    distance: float | None
    similarity: float | None
    relative_path: str = ""  # the image's path as stored, relative to the dataset root
    taken_at: datetime | None = None
    score: float | None = None


Hit = ImageHit | CaptionHit


@dataclass(frozen=True)
class SearchResult:
    hits: list[Hit]
    uncached: list[str] = field(default_factory=list)  # query texts this role could not cache
    plan: str = ""  # how the search ran (--explain; the HTTP answer's plan): mode, HNSW or exact, why
    took_ms: float = 0.0  # database time of the search, encoding excluded


def image_hit(r: Sequence[Any]) -> ImageHit:
    # columns of queries/filtered_images: id, path, root, dataset, split, distance[, taken_at]
    distance = float(r[5])
    taken_at = r[6] if len(r) > 6 else None
    path = filesystem_path(r[2], r[1])
    return ImageHit(r[0], path, r[0], r[3], r[4], distance, 1.0 - distance, r[1], taken_at)


def caption_hit(r: Sequence[Any]) -> CaptionHit:
    # columns of queries/filtered_captions: id, text, image_id, path, root, dataset, split, distance,
    # [taken_at]
    distance = float(r[7])
    taken_at = r[8] if len(r) > 8 else None
    path = filesystem_path(r[4], r[3])
    return CaptionHit(r[0], r[1], r[2], path, r[5], r[6], distance, 1.0 - distance, r[3], taken_at)


def text_image_hit(r: Sequence[Any], score: float | None = None, distance: float | None = None) -> ImageHit:
    # columns of queries/text_images: id, path, root, dataset, split, score, taken_at
    similarity = None if distance is None else 1.0 - distance
    path = filesystem_path(r[2], r[1])
    return ImageHit(
        r[0], path, r[0], r[3], r[4], distance, similarity, r[1], r[6], r[5] if score is None else score
    )


def text_caption_hit(
    r: Sequence[Any], score: float | None = None, distance: float | None = None
) -> CaptionHit:
    # columns of queries/text_captions: id, text, image_id, path, root, dataset, split, score, taken_at
    similarity = None if distance is None else 1.0 - distance
    path = filesystem_path(r[4], r[3])
    score = r[7] if score is None else score
    return CaptionHit(r[0], r[1], r[2], path, r[5], r[6], distance, similarity, r[3], r[8], score)
