"""What a search returns: image and caption hits, and the result of `Store.search` (hits plus the texts
that could not be written to the text cache)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
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
class SearchResult:
    hits: list[Hit]
    uncached: list[str] = field(default_factory=list)  # query texts this role could not cache


def image_hit(r: Sequence[Any]) -> ImageHit:
    # columns of queries/search_images: id, path, root, dataset, split, distance
    distance = float(r[5])
    return ImageHit(r[0], filesystem_path(r[2], r[1]), r[0], r[3], r[4], distance, 1.0 - distance, r[1])


def caption_hit(r: Sequence[Any]) -> CaptionHit:
    # columns of queries/search_captions: id, text, image_id, path, root, dataset, split, distance
    distance = float(r[7])
    path = filesystem_path(r[4], r[3])
    return CaptionHit(r[0], r[1], r[2], path, r[5], r[6], distance, 1.0 - distance, r[3])
