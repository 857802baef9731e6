"""Exact engines: numpy matrix product (the ground truth) and sklearn brute force (the research's
baseline)."""

from __future__ import annotations

import time

import numpy as np

from vstore.compare.base import Corpus, SearchMethod, pad_ids, top_k


class NumpyExact(SearchMethod):
    """Exact kNN by matrix product: the ground truth."""

    def __init__(self, corpus: Corpus) -> None:
        super().__init__(name="exact-numpy", exact=True, build_s=0.0, size_bytes=corpus.vectors.nbytes)
        self.corpus = corpus

    def search(self, query: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
        scores = self.corpus.vectors @ np.asarray(query, dtype=np.float32)
        top = top_k(scores[None, :], k)[0]
        return self.corpus.ids[top], (1.0 - scores[top]).astype(np.float32)

    def search_batch(self, queries: np.ndarray, k: int) -> np.ndarray:
        out = np.empty((len(queries), min(k, len(self.corpus))), dtype=np.int64)
        for start in range(0, len(queries), 256):  # bounded memory: 256 x rows scores at a time
            scores = np.asarray(queries[start : start + 256], dtype=np.float32) @ self.corpus.vectors.T
            out[start : start + 256] = self.corpus.ids[top_k(scores, k)]
        return pad_ids(out, k)


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
        return pad_ids(self.corpus.ids[rows], k)
