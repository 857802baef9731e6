"""Export image and caption vectors (with ids and metadata) out of the database in constant memory.

Vectors leave PostgreSQL through binary COPY. Every exported row is `(id int8, embedding vector)` with no
NULLs, so each row has the same byte length and a chunk of the COPY stream parses with one numpy
structured-dtype view instead of a Python loop per row. The .npy files are written incrementally: the
header (with the row count, taken in the same REPEATABLE READ snapshot as the COPY) and then each chunk.
Metadata goes out as CSV through COPY as well, straight to the file.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
import psycopg
from psycopg import sql as pgsql

from vstore.compare.identity import DatabaseIdentity, database_identity
from vstore.config import Settings
from vstore.db import sql
from vstore.db.binary_copy import copy_vector_chunks
from vstore.db.connect import connection, same_snapshot
from vstore.errors import ConfigError, VstoreError

EXPORT_TABLES = ("images", "captions")
FORMATS = ("npy", "parquet", "clip-retrieval")
DEFAULT_CHUNK_ROWS = 8192
MANIFEST = "manifest.json"


def vector_query(table: str) -> str:
    if table not in EXPORT_TABLES:
        raise ConfigError(f"cannot export {table!r}; choose one of {', '.join(EXPORT_TABLES)}.")
    return sql.load(f"queries/export_{table}_vectors")


def count_vectors(conn: psycopg.Connection, table: str) -> int:
    query = pgsql.SQL("SELECT count(*) FROM ({}) AS exported").format(pgsql.SQL(vector_query(table)))
    return int(conn.execute(query).fetchall()[0][0])


def iter_vector_chunks(
    conn: psycopg.Connection, table: str, dim: int, chunk_rows: int = DEFAULT_CHUNK_ROWS
) -> Iterator[tuple[np.ndarray, np.ndarray]]:
    """Yield (ids int64[n], vectors float32[n, dim]) chunks of at most `chunk_rows`, in id order, holding
    at most one chunk (plus one partial COPY block) in memory."""
    return copy_vector_chunks(conn, vector_query(table), dim, chunk_rows, table)


def read_vectors(settings: Settings, table: str = "images") -> tuple[np.ndarray, np.ndarray, int]:
    """All (ids, vectors) of `table` in memory, plus the dimension. For the search harnesses."""
    ids, vectors, dim, _ = read_vectors_with_identity(settings, table)
    return ids, vectors, dim


def read_vectors_with_identity(
    settings: Settings, table: str = "images"
) -> tuple[np.ndarray, np.ndarray, int, DatabaseIdentity]:
    """read_vectors, plus the identity of what was read (same snapshot), for a side index's manifest."""
    from vstore.db.migrations import require_model

    dim = require_model(settings).dim
    with connection(settings) as conn:
        conn.execute("BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY")
        identity = database_identity(conn, table)
        n = count_vectors(conn, table)
        ids = np.empty(n, dtype=np.int64)
        vectors = np.empty((n, dim), dtype=np.float32)
        at = 0
        for chunk_ids, chunk_vectors in iter_vector_chunks(conn, table, dim):
            ids[at : at + len(chunk_ids)] = chunk_ids
            vectors[at : at + len(chunk_ids)] = chunk_vectors
            at += len(chunk_ids)
        conn.rollback()
    return ids[:at], vectors[:at], dim, identity


@dataclass
class TableExport:
    table: str
    rows: int
    files: list[str]


@dataclass
class ExportReport:
    out_dir: Path
    format: str
    model: str
    pretrained: str
    dim: int
    tables: list[TableExport] = field(default_factory=list)
    seconds: float = 0.0
    created: str = ""

    @property
    def counts(self) -> dict[str, int]:
        return {t.table: t.rows for t in self.tables}


