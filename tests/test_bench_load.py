"""`vstore bench load`: index files read back from disk, first and warm queries, pgvector cold after a
restart of the embedded server."""

from __future__ import annotations

from pathlib import Path

import pytest

from vstore.bench.load import load_times
from vstore.bench.synth import load_synthetic
from vstore.config import Settings
from vstore.errors import ConfigError


def test_faiss_files_are_read_back_and_pgvector_is_timed_warm(settings):
    load_synthetic(settings, 400, captions_per_image=0, seed=1)
    rows = {r.method: r for r in load_times(settings, k=5, repeats=2)}
    assert list(rows) == ["pgvector-hnsw", "faiss-flat", "faiss-ivf", "faiss-hnsw", "faiss-ivfpq"]
    # A flat index file is the vectors themselves: 400 x 32 float32 plus a small header.
    assert 400 * 32 * 4 <= rows["faiss-flat"].file_bytes < 400 * 32 * 4 + 1024
    assert rows["faiss-hnsw"].file_bytes > rows["faiss-flat"].file_bytes  # the graph's links on top
    assert rows["faiss-ivfpq"].file_bytes < rows["faiss-flat"].file_bytes  # compressed codes
    assert all(
        r.open_ms is not None and r.first_query_ms is not None
        for m, r in rows.items()
        if m != "pgvector-hnsw"
    )
    pg = rows["pgvector-hnsw"]
    assert pg.warm_query_ms > 0 and (pg.open_ms, pg.first_query_ms, pg.file_bytes) == (None, None, None)


def test_restart_is_refused_for_a_server_vstore_did_not_start(settings):
    load_synthetic(settings, 100, captions_per_image=0, seed=1)
    with pytest.raises(ConfigError, match="embedded server only"):
        load_times(settings, restart=True)


@pytest.mark.slow
def test_cold_start_restarts_the_embedded_server_and_times_the_first_query(tmp_path: Path):
    from vstore.db import embedded
    from vstore.db.migrations import init

    home = Settings(home=tmp_path / "home", model="vstore-tiny", pretrained="random")
    try:
        init(home)
        load_synthetic(home, 300, captions_per_image=0, seed=2)
        pid = embedded.status(home).pid
        pg = load_times(home, k=5, repeats=2, restart=True)[0]
        assert embedded.status(home).pid != pid  # it was restarted
        assert pg.open_ms is not None and pg.first_query_ms is not None and pg.warm_query_ms > 0
    finally:
        embedded.stop(home)
