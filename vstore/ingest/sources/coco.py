"""COCO captions layout: annotations/captions_<split>.json beside <split>/ image folders (2017 and 2014
names alike). COCO image ids and annotation ids become source ids.

Images on disk that no annotation lists (or that have no caption) are ingested without captions and
counted; annotations whose file is missing on disk are counted and skipped; captions pointing at an
image id the file does not list are counted and skipped. A malformed annotation file fails as a whole.
"""

from __future__ import annotations

import json
import os
from collections import defaultdict
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

from vstore.errors import SourceError
from vstore.ingest.sources.records import (
    LABEL_SEPARATOR,
    CaptionRecord,
    ImageRecord,
    SourceStats,
    clean_caption,
    stored_path,
    text_caption_id,
    walk_images,
)

ANNOTATION_PREFIX = "captions_"
INSTANCES_PREFIX = "instances_"  # optional: object categories, which become the images' labels


def find_splits(root: Path) -> list[str]:
    """Splits with an annotations/captions_<split>.json file, e.g. ['train2017', 'val2017']."""
    folder = root / "annotations"
    if not folder.is_dir():
        return []
    return sorted(
        p.name[len(ANNOTATION_PREFIX) : -len(".json")]
        for p in folder.glob(f"{ANNOTATION_PREFIX}*.json")
        if p.is_file()
    )


def looks_like_coco(root: Path) -> bool:
    return bool(find_splits(root))


def load_annotations(path: Path) -> dict[str, Any]:
    """Parse and check one captions file; any problem with the file as a whole is a SourceError."""
    try:
        with path.open("rb") as handle:
            data = json.load(handle)
    except json.JSONDecodeError as exc:
        raise SourceError(
            f"{path} is not valid JSON ({exc.msg} at line {exc.lineno}, column {exc.colno}); the file may be "
            "truncated. Re-download or fix it, or choose other splits with --split."
        ) from exc
    except (OSError, UnicodeDecodeError) as exc:
        raise SourceError(f"cannot read {path}: {exc}. Check the file and its permissions.") from exc
    if not isinstance(data, dict) or not isinstance(data.get("images"), list):
        raise SourceError(
            f"{path} is not a COCO captions file: it needs an 'images' list (and 'annotations'). "
            "Use --format folder to ingest the image folders without it."
        )
    if not isinstance(data.get("annotations", []), list):
        raise SourceError(f"{path}: 'annotations' must be a list of {{image_id, id, caption}} objects.")
    for entry in data["images"]:  # checked here, so estimate() refuses the file before anything is written
        if not isinstance(entry, dict) or "file_name" not in entry or "id" not in entry:
            raise SourceError(f"{path}: an 'images' entry lacks 'id' or 'file_name': {entry!r:.120}")
    return data


class CocoSource:
    format = "coco"

    def __init__(self, root: Path, splits: Sequence[str] | None = None) -> None:
        self.root = root
        self.location = root  # what identifies the dataset
        self.name = root.resolve().name
        self.stats = SourceStats()
        found = find_splits(root)
        if not found:
            raise SourceError(
                f"{root} has no annotations/captions_<split>.json; it is not a COCO captions dataset. "
                "Use --format folder for a plain image tree."
            )
        if splits:
            unknown = [s for s in splits if s not in found]
            if unknown:
                raise SourceError(
                    f"no annotations/captions_{unknown[0]}.json under {root}; "
                    f"splits found: {', '.join(found)}."
                )
            self.splits: tuple[str, ...] | None = tuple(splits)
        else:
            self.splits = tuple(found)

    def _annotation_file(self, split: str) -> Path:
        return self.root / "annotations" / f"{ANNOTATION_PREFIX}{split}.json"

    def estimate(self) -> int:
        """Images on disk in the chosen splits. Also parses every annotation file once, so a malformed one
        fails the ingest before anything is written."""
        total = 0
        for split in self.splits or ():
            load_annotations(self._annotation_file(split))
            folder = self.root / split
            if folder.is_dir():
                total += sum(1 for _ in walk_images(folder))
        return total

    def records(self) -> Iterator[ImageRecord]:
        for split in self.splits or ():
            yield from self._split_records(split)

    def _labels(self, split: str) -> dict[Any, str]:
        """image id -> its object categories ('cat|dog', sorted, see LABEL_SEPARATOR) from
        annotations/instances_<split>.json when that file is present; {} otherwise."""
        path = self.root / "annotations" / f"{INSTANCES_PREFIX}{split}.json"
        if not path.is_file():
            return {}
        data = load_annotations(path)
        names = {
            c.get("id"): str(c.get("name"))
            for c in data.get("categories", [])
            if isinstance(c, dict) and c.get("name")
        }
        found: dict[Any, set[str]] = defaultdict(set)
        for ann in data.get("annotations", []):
            if isinstance(ann, dict) and ann.get("category_id") in names:
                found[ann.get("image_id")].add(names[ann["category_id"]].replace(LABEL_SEPARATOR, " "))
        return {image_id: LABEL_SEPARATOR.join(sorted(cats)) for image_id, cats in found.items()}

    def _split_records(self, split: str) -> Iterator[ImageRecord]:
        data = load_annotations(self._annotation_file(split))
        folder = self.root / split
        files: dict[str, dict[str, Any]] = {}  # file name relative to the split folder -> image entry
        by_id: dict[Any, str] = {}
        for entry in data["images"]:
            name = str(entry["file_name"]).replace("\\", "/")
            files[name] = entry
            by_id[entry["id"]] = name
        captions: dict[str, list[CaptionRecord]] = defaultdict(list)
        for ann in data.get("annotations", []):
            if not isinstance(ann, dict):
                self.stats.captions_unknown_image += 1
                continue
            caption_of = by_id.get(ann.get("image_id"))
            if caption_of is None:
                self.stats.captions_unknown_image += 1
                continue
            text = clean_caption(ann.get("caption"), self.stats)
            if text is None:
                continue
            # An annotation without an id is known by its text, which survives edits of other annotations.
            source_id = str(ann["id"]) if ann.get("id") is not None else text_caption_id(text)
            captions[caption_of].append(CaptionRecord(source_id, text))
        del data, by_id
        labels = self._labels(split)
        on_disk = dict(walk_images(folder)) if folder.is_dir() else {}
        on_disk_posix = {rel.replace(os.sep, "/"): full for rel, full in on_disk.items()}
        for name in files:
            if name not in on_disk_posix:
                self.stats.file_missing(name)
        for rel in sorted(on_disk_posix):
            entry = files.get(rel)
            image_captions = tuple(captions.get(rel, ()))
            if not image_captions:
                self.stats.uncaptioned_images += 1
            yield ImageRecord(
                path=stored_path(f"{split}/{rel}"),
                file=on_disk_posix[rel],
                split=split,
                source_id=str(entry["id"]) if entry is not None else None,
                label=labels.get(entry["id"]) if entry is not None else None,
                captions=image_captions,
            )
