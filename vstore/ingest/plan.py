"""What an ingest has to do, per chunk of source records, against the rows already stored: which images
are new, changed (read and hash again), renamed or copied (same bytes: the hash finds the embedding), or
unchanged (size and mtime match: not read at all), and which captions are new, changed or gone."""

from __future__ import annotations

import os
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from vstore.ingest.report import IngestReport
from vstore.ingest.sources.records import CaptionRecord, ImageRecord
from vstore.ingest.workers import Decoded
from vstore.ingest.writer import StoredImage, Writer

PLAN_CHUNK = 512  # paths looked up per query


@dataclass
class PlannedImage:
    record: ImageRecord
    stored: StoredImage | None
    decode: bool  # read + hash (+ decode unless the hash matches `expected_hash`)
    expected_hash: str | None
    touch: bool  # unchanged content, but status/metadata to refresh
    adopt: bool = False  # an imported vector for a file read here for the first time: keep it, no encode
    captions: list[CaptionRecord] = field(default_factory=list)  # new or changed captions to embed
    result: Decoded | None = None


def _stat(path: Path) -> tuple[int, float] | None:
    try:
        st = os.stat(path)
    except OSError:
        return None
    return st.st_size, st.st_mtime


def plan_chunk(
    writer: Writer, dataset_id: int, records: Sequence[ImageRecord], rescan: bool, report: IngestReport
) -> list[PlannedImage]:
    paths = [r.path for r in records]
    stored = writer.stored_images(dataset_id, paths)
    stored_captions = writer.stored_captions(dataset_id, paths)
    writer.remember_seen(paths)
    items = []
    gone: list[int] = []  # captions the source no longer has for a scanned image
    for record in records:
        row = stored.get(record.path)
        had = {c.source_id: c for c in stored_captions.get(record.path, ())}
        new_captions = [
            c
            for c in record.captions
            if (old := had.get(c.source_id)) is None or old.text != c.text or not old.embedded
        ]
        wanted = {c.source_id for c in record.captions}
        gone.extend(c.id for source_id, c in had.items() if source_id not in wanted)
        # a stored row whose content and vector can stand: a row without a vector (failed, or missing
        # during a reembed, which clears those) is read, hashed and encoded again
        reusable = row is not None and row.status in ("ok", "missing") and row.embedded
        stat = _stat(record.file)
        unchanged = reusable and not rescan and stat is not None and (row.size, row.mtime) == stat  # type: ignore[union-attr]
        metadata_changed = row is not None and (row.split, row.source_id, row.label) != (
            record.split,
            record.source_id,
            record.label,
        )
        items.append(
            PlannedImage(
                record=record,
                stored=row,
                decode=not unchanged,
                expected_hash=row.content_hash if reusable else None,  # type: ignore[union-attr]
                touch=bool(unchanged and (row.status == "missing" or metadata_changed)),  # type: ignore[union-attr]
                adopt=bool(reusable and row.imported_vector),  # type: ignore[union-attr]
                captions=new_captions,
            )
        )
    report.captions_removed += writer.delete_captions(gone)
    return items


def chunks(records: Iterator[ImageRecord], size: int) -> Iterator[list[ImageRecord]]:
    chunk: list[ImageRecord] = []
    for record in records:
        chunk.append(record)
        if len(chunk) >= size:
            yield chunk
            chunk = []
    if chunk:
        yield chunk
