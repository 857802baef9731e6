"""The ingest pipeline: source records -> plan against stored rows (per chunk, ingest/plan.py) -> decode in
worker processes -> encode in batches -> binary COPY + upsert, one commit per batch; large loads run with
their indexes deferred under the bulk-load lease (ingest/bulk.py). This module wires them together.

    report = ingest(settings, "coco/", split=["val2017"])

Incremental: a file whose size and mtime match its row is not read; a file whose bytes hash to an
embedding already stored (renamed, copied, touched) reuses it without encoding; rows of the scanned
dataset/splits whose file is gone are marked 'missing'. Crash-safe: each batch commits on its own, so
an interrupted run loses at most one batch and the next run resumes (it finds the committed rows).
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import psycopg

from vstore.config import Settings
from vstore.db.connect import database_errors
from vstore.encode.encoder import Encoder, ModelSpec
from vstore.ingest.bulk import deferred_indexes, heal_deferred, wants_bulk_load
from vstore.ingest.plan import PLAN_CHUNK, PlannedImage, chunks, plan_chunk
from vstore.ingest.report import IngestProgress, IngestReport
from vstore.ingest.sources import open_source
from vstore.ingest.sources.records import CaptionRecord
from vstore.ingest.workers import DecodePool
from vstore.ingest.writer import CaptionRow, ImageRow, Writer

__all__ = ["IngestProgress", "IngestReport", "ingest", "prepare_model"]


def prepare_model(settings: Settings) -> ModelSpec:
    """The database's model; on an empty database, create the schema for the settings' model first."""
    from vstore.db.migrations import init, resolve_model, schema_state

    if schema_state(settings).model is None:
        return init(settings)
    return resolve_model(settings)


def default_workers() -> int:
    return max(1, (os.cpu_count() or 2) // 2)


class _Pipeline:
    def __init__(
        self,
        settings: Settings,
        encoder: Encoder,
        writer: Writer,
        dataset_id: int,
        report: IngestReport,
        progress: Callable[[IngestProgress], None] | None,
        total: int,
    ) -> None:
        self.settings, self.encoder, self.writer, self.dataset_id = settings, encoder, writer, dataset_id
        self.report, self.progress, self.total = report, progress, total
        self.batch_size = settings.batch_size
        self.images: list[ImageRow] = []
        # decoded rows (with pixels, and whether the path had a row) whose content may already be stored
        self.to_check: list[tuple[ImageRow, Any, bool]] = []
        self.to_adopt: list[ImageRow] = []  # decoded rows keeping their imported vector (PlannedImage.adopt)
        self.captions: list[tuple[str, CaptionRecord]] = []
        self.done = 0
        self.batches = 0  # batches committed

    # -- accepting items -------------------------------------------------------------------------------
    def accept(self, item: PlannedImage) -> None:
        record, report = item.record, self.report
        report.scanned += 1
        self.done += 1
        self.captions.extend((record.path, c) for c in item.captions)
        row = ImageRow(split=record.split, path=record.path, source_id=record.source_id, label=record.label)
        if not item.decode:
            report.unchanged += 1
            if item.touch:
                row.touch = True
                self.images.append(row)
        else:
            result = item.result
            assert result is not None
            row.content_hash, row.size, row.mtime = result.content_hash, result.size, result.mtime
            row.taken_at = result.taken_at  # the EXIF date; the writer falls back to mtime
            if result.error is not None:
                row.status, row.error = "failed", result.error
                report.failed.append((record.path, result.error))
                self.images.append(row)
            elif result.pixels is None:  # same bytes as stored: keep the embedding
                report.unchanged += 1
                row.touch = True
                self.images.append(row)
            else:
                row.width, row.height = result.width, result.height
                if item.adopt:
                    self.to_adopt.append(row)
                else:
                    self.to_check.append((row, result.pixels, item.stored is not None))
        if (
            len(self.to_check) + len(self.to_adopt) >= self.batch_size
            or len(self.captions) >= 8 * self.batch_size
            or (len(self.images) >= 4096)
        ):
            self.flush()
        elif self.progress and self.done % 256 == 0:
            self.tell()

    # -- one batch: reuse by hash, encode, write, commit ---------------------------------------------------
    def flush(self) -> None:
        report = self.report
        started = time.perf_counter()
        hashes = sorted({row.content_hash for row, _, _ in self.to_check if row.content_hash})
        stored = self.writer.embeddings_by_hash(hashes)
        imported = self.writer.embeddings_by_path(self.dataset_id, [row.path for row in self.to_adopt])
        for row in self.to_adopt:
            row.embedding = imported.get(row.path)
            report.imported_adopted += 1
            self.images.append(row)
        report.write_s += time.perf_counter() - started
        encode_rows, encode_pixels = [], []
        for row, pixels, existed in self.to_check:
            reuse = stored.get(row.content_hash or "")
            if reuse is not None:
                row.embedding = reuse[0]
                report.renamed += 1
            else:
                encode_rows.append(row)
                encode_pixels.append(pixels)
                if existed:
                    report.updated += 1
                else:
                    report.added += 1
            self.images.append(row)
        started = time.perf_counter()
        loading_before = getattr(self.encoder, "load_s", 0.0)  # a lazy encoder may load in here
        if encode_rows:
            vectors = self.encoder.encode_images(np.stack(encode_pixels))
            for row, vector in zip(encode_rows, vectors, strict=True):
                row.embedding = vector
            report.images_encoded += len(encode_rows)
        caption_rows = self._encode_captions()
        loading = getattr(self.encoder, "load_s", 0.0) - loading_before
        report.encode_s += time.perf_counter() - started - loading
        started = time.perf_counter()
        self.writer.write_batch(self.dataset_id, self.images, caption_rows)
        report.write_s += time.perf_counter() - started
        report.captions_added += len(caption_rows)
        written = bool(self.images or caption_rows)
        self.images, self.to_check, self.to_adopt, self.captions = [], [], [], []
        self.tell()
        if written:
            self.batches += 1
            self.settings.pause_point("ingest.batch", self.batches)  # test-only: crash tests stop here

    def _encode_captions(self) -> list[CaptionRow]:
        """All captions of the batch in one call: the encoder sorts them by token length, so the more it
        sees at once the less padding its batches carry."""
        if not self.captions:
            return []
        texts = [c.text for _, c in self.captions]
        context = int(getattr(self.encoder, "context_length", 77))
        for text in texts:
            # A token is at least one character, so only long texts can overflow the context.
            if len(text) > context - 2 and self.encoder.count_tokens(text) > context:
                self.report.captions_truncated += 1
        vectors = self.encoder.encode_texts(texts)
        pairs = zip(self.captions, vectors, strict=True)
        return [CaptionRow(path, c.source_id, c.text, v) for (path, c), v in pairs]

    def tell(self) -> None:
        if self.progress:
            self.progress(
                IngestProgress(self.done, self.total, self.report.images_encoded, self.report.captions_added)
            )


@database_errors
def ingest(
    settings: Settings,
    path: str | Path,
    *,
    format: str | None = None,
    dataset: str | None = None,
    split: Sequence[str] | None = None,
    rescan: bool = False,
    progress: Callable[[IngestProgress], None] | None = None,
    encoder: Encoder | None = None,
) -> IngestReport:
    """Ingest a COCO folder, image tree or manifest into the database of `settings`; see the module doc.

    The first ingest into an empty database creates the schema for the settings' model (default
    ViT-B-32/openai); later ones use the recorded model and refuse another (ModelMismatch). A malformed
    annotation file or manifest raises SourceError before anything is written; bad image files are
    recorded as 'failed' rows and listed in the report."""
    from vstore.db.connect import connection
    from vstore.db.migrations import check_same_model
    from vstore.encode.encoder import LazyEncoder

    started = time.perf_counter()
    source = open_source(Path(path), format, list(split) if split else None)
    total = source.estimate()  # also validates annotation files before anything is written
    spec = prepare_model(settings)
    lazy: LazyEncoder | None = None
    if encoder is None:  # loaded by the first image or caption that needs encoding, if any
        encoder = lazy = LazyEncoder(spec, device=settings.device, threads=settings.threads)
    else:
        check_same_model(spec, encoder.spec)
    report = IngestReport(
        dataset=dataset or source.name,
        format=source.format,
        root=str(Path(source.root).resolve()),
        splits=list(source.splits) if source.splits else None,
        model=spec.label,
        random_weights=spec.random_weights,
        device="" if lazy is not None else encoder.device,
    )
    workers = default_workers() if settings.workers is None else settings.workers
    with connection(settings, autocommit=True) as conn:
        heal_deferred(conn, report)
        writer = Writer(conn)
        opened = writer.open_dataset(
            dataset or source.name,
            report.root,
            source.format,
            source=str(Path(source.location).resolve()),
            explicit=dataset is not None,
        )
        dataset_id, report.dataset = opened.id, opened.name
        bulk = wants_bulk_load(settings, total - writer.count_images(dataset_id), writer.count_images())
        failed = True
        try:
            with deferred_indexes(settings, conn, report, active=bulk):
                pipeline = _Pipeline(settings, encoder, writer, dataset_id, report, progress, total)
                report.setup_s = time.perf_counter() - started - report.index_s
                pipeline.tell()  # the progress bar starts now, not at the first commit
                decoder = DecodePool(encoder.image_transform, workers, settings.batch_size)
                try:
                    planned = (
                        item
                        for chunk in chunks(source.records(), PLAN_CHUNK)
                        for item in plan_chunk(writer, dataset_id, chunk, rescan, report)
                    )
                    for item, waited in decoder.run(planned):
                        report.decode_wait_s += waited
                        if item.result is not None:
                            report.decode_s += item.result.seconds
                        pipeline.accept(item)
                    pipeline.flush()
                finally:
                    decoder.close()
                report.missing = writer.mark_missing(
                    dataset_id, source.splits if source.format != "manifest" else None
                )
            failed = False
        finally:
            if failed and opened.created:
                _drop_if_empty(conn, dataset_id)
    stats = source.stats
    report.captions_empty = stats.captions_empty
    report.captions_invalid = stats.captions_invalid
    report.captions_duplicate = stats.captions_duplicate
    report.captions_unknown_image = stats.captions_unknown_image
    report.uncaptioned_images = stats.uncaptioned_images
    report.annotations_missing_file = stats.annotations_missing_file
    report.missing_files = list(stats.missing_files)
    if lazy is not None:
        report.model_loaded = lazy.loaded
        report.model_load_s = lazy.load_s
        report.device = lazy.device if lazy.loaded else ""
    report.wall_s = time.perf_counter() - started
    return report


def _drop_if_empty(conn: psycopg.Connection, dataset_id: int) -> None:
    """A dataset row this ingest created is removed again when the ingest failed before writing a row."""
    from vstore.db.datasets import drop_if_empty

    if conn.closed:
        return
    try:
        drop_if_empty(conn, dataset_id)
    except psycopg.Error:
        pass  # the original error matters more; an empty dataset row is harmless
