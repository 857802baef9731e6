"""Spotify's Annoy (random projection trees, angular distance) as a SearchMethod, as in the ImageNet DET
study: `n_trees` fixed at build, `search_k` (nodes inspected per query) swept. The index is saved to a
scratch file and loaded back (memory-mapped, as Annoy is used), so its size on disk and load time are
measured too (`build_params["load_ms"]`). Optional: `pip install 'vstore[bench]'`.
"""

from __future__ import annotations

import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np

from vstore.compare.base import Corpus, SearchMethod
from vstore.errors import ConfigError

DEFAULT_TREES = 10
SEARCH_K_SWEEP = (100, 500, 2000, 10000)


class AnnoyMethod(SearchMethod):
    def __init__(self, corpus: Corpus, *, n_trees: int = DEFAULT_TREES, threads: int = 2) -> None:
        try:
            from annoy import AnnoyIndex
        except ImportError:
            raise ConfigError(
                "the annoy method needs the annoy package: pip install 'vstore[bench]' (or annoy)."
            ) from None
        if n_trees < 1:
            raise ConfigError("Annoy needs at least one tree.")
        super().__init__(name="annoy")
        self.ids = corpus.ids
        started = time.perf_counter()
        index = AnnoyIndex(corpus.dim, "angular")
        for row, vector in enumerate(corpus.vectors):
            index.add_item(row, vector)
        index.build(n_trees, n_jobs=threads)
        self.build_s = time.perf_counter() - started
        self._folder = tempfile.TemporaryDirectory(prefix="vstore-annoy-")
        path = Path(self._folder.name) / "index.ann"
        index.save(str(path))
        index.unload()
        self.size_bytes = path.stat().st_size
        started = time.perf_counter()
        self.index: Any = AnnoyIndex(corpus.dim, "angular")
        self.index.load(str(path))  # memory-mapped: what opening a saved Annoy index costs
        load_ms = (time.perf_counter() - started) * 1000.0
        self.build_params = {"n_trees": n_trees, "load_ms": round(load_ms, 3)}
        self.sweep = [{"search_k": s} for s in SEARCH_K_SWEEP]

    def search(self, query: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
        search_k = int(self.params.get("search_k", -1))
        rows, distances = self.index.get_nns_by_vector(
            np.asarray(query, dtype=np.float32).tolist(), k, search_k=search_k, include_distances=True
        )
        # Annoy's angular distance is sqrt(2 (1 - cos)) on unit vectors: back to cosine distance.
        cosine = np.asarray(distances, dtype=np.float32) ** 2 / 2.0
        return self.ids[np.asarray(rows, dtype=np.int64)], cosine

    def close(self) -> None:
        self.index.unload()
        self._folder.cleanup()
