"""Manifests: CSV (with a header row) or JSONL listing image paths and captions (SBU, Flickr, LAION-style
lists). Paths are relative to the manifest's folder (absolute paths work too). Several rows may name the
same image: their captions are merged. Recognised columns/keys:

- path: path, file, file_name, filename, image, image_path, filepath
- caption(s): caption, text, title, or captions (a JSON list in JSONL)
- optional: id (kept as the image's source id), label (several joined by "|": "cat|dog"), split
"""

from __future__ import annotations

import csv
import json
import os
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

from vstore.errors import SourceError
from vstore.ingest.sources.records import (
    ImageRecord,
    SourceStats,
    clean_caption,
    stored_path,
    unique_captions,
)

PATH_KEYS = ("path", "file", "file_name", "filename", "image", "image_path", "filepath")
CAPTION_KEYS = ("caption", "text", "title")
MANIFEST_SUFFIXES = (".csv", ".jsonl", ".ndjson", ".tsv")


def _first(row: dict[str, Any], keys: Sequence[str]) -> Any:
    for key in keys:
        if row.get(key) not in (None, ""):
            return row[key]
    return None


class ManifestSource:
    format = "manifest"

    def __init__(self, manifest: Path, splits: Sequence[str] | None = None) -> None:
        if not manifest.is_file():
            raise SourceError(f"{manifest} is not a file; a manifest is a .csv or .jsonl file.")
        self.manifest = manifest
        self.root = manifest.parent  # stored paths are relative to it
        self.location = manifest  # what identifies the dataset: two manifests in one folder are two
        self.name = manifest.stem
        self.stats = SourceStats()
        self.splits: tuple[str, ...] | None = tuple(splits) if splits else None
        self._rows: dict[str, dict[str, Any]] | None = None

    def _read_rows(self) -> Iterator[tuple[int, dict[str, Any]]]:
        suffix = self.manifest.suffix.lower()
        try:
            # utf-8-sig: Excel saves "CSV UTF-8" with a byte order mark, which would glue itself to the
            # first column's name
            with self.manifest.open(encoding="utf-8-sig", newline="") as handle:
                if suffix in (".jsonl", ".ndjson"):
                    for number, line in enumerate(handle, start=1):
                        if not line.strip():
                            continue
                        try:
                            row = json.loads(line)
                        except json.JSONDecodeError as exc:
                            raise SourceError(
                                f"{self.manifest} line {number} is not valid JSON ({exc.msg}); "
                                "the file may be "
                                "truncated. Fix or remove that line and re-run."
                            ) from exc
                        if not isinstance(row, dict):
                            raise SourceError(
                                f"{self.manifest} line {number}: expected a JSON object per line."
                            )
                        yield number, row
                else:
                    reader = csv.DictReader(handle, delimiter="\t" if suffix == ".tsv" else ",")
                    if not reader.fieldnames or not any(k in reader.fieldnames for k in PATH_KEYS):
                        raise SourceError(
                            f"{self.manifest} has no path column in its header row; name one of: "
                            f"{', '.join(PATH_KEYS)}."
                        )
                    for row in reader:
                        yield reader.line_num, row
        except UnicodeDecodeError as exc:
            raise SourceError(
                f"{self.manifest} is not UTF-8 text ({exc.reason}); re-save it as UTF-8."
            ) from exc
        except csv.Error as exc:
            raise SourceError(f"{self.manifest} is not a valid CSV file: {exc}.") from exc

    def _load(self) -> dict[str, dict[str, Any]]:
        """Every row, grouped by image path (parsed completely before anything is written)."""
        if self._rows is not None:
            return self._rows
        rows: dict[str, dict[str, Any]] = {}
        for number, row in self._read_rows():
            raw_path = _first(row, PATH_KEYS)
            if raw_path is None:
                raise SourceError(
                    f"{self.manifest} row {number} has no path; fill one of {', '.join(PATH_KEYS)}."
                )
            split = row.get("split") or None
            if self.splits and split not in self.splits:
                continue
            path = str(raw_path)
            entry = rows.setdefault(
                path, {"id": row.get("id"), "label": row.get("label"), "split": split, "caps": []}
            )
            texts = row.get("captions")
            if isinstance(texts, list):
                candidates = texts
            else:
                caption = _first(row, CAPTION_KEYS)
                candidates = [] if caption is None else [caption]
            for text in candidates:
                cleaned = clean_caption(text, self.stats)
                if cleaned is not None:
                    entry["caps"].append(cleaned)
        self._rows = rows
        return rows

    def estimate(self) -> int:
        return len(self._load())

    def records(self) -> Iterator[ImageRecord]:
        for path, entry in self._load().items():
            file = Path(path) if os.path.isabs(path) else self.root / path
            if not os.path.lexists(file):
                self.stats.file_missing(path)
                continue
            stored = path if os.path.isabs(path) else os.path.normpath(path)
            captions = unique_captions(entry["caps"], self.stats)
            if not captions:
                self.stats.uncaptioned_images += 1
            yield ImageRecord(
                path=stored_path(stored),
                file=file,
                split=entry["split"],
                source_id=None if entry["id"] in (None, "") else str(entry["id"]),
                label=entry["label"] or None,
                captions=captions,
            )
