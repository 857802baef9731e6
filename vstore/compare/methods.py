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

import re
from collections.abc import Iterator, Sequence

from vstore.compare.base import BuildOptions, Corpus, SearchMethod
from vstore.compare.exact import NumpyExact, SklearnBrute
from vstore.compare.faiss_methods import faiss_method
from vstore.compare.names import DEFAULT_METHODS, EXACT_METHODS, METHOD_NAMES

__all__ = [
    "DEFAULT_METHODS",
    "EXACT_METHODS",
    "METHOD_NAMES",
    "build_method",
    "iter_methods",
    "iter_settings",
    "parse_methods",
]
from vstore.config import Settings
from vstore.errors import ConfigError


def build_method(
    name: str, corpus: Corpus, settings: Settings, options: BuildOptions | None = None
) -> SearchMethod:
    """Build one method over `corpus` (pgvector methods search the database table the corpus came from)."""
    options = options or BuildOptions()
    if name == "exact-numpy":
        return NumpyExact(corpus)
    if name == "sklearn-brute":
        return SklearnBrute(corpus)
    if name == "annoy":
        from vstore.compare.annoy_method import AnnoyMethod

        return AnnoyMethod(corpus, n_trees=options.n_trees or 10, threads=options.build_threads)
    if name.startswith("faiss-"):
        from vstore.compare.pg_methods import pg_hnsw_params  # pgvector methods live in their own module

        kind = name.removeprefix("faiss-")
        hnsw = pg_hnsw_params(settings, corpus.table) if kind == "hnsw" else (16, 64)
        return faiss_method(kind, corpus, options, hnsw)
    if name == "pgvector-bq":
        from vstore.compare.pg_bq import PgBinaryQuantMethod

        return PgBinaryQuantMethod.open_bq(corpus, settings, options)
    if name.startswith("pgvector-"):
        from vstore.compare.pg_methods import PgvectorMethod

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
