"""`vstore export --format clip-retrieval`: the layout clip-retrieval's inference writes and its index and
back end read (`img_emb/img_emb_N.npy`, `text_emb/text_emb_N.npy`, `metadata/metadata_N.parquet`, row i of
each describing one image), so those tools (and `vstore import clip-retrieval`) can use vstore's vectors.

One row per stored image: its vector, its first caption (by id) and that caption's vector; an image with no
caption has a null caption and a zero text vector. Image vectors, text vectors and metadata stream over
three connections that share one snapshot (db.connect.same_snapshot), so memory stays flat and the three
files of a shard always describe the same rows."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import psycopg

from vstore.config import Settings
from vstore.db import sql
from vstore.db.binary_copy import copy_vector_chunks
from vstore.db.connect import same_snapshot
from vstore.encode.paths import filesystem_path
from vstore.errors import ConfigError, VstoreError

SHARD_ROWS = 100_000  # rows per shard file; clip-retrieval writes one shard per inference batch
IMAGE_DIR, TEXT_DIR, META_DIR = "img_emb", "text_emb", "metadata"


def _npy_header(rows: int, dim: int) -> bytes:
    import io

    buf = io.BytesIO()
    np.lib.format.write_array_header_1_0(buf, {"descr": "<f4", "fortran_order": False, "shape": (rows, dim)})
    return buf.getvalue()


def _shards(rows: int, shard_rows: int) -> list[int]:
    sizes = [shard_rows] * (rows // shard_rows)
    if rows % shard_rows or not sizes:
        sizes.append(rows % shard_rows)
    return sizes


def _meta_rows(conn: psycopg.Connection, fetch: int) -> Iterator[tuple]:
    with conn.cursor(name="export_clip_retrieval_meta") as cur:
        cur.execute(sql.load("queries/export_clip_retrieval_meta"))
        while batch := cur.fetchmany(fetch):
            yield from batch


def export_clip_retrieval(
    settings: Settings,
    conn: psycopg.Connection,
    out: Path,
    dim: int,
    rows: int,
    chunk_rows: int,
    shard_rows: int = SHARD_ROWS,
) -> list[str]:
    """Write the layout into `out` from the snapshot of `conn` (a REPEATABLE READ transaction); returns
    the files written, relative to `out`."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    if shard_rows < 1:
        raise ConfigError("--shard-rows must be at least 1.")
    sizes = _shards(rows, shard_rows)
    digits = len(str(len(sizes) - 1))
    for folder in (IMAGE_DIR, TEXT_DIR, META_DIR):
        (out / folder).mkdir(exist_ok=True)
    files: list[str] = []
    with contextlib.ExitStack() as stack:
        text_conn = stack.enter_context(same_snapshot(settings, conn))
        meta_conn = stack.enter_context(same_snapshot(settings, conn))
        images = copy_vector_chunks(
            conn, sql.load("queries/export_images_vectors"), dim, chunk_rows, "images"
        )
        texts = copy_vector_chunks(
            text_conn, sql.load("queries/export_clip_retrieval_text_vectors"), dim, chunk_rows, "captions"
        )
        meta = _meta_rows(meta_conn, chunk_rows)
        pending: list[tuple[np.ndarray, np.ndarray, np.ndarray]] = []  # (ids, image, text) not yet written
        for number, size in enumerate(sizes):
            name = f"{number:0{digits}d}"
            img_path = out / IMAGE_DIR / f"img_emb_{name}.npy"
            txt_path = out / TEXT_DIR / f"text_emb_{name}.npy"
            with img_path.open("wb") as img_file, txt_path.open("wb") as txt_file:
                img_file.write(_npy_header(size, dim))
                txt_file.write(_npy_header(size, dim))
                ids_written: list[np.ndarray] = []
                left = size
                while left:
                    if not pending:
                        (ids, image), (text_ids, text) = next(images), next(texts)
                        if not np.array_equal(ids, text_ids):
                            raise VstoreError("images changed during the export; re-run it.")
                        pending.append((ids, image, text))
                    ids, image, text = pending.pop()
                    take = min(left, len(ids))
                    img_file.write(image[:take].astype("<f4", copy=False).tobytes())
                    txt_file.write(text[:take].astype("<f4", copy=False).tobytes())
                    ids_written.append(ids[:take])
                    if take < len(ids):
                        pending.append((ids[take:], image[take:], text[take:]))
                    left -= take
            shard_ids = np.concatenate(ids_written) if ids_written else np.empty(0, np.int64)
            records = [next(meta) for _ in range(size)]
            if [r[0] for r in records] != shard_ids.tolist():
                raise VstoreError("image metadata changed during the export; re-run it.")
            table = pa.table(
                {
                    "image_path": [filesystem_path(r[1], r[2]) for r in records],
                    "caption": pa.array([r[3] for r in records], pa.string()),
                    "key": pa.array([r[4] for r in records], pa.string()),
                    "vstore_id": pa.array(shard_ids, pa.int64()),
                    "vstore_dataset": pa.array([r[5] for r in records], pa.string()),
                }
            )
            meta_path = out / META_DIR / f"metadata_{name}.parquet"
            pq.write_table(table, meta_path)
            files += [str(p.relative_to(out)) for p in (img_path, txt_path, meta_path)]
        if next(images, None) is not None or next(texts, None) is not None:  # also ends both COPYs
            raise VstoreError("images were added during the export; re-run it.")
        text_conn.rollback()
        meta_conn.rollback()
    return files
