"""PostgreSQL's binary COPY framing for rows of fixed width, built and parsed with numpy views instead of a
Python loop per row: export reads (id, vector) rows out this way, import writes (ord, vector[, vector])
rows in. PostgreSQL docs, "COPY ... Binary Format": an 11-byte signature, int32 flags, int32 header
extension length; each tuple is int16 field count, then per field an int32 length and the bytes; the
trailer is int16 -1. pgvector's binary vector is int16 dim, int16 unused, then dim big-endian float4;
halfvec the same with big-endian float2 (vector_send / halfvec_send)."""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np
import psycopg
from psycopg import sql as pgsql

from vstore.errors import ConfigError, VstoreError

HEADER = b"PGCOPY\n\xff\r\n\x00" + b"\x00\x00\x00\x00" + b"\x00\x00\x00\x00"
HEADER_LEN = len(HEADER)  # 19
TRAILER = b"\xff\xff"
_ELEMENT = {"vector": ">f4", "halfvec": ">f2"}


def element_type(storage: str) -> str:
    if storage not in _ELEMENT:
        raise ConfigError(f"unknown storage {storage!r}; choose vector or halfvec.")
    return _ELEMENT[storage]


def _vector_fields(name: str, dim: int, storage: str) -> list[tuple]:
    return [
        (f"{name}_len", ">i4"),
        (f"{name}_dim", ">i2"),
        (f"{name}_unused", ">i2"),
        (name, element_type(storage), (dim,)),
    ]


def id_vector_dtype(dim: int, storage: str = "vector") -> np.dtype:
    """One tuple of (int8 id, vector(dim))."""
    return np.dtype(
        [("nfields", ">i2"), ("id_len", ">i4"), ("id", ">i8"), *_vector_fields("vec", dim, storage)]
    )


def ord_vectors_dtype(dim: int, names: tuple[str, ...], storage: str) -> np.dtype:
    """One tuple of (int4 ord, one vector(dim) per name)."""
    fields: list[tuple] = [("nfields", ">i2"), ("ord_len", ">i4"), ("ord", ">i4")]
    for name in names:
        fields += _vector_fields(name, dim, storage)
    return np.dtype(fields)


def encode_ord_vectors(ords: np.ndarray, vectors: dict[str, np.ndarray], storage: str) -> bytes:
    """The tuples (no header or trailer) of (ord, vectors...) rows, ready for COPY ... FROM STDIN BINARY.
    Every vector array is float32 [n, dim] with the same n and dim."""
    names = tuple(vectors)
    n, dim = next(iter(vectors.values())).shape
    dtype = ord_vectors_dtype(dim, names, storage)
    rows = np.empty(n, dtype=dtype)
    rows["nfields"] = 1 + len(names)
    rows["ord_len"] = 4
    rows["ord"] = ords
    width = np.dtype(element_type(storage)).itemsize
    for name, values in vectors.items():
        rows[f"{name}_len"] = 4 + dim * width
        rows[f"{name}_dim"] = dim
        rows[f"{name}_unused"] = 0
        rows[name] = values
    return rows.tobytes()


def copy_vector_chunks(
    conn: psycopg.Connection, query: str, dim: int, chunk_rows: int, what: str
) -> Iterator[tuple[np.ndarray, np.ndarray]]:
    """iter_vector_chunks for any query of (id int8, embedding vector) rows with no NULLs."""
    if chunk_rows < 1:
        raise ConfigError("the chunk size must be at least 1 row.")
    dtype = id_vector_dtype(dim)
    chunk_bytes = dtype.itemsize * chunk_rows
    buffer = bytearray()
    header_seen = False
    copy_sql = pgsql.SQL("COPY ({}) TO STDOUT (FORMAT BINARY)").format(pgsql.SQL(query))
    with conn.cursor() as cur, cur.copy(copy_sql) as copy:
        for block in copy:
            buffer += block
            if not header_seen:
                if len(buffer) < HEADER_LEN:
                    continue
                del buffer[:HEADER_LEN]
                header_seen = True
            while len(buffer) >= chunk_bytes:
                yield _parse(buffer[:chunk_bytes], dtype, dim)
                del buffer[:chunk_bytes]
    if buffer.endswith(TRAILER):
        del buffer[-2:]
    if len(buffer) % dtype.itemsize:
        raise VstoreError(
            f"unexpected binary COPY layout from {what} (a vector of another dimension than {dim}?). "
            "Check `vstore db status`; the database model and its vectors must agree."
        )
    if buffer:
        yield _parse(bytes(buffer), dtype, dim)


def _parse(raw: bytes | bytearray, dtype: np.dtype, dim: int) -> tuple[np.ndarray, np.ndarray]:
    rows = np.frombuffer(bytes(raw), dtype=dtype)
    if rows.size and (
        rows["nfields"][0] != 2 or int(rows["vec_dim"].min()) != dim or int(rows["vec_dim"].max()) != dim
    ):
        raise VstoreError(f"binary COPY rows do not hold {dim}-d vectors; the database model record is off.")
    return rows["id"].astype(np.int64), rows["vec"].astype(np.float32)
