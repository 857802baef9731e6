"""What a source yields: one ImageRecord per image file, with its captions, plus counters of what the
source skipped. Sources never touch the database; the ingest pipeline turns records into rows."""

from __future__ import annotations

import hashlib
import os
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol

from vstore.db.labels import LABEL_SEPARATOR
from vstore.encode.images import is_image_name
from vstore.encode.paths import stored_path

__all__ = ["LABEL_SEPARATOR", "is_image_name", "stored_path"]  # re-exported for the sources


@dataclass(frozen=True)
class CaptionRecord:
    source_id: str  # COCO annotation id; for sidecars and manifests text_caption_id(text)
    text: str


@dataclass(frozen=True)
class ImageRecord:
    path: str  # relative to the dataset root, as stored (see vstore.encode.paths.stored_path)
    file: Path  # where to read it
    split: str | None = None
    source_id: str | None = None  # e.g. the COCO image id
    label: str | None = None  # class folder name; several labels joined by LABEL_SEPARATOR
    captions: tuple[CaptionRecord, ...] = ()


MISSING_NAMED = 5  # missing files named in the report (the count covers all of them)


@dataclass
class SourceStats:
    """Things a source noticed and skipped (or passed on) while reading; filled in as records are yielded."""

    uncaptioned_images: int = 0  # ingested without captions
    annotations_missing_file: int = 0  # an annotation names a file that is not on disk: skipped
    missing_files: list[str] = field(default_factory=list)  # the first MISSING_NAMED of those names
    captions_unknown_image: int = 0  # a caption refers to an image id the annotations do not list: skipped
    captions_empty: int = 0  # blank caption text: skipped
    captions_invalid: int = 0  # not a string (a JSON list, number, object): skipped
    captions_duplicate: int = 0  # the same text again for the same image (a repeated manifest line): skipped
    notes: list[str] = field(default_factory=list)

    def file_missing(self, name: str) -> None:
        """An annotation (COCO) or manifest row names a file that is not on disk: counted, first few named."""
        self.annotations_missing_file += 1
        if len(self.missing_files) < MISSING_NAMED:
            self.missing_files.append(name)


class Source(Protocol):
    """A dataset on disk. `records()` may be called once; `stats` is complete after it is exhausted."""

    name: str  # default dataset name
    root: Path  # stored paths are relative to it
    location: Path  # what identifies the dataset: its folder, or its manifest file
    format: str
    splits: tuple[str, ...] | None  # the splits this scan covers; None = the whole dataset
    stats: SourceStats

    def estimate(self) -> int:
        """How many images records() will yield (cheap; for the progress bar and the bulk-load choice)."""
        ...

    def records(self) -> Iterator[ImageRecord]: ...


def clean_caption(text: object, stats: SourceStats) -> str | None:
    """Caption text as stored, or None (counted) when it is empty or not a string (a JSON list or number
    would otherwise be stored as its Python repr). PostgreSQL text cannot hold NUL."""
    if text is None:
        text = ""
    if not isinstance(text, str):
        stats.captions_invalid += 1
        return None
    text = " ".join(text.replace("\x00", " ").split())
    if not text:
        stats.captions_empty += 1
        return None
    return text


def text_caption_id(text: str) -> str:
    """The source id of a caption that has no id of its own (sidecar line, manifest row): a hash of its
    text, so editing, adding or removing other lines never changes it. The same text twice for one image
    is one caption (see unique_captions)."""
    return "t:" + hashlib.sha256(text.encode("utf-8")).hexdigest()[:24]


def unique_captions(texts: list[str], stats: SourceStats) -> tuple[CaptionRecord, ...]:
    """Captions identified by their text, a repeated text counted and skipped."""
    seen: dict[str, CaptionRecord] = {}
    for text in texts:
        if text in seen:
            stats.captions_duplicate += 1
        else:
            seen[text] = CaptionRecord(text_caption_id(text), text)
    return tuple(seen.values())


def walk_images(top: Path) -> Iterator[tuple[str, Path]]:
    """(relative path, absolute path) of image files under `top`, in a stable (sorted) order. Hidden
    files and folders are skipped; so are non-regular files (a FIFO would block the reader)."""
    for dirpath, dirnames, filenames in os.walk(top, followlinks=False):
        dirnames[:] = sorted(d for d in dirnames if not d.startswith("."))
        for name in sorted(filenames):
            if name.startswith(".") or not is_image_name(name):
                continue
            full = Path(dirpath) / name
            try:
                if full.is_fifo() or full.is_socket() or full.is_block_device() or full.is_char_device():
                    continue
            except OSError:
                pass  # unreadable: the reader records the error
            yield os.path.relpath(full, top), full
