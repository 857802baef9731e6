"""Search methods behind one interface, so `vstore compare` and `vstore eval` time and score them alike.

A method is built once over a Corpus (or over the database), then re-configured for each setting of its
sweep (`configure(ef_search=80)`), queried one vector at a time (`search`) or in a batch (`search_batch`),
and closed. Every method returns database ids (int64) and cosine distances (1 - inner product on the
L2-normalised vectors), so results are comparable across pgvector, Faiss, numpy and sklearn.

    corpus = load_corpus(settings, "images")
    for method in iter_methods(corpus, settings, ["pgvector-hnsw", "faiss-hnsw"]):
        try:
            for params in method.sweep:
                method.configure(**params)
                ids, distances = method.search(query, 10)
        finally:
            method.close()

faiss, sklearn and the pgvector connection are opened lazily inside the methods that need them.
"""

from __future__ import annotations

import math
import re
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from vstore.config import Settings
from vstore.errors import ConfigError

EXACT_METHODS = ("exact-numpy", "faiss-flat", "sklearn-brute", "pgvector-exact")
ANN_METHODS = ("pgvector-hnsw", "pgvector-ivfflat", "faiss-ivf", "faiss-hnsw", "faiss-ivfpq")
METHOD_NAMES = (
    "pgvector-exact",
    "pgvector-hnsw",
    "pgvector-ivfflat",
    "faiss-flat",
    "faiss-ivf",
    "faiss-hnsw",
    "faiss-ivfpq",
    "sklearn-brute",
    "exact-numpy",
)
DEFAULT_METHODS = tuple(m for m in METHOD_NAMES if m != "exact-numpy")  # exact-numpy is the ground truth
EF_SWEEP = (10, 20, 40, 80, 160, 320)
PROBE_SWEEP = (1, 2, 4, 8, 16, 32)


# --------------------------------------------------------------------------------------------- corpus
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
    from vstore.export import read_vectors
    from vstore.migrations import require_model

    ids, vectors, dim = read_vectors(settings, table)
    order = np.argsort(ids, kind="stable")
    return Corpus(
        table=table, ids=ids[order], vectors=vectors[order], dim=dim, model=require_model(settings).label
    )


# ------------------------------------------------------------------------------------- build options
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


