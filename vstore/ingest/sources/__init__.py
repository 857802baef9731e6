"""Dataset readers: COCO captions layout, image folders, CSV/JSONL manifests. Each yields ImageRecords and
never touches the database. `open_source` picks one by --format or by looking at the path."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from vstore.errors import ConfigError, SourceError
from vstore.ingest.sources.coco import CocoSource, looks_like_coco
from vstore.ingest.sources.folder import FolderSource
from vstore.ingest.sources.manifest import MANIFEST_SUFFIXES, ManifestSource
from vstore.ingest.sources.records import CaptionRecord, ImageRecord, Source, SourceStats

FORMATS = ("coco", "folder", "manifest")

__all__ = [
    "FORMATS",
    "CaptionRecord",
    "CocoSource",
    "FolderSource",
    "ImageRecord",
    "ManifestSource",
    "Source",
    "SourceStats",
    "detect_format",
    "open_source",
]


def detect_format(path: Path) -> str:
    if path.is_file():
        if path.suffix.lower() in MANIFEST_SUFFIXES:
            return "manifest"
        raise SourceError(
            f"{path} is a file but not a manifest ({', '.join(MANIFEST_SUFFIXES)}); point vstore ingest at a "
            "folder or a manifest."
        )
    if not path.is_dir():
        raise SourceError(f"{path} does not exist.")
    return "coco" if looks_like_coco(path) else "folder"


def open_source(path: Path, format: str | None = None, splits: Sequence[str] | None = None) -> Source:
    path = Path(path).expanduser()
    if not path.exists():
        raise SourceError(f"{path} does not exist.")
    chosen = format or detect_format(path)
    if chosen == "coco":
        return CocoSource(path, splits)
    if chosen == "folder":
        return FolderSource(path, splits)
    if chosen == "manifest":
        return ManifestSource(path, splits)
    raise ConfigError(f"unknown --format {chosen!r}; choose one of {', '.join(FORMATS)}.")
