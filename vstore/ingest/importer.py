"""`vstore import clip-retrieval DIR`: load embeddings computed elsewhere (clip-retrieval on Spark or Slurm,
or any tool writing its layout) without re-encoding.

Every shard is checked before the first row is written (ingest/sources/clip_retrieval.py), so bad input
leaves nothing behind. Rows then go in chunk by chunk, one transaction each: the vectors as binary COPY
built with numpy (no Python loop per vector), the metadata as COPY rows, both into temp stages, then one
INSERT ... ON CONFLICT DO NOTHING per table. A killed import keeps its committed chunks; the re-run adds only
what is missing. Rows are marked origin = 'imported'. A large import defers the vector indexes like a bulk
ingest and rebuilds them in a `finally` (or the next command does, after a crash)."""

from __future__ import annotations

import os
import posixpath
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import psycopg
from psycopg import sql as pgsql

from vstore.config import Settings
from vstore.db import binary_copy
from vstore.db.sql import load
from vstore.encode.paths import stored_path
from vstore.errors import SourceError
from vstore.ingest.sources.clip_retrieval import FORMAT, ClipRetrievalLayout, ImportChunk
from vstore.ingest.sources.records import text_caption_id

# progress(rows done, rows total)
ImportProgress = Callable[[int, int], None]


@dataclass
class ImportReport:
    dataset: str
    root: str
    model: str
    shards: int
    rows: int  # rows in the layout
    images_added: int = 0  # new image rows (a re-run counts only what was missing)
    captions_added: int = 0
    images_normalised: int = 0  # vectors that were not unit length: normalised, as every vstore vector is
    captions_normalised: int = 0
    has_text: bool = False
    indexes_rebuilt: list[str] = field(default_factory=list)  # deferred for the load, then rebuilt
    index_s: float = 0.0
    seconds: float = 0.0

    @property
    def rows_per_second(self) -> float:
        return self.rows / self.seconds if self.seconds else 0.0


def stored_import_path(image_path: str, root: Path | None, where: str) -> str:
    """image_path as stored: relative to `root` when one is given (an absolute path must lie inside it),
    else as given, '/'-separated. `where` names the shard and row for the error."""
    path = image_path.replace("\\", "/") if os.sep == "\\" else image_path
    if root is not None:
        if posixpath.isabs(path):
            relative = os.path.relpath(path, root)
            if relative == ".." or relative.startswith("../"):
                raise SourceError(f"{where}: image_path {image_path!r} is outside --root {root}.")
            path = relative
        else:
            path = posixpath.normpath(path)
            if path == ".." or path.startswith("../"):
                raise SourceError(f"{where}: image_path {image_path!r} points above --root {root}.")
    if not path or path == ".":
        raise SourceError(f"{where}: empty image_path.")
    return stored_path(path)


def _stage_rows(chunk: ImportChunk, root: Path | None) -> list[tuple]:
    rows = []
    for i, (path, caption, key) in enumerate(zip(chunk.image_paths, chunk.captions, chunk.keys, strict=True)):
        where = f"shard {chunk.shard} row {chunk.first_row + i}"
        caption_id = text_caption_id(caption) if caption is not None else None
        rows.append((i, stored_import_path(path, root, where), key, caption, caption_id))
    return rows


