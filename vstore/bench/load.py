"""`vstore bench load`: what it costs to get an index ready to answer (the ImageNet DET study's load time).

- Faiss side indexes (flat, ivf, hnsw, ivfpq): built over the stored vectors, written to a scratch folder,
  then timed: reading the file back (`faiss.read_index`, median of `repeats`), the first query after the
  read, and a warm query (median).
- pgvector: a warm query (median, on an open connection), and with `restart` the cold start: the embedded
  server is stopped and started again (its shared buffers are then empty), and the first query on a new
  connection is timed, connection included and apart. The operating system's page cache survives the
  restart, so this is PostgreSQL's cold cache, not a cold disk. A server vstore did not start (a
  VSTORE_DATABASE_URL) is never restarted: its cold figures stay empty.
"""

from __future__ import annotations

import statistics
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from vstore.config import Settings
from vstore.errors import ConfigError

FAISS_KINDS = ("flat", "ivf", "hnsw", "ivfpq")


@dataclass(frozen=True)
class LoadTime:
    method: str
    file_bytes: int | None  # the index file on disk (Faiss); None for pgvector (it lives in the database)
    open_ms: float | None  # reading the index file (Faiss) / connecting after a restart (pgvector)
    first_query_ms: float | None  # the first query after opening / after the restart
    warm_query_ms: float  # median of warm queries


def _ms(start: float) -> float:
    return (time.perf_counter() - start) * 1000.0


def _median_ms(step: Callable[[], object], repeats: int) -> float:
    times = []
    for _ in range(repeats):
        started = time.perf_counter()
        step()
        times.append(_ms(started))
    return statistics.median(times)


def faiss_load_times(
    vectors: np.ndarray, k: int, repeats: int, kinds: tuple[str, ...] = FAISS_KINDS
) -> list[LoadTime]:
    import faiss

    from vstore.compare.faiss_methods import build_faiss

    query = np.ascontiguousarray(vectors[:1], dtype=np.float32)
    out = []
    with tempfile.TemporaryDirectory(prefix="vstore-load-") as folder:
        for kind in kinds:
            index, _, _ = build_faiss(kind, vectors, threads=1)
            path = Path(folder) / f"{kind}.faiss"
            faiss.write_index(index, str(path))
            del index
            reads = []
            for _ in range(repeats):
                started = time.perf_counter()
                loaded = faiss.read_index(str(path))
                reads.append(_ms(started))
            started = time.perf_counter()
            loaded.search(query, k)
            first = _ms(started)
            warm = _median_ms(lambda: loaded.search(query, k), repeats)  # noqa: B023 (used at once)
            out.append(LoadTime(f"faiss-{kind}", path.stat().st_size, statistics.median(reads), first, warm))
    return out


def pgvector_load_times(
    settings: Settings, query: np.ndarray, k: int, repeats: int, restart: bool
) -> LoadTime:
    from vstore.db import embedded, sql
    from vstore.db.connect import connect

    statement = sql.load("queries/compare_knn_images")
    params = {"q": np.asarray(query, dtype=np.float32), "k": k}
    open_ms = first_ms = None
    if restart:
        if settings.database_url:
            raise ConfigError(
                "--restart restarts the embedded server only; this database is VSTORE_DATABASE_URL's. "
                "Leave out --restart, or restart that server yourself before a run."
            )
        embedded.stop(settings)
        embedded.start(settings)
        started = time.perf_counter()
        conn = connect(settings)
        open_ms = _ms(started)
    else:
        conn = connect(settings)
    try:
        started = time.perf_counter()
        conn.execute(statement, params).fetchall()
        first = _ms(started)
        first_ms = first if restart else None
        # the same unprepared statement as the first query, so first and warm differ only by the cache
        warm = _median_ms(lambda: conn.execute(statement, params).fetchall(), max(repeats, 10))
    finally:
        conn.close()
    return LoadTime("pgvector-hnsw", None, open_ms, first_ms, warm)


def load_times(
    settings: Settings,
    *,
    k: int = 10,
    repeats: int = 5,
    restart: bool = False,
    progress: Callable[[str], None] | None = None,
) -> list[LoadTime]:
    """pgvector (cold after a restart when `restart`, and warm) and each Faiss side index (read, first
    query, warm) over the stored image vectors."""
    from vstore.compare.base import load_corpus

    if repeats < 1 or k < 1:
        raise ConfigError("--repeats and -k must be at least 1.")
    corpus = load_corpus(settings, "images")
    if len(corpus) < 2:
        raise ConfigError("load times need stored images; ingest data (or `vstore bench synth`) first.")
    say = progress or (lambda _message: None)
    say("pgvector: " + ("restarting the embedded server for a cold start" if restart else "warm queries"))
    rows = [pgvector_load_times(settings, corpus.vectors[0], k, repeats, restart)]
    say(f"faiss: building, writing and reading {', '.join(FAISS_KINDS)} over {len(corpus)} vectors")
    return rows + faiss_load_times(corpus.vectors, k, repeats)


def format_load_times(rows: list[LoadTime]) -> str:
    def cell(value: float | None) -> str:
        return "-" if value is None else f"{value:.2f}"

    header = ("method", "file_MB", "open_ms", "first_query_ms", "warm_query_ms")
    lines = [header] + [
        (
            r.method,
            "-" if r.file_bytes is None else f"{r.file_bytes / 1e6:.2f}",
            cell(r.open_ms),
            cell(r.first_query_ms),
            cell(r.warm_query_ms),
        )
        for r in rows
    ]
    widths = [max(len(line[i]) for line in lines) for i in range(len(header))]
    return "\n".join(
        "  ".join(c.ljust(w) for c, w in zip(line, widths, strict=True)).rstrip() for line in lines
    )