def _npy_header(rows: int, dim: int | None, dtype: str) -> bytes:
    """An .npy v1.0 header for a C-ordered array of `rows` (x dim) elements, so data can follow in chunks."""
    import io

    shape = (rows, dim) if dim is not None else (rows,)
    buf = io.BytesIO()
    np.lib.format.write_array_header_1_0(buf, {"descr": dtype, "fortran_order": False, "shape": shape})
    return buf.getvalue()


def _export_npy(
    settings: Settings, conn: psycopg.Connection, out: Path, table: str, dim: int, rows: int, chunk_rows: int
) -> list[str]:
    """vectors.npy + ids.npy + meta.csv, all from `conn` (COPY then COPY: one stream at a time)."""
    vec_path, ids_path = out / f"{table}.npy", out / f"{table}_ids.npy"
    written = 0
    with vec_path.open("wb") as vec_file, ids_path.open("wb") as ids_file:
        vec_file.write(_npy_header(rows, dim, "<f4"))
        ids_file.write(_npy_header(rows, None, "<i8"))
        for ids, vectors in iter_vector_chunks(conn, table, dim, chunk_rows):
            vec_file.write(vectors.astype("<f4", copy=False).tobytes())
            ids_file.write(ids.astype("<i8", copy=False).tobytes())
            written += len(ids)
    if written != rows:  # same snapshot, so this would be a bug, not a race
        raise VstoreError(f"exported {written} {table} rows but counted {rows}; re-run the export.")
    meta_path = out / f"{table}_meta.csv"
    with meta_path.open("wb") as meta_file, conn.cursor() as cur:
        meta_sql = pgsql.SQL(sql.load(f"queries/export_{table}_meta"))
        with cur.copy(pgsql.SQL("COPY ({}) TO STDOUT (FORMAT CSV, HEADER)").format(meta_sql)) as copy:
            for block in copy:
                meta_file.write(block)
    return [p.name for p in (vec_path, ids_path, meta_path)]


def _export_parquet(
    settings: Settings, conn: psycopg.Connection, out: Path, table: str, dim: int, rows: int, chunk_rows: int
) -> list[str]:
    try:
        import pyarrow as pa
        import pyarrow.parquet as pq
    except ImportError:
        raise ConfigError(
            "--format parquet needs pyarrow, which is not installed: `pip install pyarrow`, "
            "or export with --format npy."
        ) from None
    path = out / f"{table}.parquet"
    meta_sql = sql.load(f"queries/export_{table}_meta")
    written = 0
    # A named (server-side) cursor streams the metadata in the same id order as the vector COPY, on a
    # second connection in the same snapshot.
    with (
        same_snapshot(settings, conn) as meta_conn,
        meta_conn.cursor(name=f"export_{table}_meta") as meta_cur,
    ):
        meta_cur.execute(meta_sql)
        names = [d.name for d in meta_cur.description or []]
        schema = None
        writer = None
        try:
            for ids, vectors in iter_vector_chunks(conn, table, dim, chunk_rows):
                meta = meta_cur.fetchmany(len(ids))
                if [m[0] for m in meta] != ids.tolist():
                    raise VstoreError(f"{table} rows changed during the export; re-run it.")
                columns = {"id": pa.array(ids)}
                for i, name in enumerate(names[1:], start=1):
                    columns[name] = pa.array([m[i] for m in meta])
                flat = pa.array(vectors.reshape(-1), type=pa.float32())
                columns["embedding"] = pa.FixedSizeListArray.from_arrays(flat, dim)
                batch = pa.table(columns)
                if writer is None:
                    schema = batch.schema
                    writer = pq.ParquetWriter(path, schema)
                writer.write_table(batch)
                written += len(ids)
        finally:
            if writer is not None:
                writer.close()
    if writer is None:
        pq.write_table(pa.table({"id": pa.array([], pa.int64())}), path)
    if written != rows:
        raise VstoreError(f"exported {written} {table} rows but counted {rows}; re-run the export.")
    return [path.name]