def default_nlist(rows: int) -> int:
    """pgvector's advice (rows/1000, sqrt(rows) beyond 1M), at least 4, and at most rows/39 (Faiss wants
    39 training points per centroid)."""
    nlist = rows // 1000 if rows <= 1_000_000 else int(math.sqrt(rows))
    return max(1, min(max(nlist, 4), rows // 39))


def default_pq(dim: int, rows: int) -> tuple[int, int]:
    """(sub-quantizers, bits): dim/8 sub-quantizers of 8 bits (fewer bits when there are too few rows to
    train 256 centroids per sub-quantizer)."""
    pq_m = next(m for m in (dim // 8, dim // 4, dim // 2, dim, 1) if m >= 1 and dim % m == 0)
    bits = int(max(1, min(8, math.floor(math.log2(max(rows // 39, 2))))))
    return pq_m, bits


# -------------------------------------------------------------------------------------------- methods
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


def _topk(scores: np.ndarray, k: int) -> np.ndarray:
    """Indices of the k largest scores per row, largest first."""
    k = min(k, scores.shape[-1])
    part = np.argpartition(-scores, k - 1, axis=-1)[..., :k]
    order = np.argsort(-np.take_along_axis(scores, part, axis=-1), axis=-1, kind="stable")
    return np.take_along_axis(part, order, axis=-1)


class NumpyExact(SearchMethod):
    """Exact kNN by matrix product: the ground truth."""

    def __init__(self, corpus: Corpus) -> None:
        super().__init__(name="exact-numpy", exact=True, build_s=0.0, size_bytes=corpus.vectors.nbytes)
        self.corpus = corpus

    def search(self, query: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
        scores = self.corpus.vectors @ np.asarray(query, dtype=np.float32)
        top = _topk(scores[None, :], k)[0]
        return self.corpus.ids[top], (1.0 - scores[top]).astype(np.float32)

    def search_batch(self, queries: np.ndarray, k: int) -> np.ndarray:
        out = np.empty((len(queries), min(k, len(self.corpus))), dtype=np.int64)
        for start in range(0, len(queries), 256):  # bounded memory: 256 x rows scores at a time
            scores = np.asarray(queries[start : start + 256], dtype=np.float32) @ self.corpus.vectors.T
            out[start : start + 256] = self.corpus.ids[_topk(scores, k)]
        return _pad(out, k)


def _pad(ids: np.ndarray, k: int) -> np.ndarray:
    if ids.shape[1] >= k:
        return ids
    return np.hstack([ids, np.full((ids.shape[0], k - ids.shape[1]), -1, dtype=np.int64)])


class SklearnBrute(SearchMethod):
    """sklearn NearestNeighbors(metric='cosine', algorithm='brute'): the research's exact baseline."""

    def __init__(self, corpus: Corpus) -> None:
        from sklearn.neighbors import NearestNeighbors

        super().__init__(name="sklearn-brute", exact=True, size_bytes=corpus.vectors.nbytes)
        started = time.perf_counter()
        self.model = NearestNeighbors(metric="cosine", algorithm="brute", n_jobs=1).fit(corpus.vectors)
        self.build_s = time.perf_counter() - started
        self.corpus = corpus

    def search(self, query: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
        distances, rows = self.model.kneighbors(
            np.asarray(query, np.float32)[None, :], min(k, len(self.corpus))
        )
        return self.corpus.ids[rows[0]], distances[0].astype(np.float32)

    def search_batch(self, queries: np.ndarray, k: int) -> np.ndarray:
        _, rows = self.model.kneighbors(np.asarray(queries, np.float32), min(k, len(self.corpus)))
        return _pad(self.corpus.ids[rows], k)


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
    ) -> None:
        import faiss

        super().__init__(name=name, exact=exact, build_s=build_s, build_params=build_params or {})
        self.index = index
        self.ids = np.asarray(ids, dtype=np.int64)
        self.size_bytes = int(faiss.serialize_index(index).nbytes)
        self.threads = threads

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
        return self._map(rows[0][keep]), (1.0 - scores[0][keep]).astype(np.float32)

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
) -> tuple[Any, dict[str, Any], float]:
    """Build a Faiss index of `kind` (flat, ivf, hnsw, ivfpq) over normalised vectors with inner product.
    Returns (index, the parameters used, build seconds)."""
    import faiss

    vectors = np.ascontiguousarray(vectors, dtype=np.float32)
    rows, dim = vectors.shape
    faiss.omp_set_num_threads(threads)
    ip = faiss.METRIC_INNER_PRODUCT
    started = time.perf_counter()
    index: Any
    if kind == "flat":
        index, params = faiss.IndexFlatIP(dim), {}
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
        quantizer = faiss.IndexFlatIP(dim)
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
        index.train(vectors)
    else:
        raise ConfigError(f"unknown Faiss index type {kind!r}; choose flat, ivf, hnsw or ivfpq.")
    index.add(vectors)
    return index, params, time.perf_counter() - started


def _faiss(kind: str, corpus: Corpus, options: BuildOptions, hnsw: tuple[int, int]) -> FaissMethod:
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
    )
    method = FaissMethod(
        f"faiss-{kind}",
        index,
        corpus.ids,
        build_s=seconds,
        exact=kind == "flat",
        threads=options.threads,
        build_params=params,
    )
    if kind == "hnsw":
        method.sweep = [{"ef_search": e} for e in options.ef_sweep]
    elif kind in ("ivf", "ivfpq"):
        nlist = params["nlist"]
        method.sweep = [{"nprobe": p} for p in options.probe_sweep if p <= nlist] or [{"nprobe": nlist}]
    return method


def build_method(
    name: str, corpus: Corpus, settings: Settings, options: BuildOptions | None = None
) -> SearchMethod:
    """Build one method over `corpus` (pgvector methods search the database table the corpus came from)."""
    options = options or BuildOptions()
    if name == "exact-numpy":
        return NumpyExact(corpus)
    if name == "sklearn-brute":
        return SklearnBrute(corpus)
    if name.startswith("faiss-"):
        from vstore.methods_pg import pg_hnsw_params  # pgvector methods live in their own module

        kind = name.removeprefix("faiss-")
        hnsw = pg_hnsw_params(settings, corpus.table) if kind == "hnsw" else (16, 64)
        return _faiss(kind, corpus, options, hnsw)
    if name.startswith("pgvector-"):
        from vstore.methods_pg import PgvectorMethod

        return PgvectorMethod.open(name.removeprefix("pgvector-"), corpus, settings, options)
    raise ConfigError(f"unknown method {name!r}; choose from {', '.join(METHOD_NAMES)}.")


def parse_methods(text: Sequence[str] | str | None) -> list[str]:
    """`--methods pgvector-hnsw,faiss-hnsw` (or repeated options) -> validated names; None -> defaults."""
    if not text:
        return list(DEFAULT_METHODS)
    items = [text] if isinstance(text, str) else list(text)
    names = [n.strip() for item in items for n in re.split(r"[,\s]+", item) if n.strip()]
    unknown = [n for n in names if n not in METHOD_NAMES]
    if unknown:
        raise ConfigError(f"unknown method(s) {', '.join(unknown)}; choose from {', '.join(METHOD_NAMES)}.")
    return list(dict.fromkeys(names))


def iter_methods(
    corpus: Corpus,
    settings: Settings,
    names: Sequence[str] | None = None,
    options: BuildOptions | None = None,
) -> Iterator[SearchMethod]:
    """Build the methods one at a time (only one index in memory at once). The caller iterates
    `method.sweep`, calls `method.configure(**params)` for each setting, and closes the method."""
    for name in parse_methods(names):
        yield build_method(name, corpus, settings, options)


def iter_settings(
    corpus: Corpus,
    settings: Settings,
    names: Sequence[str] | None = None,
    options: BuildOptions | None = None,
) -> Iterator[SearchMethod]:
    """Every (method, setting) pair, the method already configured; methods are closed after their sweep."""
    for method in iter_methods(corpus, settings, names, options):
        try:
            for params in method.sweep:
                method.configure(**params)
                yield method
        finally:
            method.close()
