"""Any tree of images. A same-stem .txt file beside an image holds its captions, one per non-empty line.
Images inside a sub-folder get the folder's name as their label (ImageNet/CIFAR class folders), which
zero-shot evaluation uses. With --split, only those top-level folders are read, and each is the split."""

from __future__ import annotations

import os
from collections.abc import Iterator, Sequence
from pathlib import Path

from vstore.errors import SourceError
from vstore.ingest.sources.records import (
    CaptionRecord,
    ImageRecord,
    SourceStats,
    clean_caption,
    stored_path,
    unique_captions,
    walk_images,
)


def read_sidecar(image: Path, stats: SourceStats) -> tuple[CaptionRecord, ...]:
    sidecar = image.with_suffix(".txt")
    try:
        raw = sidecar.read_bytes()
    except OSError:
        return ()
    texts = [clean_caption(line, stats) for line in raw.decode("utf-8", "replace").splitlines()]
    return unique_captions([t for t in texts if t is not None], stats)


class FolderSource:
    format = "folder"

    def __init__(self, root: Path, splits: Sequence[str] | None = None) -> None:
        if not root.is_dir():
            raise SourceError(f"{root} is not a folder.")
        self.root = root
        self.location = root  # what identifies the dataset
        self.name = root.resolve().name
        self.stats = SourceStats()
        if splits:
            missing = [s for s in splits if not (root / s).is_dir()]
            if missing:
                raise SourceError(f"--split {missing[0]}: there is no folder {root / missing[0]}.")
        self.splits: tuple[str, ...] | None = tuple(splits) if splits else None

    def _tops(self) -> list[tuple[str | None, Path, str]]:
        """(split, folder to walk, prefix of stored paths)."""
        if self.splits:
            return [(s, self.root / s, f"{s}/") for s in self.splits]
        return [(None, self.root, "")]

    def estimate(self) -> int:
        return sum(1 for _, top, _ in self._tops() for _ in walk_images(top))

    def records(self) -> Iterator[ImageRecord]:
        for split, top, prefix in self._tops():
            for rel, full in walk_images(top):
                parent = os.path.dirname(rel)
                label = os.path.basename(parent) if parent else None
                captions = read_sidecar(full, self.stats)
                if not captions:
                    self.stats.uncaptioned_images += 1
                yield ImageRecord(
                    path=stored_path(prefix + rel),
                    file=full,
                    split=split,
                    label=stored_path(label) if label else None,
                    captions=captions,
                )