def export(
    settings: Settings,
    out_dir: Path,
    *,
    format: str = "npy",
    tables: tuple[str, ...] = EXPORT_TABLES,
    chunk_rows: int = DEFAULT_CHUNK_ROWS,
    progress: Callable[[str, int], None] | None = None,
) -> ExportReport:
    """Write `<table>.npy` (float32 [n, dim]), `<table>_ids.npy` (int64 database ids, same order),
    `<table>_meta.csv` (or one `<table>.parquet` with everything; or clip-retrieval's layout, see
    export_clip_retrieval) and manifest.json into `out_dir`."""
    from vstore.db.migrations import require_model

    if format not in FORMATS:
        raise ConfigError(f"unknown export format {format!r}; choose one of {', '.join(FORMATS)}.")
    for table in tables:
        vector_query(table)
    spec = require_model(settings)
    out_dir = Path(out_dir)
    if out_dir.exists() and not out_dir.is_dir():
        raise ConfigError(f"{out_dir} is a file; give a folder to export into.")
    try:
        out_dir.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise ConfigError(f"cannot create {out_dir}: {exc.strerror or exc}.") from exc
    started = time.perf_counter()
    report = ExportReport(
        out_dir=out_dir, format=format, model=spec.name, pretrained=spec.pretrained, dim=spec.dim
    )
    writer = _export_npy if format == "npy" else _export_parquet
    identities: dict[str, dict] = {}  # per table: which database and state the vectors come from
    with connection(settings) as conn:
        # One snapshot for counts, vectors and metadata: a concurrent ingest cannot tear the export.
        conn.execute("BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY")
        if format == "clip-retrieval":
            tables = ("images",)  # one row per image, its first caption alongside (export_clip_retrieval)
        for table in tables:
            identities[table] = database_identity(conn, table).as_dict()
            rows = count_vectors(conn, table)
            if format == "clip-retrieval":
                from vstore.compare.export_clip_retrieval import export_clip_retrieval

                files = export_clip_retrieval(settings, conn, out_dir, spec.dim, rows, chunk_rows)
            else:
                files = writer(settings, conn, out_dir, table, spec.dim, rows, chunk_rows)
            report.tables.append(TableExport(table=table, rows=rows, files=files))
            if progress:
                progress(table, rows)
        conn.rollback()
    report.seconds = time.perf_counter() - started
    report.created = datetime.now(UTC).isoformat(timespec="seconds")
    manifest = {
        "model": spec.name,
        "pretrained": spec.pretrained,
        "dim": spec.dim,
        "format": format,
        "counts": report.counts,
        "tables": [asdict(t) for t in report.tables],
        "metric": "cosine (vectors are L2-normalised: inner product)",
        "identity": identities,
        "created": report.created,
    }
    (out_dir / MANIFEST).write_text(json.dumps(manifest, indent=2) + "\n")
    return report


def read_manifest(export_dir: Path) -> dict:
    path = Path(export_dir) / MANIFEST
    if not path.is_file():
        raise ConfigError(f"{export_dir} holds no {MANIFEST}; create it with `vstore export {export_dir}`.")
    return json.loads(path.read_text())


def load_export(export_dir: Path, table: str = "images") -> tuple[np.ndarray, np.ndarray, dict]:
    """(ids, vectors, manifest) of one table of an npy export; vectors are memory-mapped, not loaded."""
    manifest = read_manifest(export_dir)
    if manifest.get("format") != "npy":
        raise ConfigError(f"{export_dir} is a {manifest.get('format')} export; build from an npy export.")
    if table not in manifest.get("counts", {}):
        raise ConfigError(f"{export_dir} has no {table} vectors; export them with `--table {table}`.")
    ids = np.load(Path(export_dir) / f"{table}_ids.npy")
    vectors = np.load(Path(export_dir) / f"{table}.npy", mmap_mode="r")
    return ids, vectors, manifest