def _write_chunk(
    conn: psycopg.Connection, dataset_id: int, chunk: ImportChunk, root: Path | None, storage: str
) -> tuple[int, int]:
    """One transaction: both stages, then the two inserts. Returns (images added, captions added)."""
    ords = np.arange(len(chunk.image_paths), dtype=np.int32)
    vectors = {"image_embedding": chunk.image_vectors}
    if chunk.text_vectors is not None:
        vectors["text_embedding"] = chunk.text_vectors
    params = {"dataset_id": dataset_id}
    columns = pgsql.SQL(", ").join(pgsql.Identifier(name) for name in ("ord", *vectors))
    with conn.transaction(), conn.cursor() as cur:
        with cur.copy(
            pgsql.SQL("COPY import_vectors ({}) FROM STDIN (FORMAT BINARY)").format(columns)
        ) as copy:
            copy.write(binary_copy.HEADER)
            copy.write(binary_copy.encode_ord_vectors(ords, vectors, storage))
            copy.write(binary_copy.TRAILER)
        with cur.copy("COPY import_meta (ord, path, source_id, caption, caption_id) FROM STDIN") as copy:
            for row in _stage_rows(chunk, root):
                copy.write_row(row)
        images = cur.execute(load("queries/import_insert_images"), params).rowcount
        captions = cur.execute(load("queries/import_insert_captions"), params).rowcount
    return max(images, 0), max(captions, 0)


def import_clip_retrieval(
    settings: Settings,
    folder: str | Path,
    *,
    model: str | None = None,
    pretrained: str | None = None,
    dataset: str | None = None,
    root: str | Path | None = None,
    storage: str | None = None,
    chunk_rows: int | None = None,
    progress: ImportProgress | None = None,
) -> ImportReport:
    """Import a clip-retrieval output folder; see the module doc. The database's model is `model`/
    `pretrained` (recorded if the database is new, checked if not); the vectors must have its dimension.
    With `root`, image paths are stored relative to it and the dataset is that folder (so a later
    `vstore ingest ROOT` is the same dataset and reuses the imported vectors); without, the dataset is the
    import folder and paths are stored as given."""
    from vstore.db.connect import connection
    from vstore.db.datasets import drop_if_empty, open_dataset
    from vstore.db.indexes import column_type
    from vstore.db.migrations import init
    from vstore.ingest.bulk import deferred_indexes, heal_deferred, wants_bulk_load
    from vstore.ingest.sources.clip_retrieval import CHUNK_ROWS

    started = time.perf_counter()
    layout = ClipRetrievalLayout(Path(folder))
    spec = init(settings, model, pretrained, storage)
    checked = layout.check(spec.dim)  # every shard read once: nothing is written if one is bad
    resolved_root = Path(root).expanduser().resolve() if root is not None else None
    if resolved_root is not None and not resolved_root.is_dir():
        raise SourceError(f"--root {root} is not a folder.")
    source = resolved_root or layout.folder.resolve()
    report = ImportReport(
        dataset="",
        root=str(source),
        model=spec.label,
        shards=checked.shards,
        rows=checked.rows,
        images_normalised=checked.image_not_normalised,
        captions_normalised=checked.text_not_normalised,
        has_text=checked.has_text,
    )
    with connection(settings, autocommit=True) as conn:
        stage_storage = column_type(conn, "images")[0]
        conn.execute(
            pgsql.SQL(load("queries/import_create_vector_stage")).format(
                storage=pgsql.Identifier(stage_storage)
            )
        )
        conn.execute(load("queries/import_create_meta_stage"))
        opened = open_dataset(
            conn,
            name=dataset or source.name,
            root=str(source),
            source=str(source),
            format=FORMAT,
            explicit=dataset is not None,
        )
        report.dataset = opened.name
        heal_deferred(conn, report)
        stored = int(conn.execute("SELECT count(*) FROM public.images").fetchone()[0])  # type: ignore[index]
        failed = True
        try:
            with deferred_indexes(
                settings, conn, report, active=wants_bulk_load(settings, checked.rows, stored)
            ):
                done = 0
                for chunk in layout.chunks(chunk_rows or CHUNK_ROWS):
                    images, captions = _write_chunk(conn, opened.id, chunk, resolved_root, stage_storage)
                    report.images_added += images
                    report.captions_added += captions
                    done += len(chunk.image_paths)
                    if progress:
                        progress(done, checked.rows)
            failed = False
        finally:
            if failed and opened.created and not conn.closed:
                drop_if_empty(conn, opened.id)
    report.seconds = time.perf_counter() - started
    return report
