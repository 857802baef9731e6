"""Faiss engines (Flat, IVF, HNSW, IVF-PQ) with inner product on the normalised vectors, and the index
builder the side index shares."""

from __future__ import annotations

import time
from typing import Any

import numpy as np

from vstore.compare.base import BuildOptions, Corpus, SearchMethod, default_pq
from vstore.db.indexes import default_nlist
from vstore.errors import ConfigError


class FaissMethod(SearchMethod):
    """A Faiss index (inner product on normalised vectors) plus the id map row -> database id."""

    def __init__(
        self,
        name: str,
        index: Any,
        ids: np.ndarray,
        *,
        build_s: float | None,
        exact: bool = False,
        threads: int = 1,
        build_params: dict[str, Any] | None = None,
        metric: str = "cosine",
    ) -> None:
        import faiss

        super().__init__(name=name, exact=exact, build_s=build_s, build_params=build_params or {})
        self.index = index
        self.ids = np.asarray(ids, dtype=np.int64)
        self.size_bytes = int(faiss.serialize_index(index).nbytes)
        self.threads = threads
        self.l2 = metric == "l2"  # scores are squared L2 distances, not inner products

    def configure(self, **params: Any) -> None:
        import faiss

        super().configure(**params)
        faiss.omp_set_num_threads(self.threads)
        if "nprobe" in params:
            faiss.extract_index_ivf(self.index).nprobe = int(params["nprobe"])
        if "ef_search" in params:
            self.index.hnsw.efSearch = int(params["ef_search"])

    def _map(self, rows: np.ndarray) -> np.ndarray:
        return np.where(rows >= 0, self.ids[rows.clip(0)], -1)

    def search(self, query: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
        scores, rows = self.index.search(np.asarray(query, dtype=np.float32).reshape(1, -1), k)
        keep = rows[0] >= 0
        # cosine distance on unit vectors: 1 - inner product, or half the squared L2 distance
        distances = scores[0][keep] / 2.0 if self.l2 else 1.0 - scores[0][keep]
        return self._map(rows[0][keep]), distances.astype(np.float32)

    def search_batch(self, queries: np.ndarray, k: int) -> np.ndarray:
        _, rows = self.index.search(np.ascontiguousarray(queries, dtype=np.float32), k)
        return self._map(rows)


def build_faiss(
    kind: str,
    vectors: np.ndarray,
    *,
    m: int = 16,
    ef_construction: int = 64,
    nlist: int | None = None,
    pq_m: int | None = None,
    pq_bits: int | None = None,
    threads: int = 2,
    metric: str = "cosine",
) -> tuple[Any, dict[str, Any], float]:
    """Build a Faiss index of `kind` (flat, ivf, hnsw, ivfpq) over normalised vectors. `metric` cosine or
    ip: inner product (cosine on unit vectors, as the research built it); l2: Euclidean distance.
    Returns (index, the parameters used, build seconds)."""
    import faiss

    vectors = np.ascontiguousarray(vectors, dtype=np.float32)
    rows, dim = vectors.shape
    faiss.omp_set_num_threads(threads)
    if metric not in ("cosine", "ip", "l2"):
        raise ConfigError(f"unknown --metric {metric!r}; choose cosine, ip or l2.")
    ip = faiss.METRIC_L2 if metric == "l2" else faiss.METRIC_INNER_PRODUCT
    flat = faiss.IndexFlatL2 if metric == "l2" else faiss.IndexFlatIP
    started = time.perf_counter()
    index: Any
    if kind == "flat":
        index, params = flat(dim), {}
    elif kind == "hnsw":
        if m < 2 or ef_construction < 1:
            raise ConfigError("HNSW needs --m >= 2 and --ef-construction >= 1.")
        index = faiss.IndexHNSWFlat(dim, m, ip)
        index.hnsw.efConstruction = ef_construction
        params = {"m": m, "ef_construction": ef_construction}
    elif kind in ("ivf", "ivfpq"):
        nlist = nlist or default_nlist(rows)
        if rows < nlist:
            raise ConfigError(
                f"IVF with {nlist} lists needs at least {nlist} rows to train; pass a smaller --nlist."
            )
        quantizer = flat(dim)
        if kind == "ivf":
            index, params = faiss.IndexIVFFlat(quantizer, dim, nlist, ip), {"nlist": nlist}
        else:
            default_m, default_bits = default_pq(dim, rows)
            pq_m, pq_bits = pq_m or default_m, pq_bits or default_bits
            if dim % pq_m:
                raise ConfigError(f"--pq-m {pq_m} must divide the dimension {dim}.")
            index = faiss.IndexIVFPQ(quantizer, dim, nlist, pq_m, pq_bits, ip)
            params = {"nlist": nlist, "pq_m": pq_m, "pq_bits": pq_bits}
        index.cp.seed = 1234  # deterministic k-means: the same index for the same data
        # Faiss prints "WARNING clustering N points to K centroids" to stderr, once per build, for
        # fewer than 39 rows a list (every small test or sample); the list count is in the params.
        index.cp.min_points_per_centroid = 1
        if kind == "ivfpq":
            index.pq.cp.min_points_per_centroid = 1
        index.train(vectors)
    else:
        raise ConfigError(f"unknown Faiss index type {kind!r}; choose flat, ivf, hnsw or ivfpq.")
    index.add(vectors)
    return index, params, time.perf_counter() - started


def faiss_method(kind: str, corpus: Corpus, options: BuildOptions, hnsw: tuple[int, int]) -> FaissMethod:
    m = options.m or hnsw[0]
    ef_construction = options.ef_construction or hnsw[1]
    index, params, seconds = build_faiss(
        kind,
        corpus.vectors,
        m=m,
        ef_construction=ef_construction,
        nlist=options.nlist,
        pq_m=options.pq_m,
        threads=options.build_threads,
        metric=options.metric,
    )
    method = FaissMethod(
        f"faiss-{kind}",
        index,
        corpus.ids,
        build_s=seconds,
        exact=kind == "flat",
        threads=options.threads,
        build_params=params,
        metric=options.metric,
    )
    if kind == "hnsw":
        method.sweep = [{"ef_search": e} for e in options.ef_sweep]
    elif kind in ("ivf", "ivfpq"):
        nlist = params["nlist"]
        method.sweep = [{"nprobe": p} for p in options.probe_sweep if p <= nlist] or [{"nprobe": nlist}]
    return method
