"""The base of every search method: the Corpus searched, the BuildOptions shared across engines, and
SearchMethod. Engines live in their own modules (exact, faiss_methods, pg_methods) and are looked up by
name in methods.py; this module imports none of them.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from vstore.config import Settings

EF_SWEEP = (10, 20, 40, 80, 160, 320)
PROBE_SWEEP = (1, 2, 4, 8, 16, 32)
RERANK_SWEEP = (10, 20, 40, 80, 160, 320, 640)  # pgvector-bq: Hamming candidates re-ranked exactly


@dataclass
class Corpus:
    """The searched table as it is in the database: ids (int64) and L2-normalised float32 vectors."""

    table: str
    ids: np.ndarray
    vectors: np.ndarray
    dim: int
    model: str = ""

    def __len__(self) -> int:
        return len(self.ids)

    def rows_of(self, ids: np.ndarray) -> np.ndarray:
        """Row positions of database ids (sorted: the export streams them in id order); -1 if absent."""
        ids = np.asarray(ids, dtype=np.int64)
        pos = np.searchsorted(self.ids, ids).clip(0, max(len(self.ids) - 1, 0))
        found = (len(self.ids) > 0) & (self.ids[pos] == ids) if len(self.ids) else np.zeros(ids.shape, bool)
        return np.where(found, pos, -1)


def load_corpus(settings: Settings, table: str = "images") -> Corpus:
    """Every searchable vector of `table` (images with status 'ok'), streamed with binary COPY."""
    from vstore.compare.export import read_vectors
    from vstore.db.migrations import require_model

    ids, vectors, dim = read_vectors(settings, table)
    order = np.argsort(ids, kind="stable")
    return Corpus(
        table=table, ids=ids[order], vectors=vectors[order], dim=dim, model=require_model(settings).label
    )


@dataclass
class BuildOptions:
    """Index parameters shared across engines, so Faiss and pgvector build the same structures.
    None means: the default for this corpus (`resolved`)."""

    m: int | None = None  # HNSW M (None: the existing pgvector index's M, else 16)
    ef_construction: int | None = None  # HNSW efConstruction (None: the pgvector index's, else 64)
    nlist: int | None = None  # IVF lists for both pgvector IVFFlat and Faiss IVF / IVF-PQ
    pq_m: int | None = None  # IVF-PQ sub-quantizers (must divide dim)
    threads: int = 1  # Faiss/numpy threads for search: pgvector answers a query on one backend process
    build_threads: int = 2  # Faiss threads and pgvector processes (leader + workers) for index builds
    keep_ivfflat: bool = False  # keep a pgvector IVFFlat index built on the fly
    rebuild_hnsw: bool = False  # rebuild the pgvector HNSW index to time its build (else build_s is None)
    ef_sweep: Sequence[int] = EF_SWEEP
    probe_sweep: Sequence[int] = PROBE_SWEEP
    metric: str = "cosine"  # cosine, ip or l2: pgvector's operator (and index opclass), Faiss's metric
    n_trees: int | None = None  # Annoy trees (None: 10)
    rerank_sweep: Sequence[int] = RERANK_SWEEP


def default_pq(dim: int, rows: int) -> tuple[int, int]:
    """(sub-quantizers, bits): dim/8 sub-quantizers of 8 bits (fewer bits when there are too few rows to
    train 256 centroids per sub-quantizer)."""
    pq_m = next(m for m in (dim // 8, dim // 4, dim // 2, dim, 1) if m >= 1 and dim % m == 0)
    bits = int(max(1, min(8, math.floor(math.log2(max(rows // 39, 2))))))
    return pq_m, bits


@dataclass
class SearchMethod:
    """Base: subclasses implement _search_one (and may override search_batch / configure)."""

    name: str = ""
    params: dict[str, Any] = field(default_factory=dict)  # the current setting, e.g. {"ef_search": 40}
    build_s: float | None = None  # None: the structure already existed (not built by this run)
    size_bytes: int = 0
    exact: bool = False
    sweep: list[dict[str, Any]] = field(default_factory=lambda: [{}])
    build_params: dict[str, Any] = field(default_factory=dict)

    def configure(self, **params: Any) -> None:
        self.params = dict(params)

    def search(self, query: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
        """Top-k of one query: (ids int64[<=k], cosine distances float32[<=k]), nearest first."""
        raise NotImplementedError

    def search_batch(self, queries: np.ndarray, k: int) -> np.ndarray:
        """ids int64[n, k], padded with -1 where fewer than k rows came back."""
        out = np.full((len(queries), k), -1, dtype=np.int64)
        for i, query in enumerate(queries):
            ids, _ = self.search(query, k)
            out[i, : len(ids)] = ids
        return out

    def server_ms(self, queries: np.ndarray, k: int) -> list[float] | None:
        """Server-side execution times (ms) of these queries, for methods that have a server."""
        return None

    def close(self) -> None:
        return None

    @property
    def label(self) -> str:
        settings = ",".join(f"{k}={v}" for k, v in self.params.items())
        return f"{self.name}({settings})" if settings else self.name


def top_k(scores: np.ndarray, k: int) -> np.ndarray:
    """Indices of the k largest scores per row, largest first."""
    k = min(k, scores.shape[-1])
    part = np.argpartition(-scores, k - 1, axis=-1)[..., :k]
    order = np.argsort(-np.take_along_axis(scores, part, axis=-1), axis=-1, kind="stable")
    return np.take_along_axis(part, order, axis=-1)


def pad_ids(ids: np.ndarray, k: int) -> np.ndarray:
    """ids int64[n, <=k] padded with -1 to k columns."""
    if ids.shape[1] >= k:
        return ids
    return np.hstack([ids, np.full((ids.shape[0], k - ids.shape[1]), -1, dtype=np.int64)])
