"""Interrupted and concurrent commands (issue 10, items 4 and 5): a bulk load interrupted by Ctrl-C leaves
its indexes rebuilt, never rebuilds another running ingest's, and two first uses at once neither crash
nor encode with a model the database does not record. Real embedded PostgreSQL, real subprocesses."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from dataclasses import replace

import psycopg
import pytest

from tests import imagegen
from tests.pause import wait_until_paused
from vstore.db.connect import connection
from vstore.db.indexes import begin_bulk_load, defer_indexes, end_bulk_load, index_status, rebuild_deferred
from vstore.db.locks import INIT
from vstore.db.migrations import read_model
from vstore.ingest.pipeline import ingest

HNSW = {"captions_embedding_hnsw", "images_embedding_hnsw"}


def _count(settings, sql: str) -> int:
    with connection(settings, vector=False) as conn:
        return int(conn.execute(sql).fetchone()[0])


def _env(settings, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("VSTORE_")}
    env.update(VSTORE_DATABASE_URL=settings.database_url, VSTORE_HOME=str(settings.home), **extra)
    return env


def _wait(condition, process: subprocess.Popen, what: str, seconds: float = 90) -> None:
    deadline = time.monotonic() + seconds
    while not condition():
        if process.poll() is not None:
            pytest.fail(f"the process ended before {what}: {process.stderr.read().decode()}")
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.02)


@pytest.mark.slow
def test_sigint_during_a_bulk_load_leaves_the_hnsw_indexes_rebuilt(settings, tmp_path):
    root = tmp_path / "d"
    n = 80
    for i in range(n):
        imagegen.save_jpeg(root / f"{i:03d}.jpg", i, size=(160, 120))
    # A bulk load from 5 new rows on (the default is 10 000): the ingest drops the vector indexes. It waits
    # after its 2nd committed batch, indexes deferred, so the Ctrl-C always lands mid-load.
    env = _env(settings, VSTORE_BULK_LOAD_ROWS="5", VSTORE_TEST_PAUSE="ingest.batch:2")
    command = [sys.executable, "-m", "vstore.cli", "ingest", str(root), "--batch-size", "1", "--workers", "0"]
    process = subprocess.Popen(command, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    wait_until_paused(process, settings.home, "ingest.batch")
    assert _count(settings, "SELECT count(*) FROM deferred_indexes") > 0
    process.send_signal(signal.SIGINT)
    process.wait(timeout=120)
    stderr = process.stderr.read().decode()
    assert _count(settings, "SELECT count(*) FROM images") == 2

    assert process.returncode == 130, stderr
    assert "Traceback" not in stderr
    with connection(settings) as conn:
        status = index_status(conn)
    assert {i.name for i in status.indexes} >= HNSW
    assert status.deferred == {}


def test_indexes_deferred_by_a_running_bulk_load_are_not_rebuilt_by_another_command(
    settings, tmp_path, tiny_encoder
):
    with connection(settings, autocommit=True) as loading, connection(settings, autocommit=True) as other:
        begin_bulk_load(loading)
        assert defer_indexes(loading, "images") == ["images_embedding_hnsw"]

        assert rebuild_deferred(other) == []  # the loader holds the lease
        imagegen.save_jpeg(tmp_path / "d" / "a.jpg", 0)
        report = ingest(settings, tmp_path / "d", encoder=tiny_encoder)  # an ordinary ingest meanwhile
        assert report.indexes_rebuilt == []
        status = index_status(other)
        assert "images_embedding_hnsw" in status.deferred and status.bulk_load_running
        assert "images_embedding_hnsw" not in {i.name for i in status.indexes}

        end_bulk_load(loading)
        assert rebuild_deferred(other) == ["images_embedding_hnsw"]
        assert not index_status(other).bulk_load_running


def test_a_bulk_load_that_fails_rebuilds_its_indexes_in_finally(
    settings, tmp_path, tiny_encoder, monkeypatch
):
    from vstore.ingest import pipeline

    def exploding_flush(self):
        raise RuntimeError("disk on fire")

    monkeypatch.setattr(pipeline._Pipeline, "flush", exploding_flush)
    for i in range(4):
        imagegen.save_jpeg(tmp_path / "d" / f"{i}.jpg", i)
    with pytest.raises(RuntimeError, match="disk on fire"):
        ingest(replace(settings, bulk_load_rows=2), tmp_path / "d", encoder=tiny_encoder)
    with connection(settings) as conn:
        status = index_status(conn)
    assert {i.name for i in status.indexes} >= HNSW and status.deferred == {}


def _checkpoint(tiny_encoder, path) -> str:
    """A checkpoint of the tiny architecture with other weights than the seeded random ones."""
    import torch

    state = {k: v + 0.01 if v.is_floating_point() else v for k, v in tiny_encoder._model.state_dict().items()}
    torch.save(state, path)
    return str(path)


@pytest.mark.slow
def test_two_first_ingests_at_once_neither_crashes_and_only_the_recorded_model_encodes(
    empty_settings, tmp_path, tiny_encoder
):
    checkpoint = _checkpoint(tiny_encoder, tmp_path / "tiny.pt")
    commands = []
    for name, pretrained in (("a", "random"), ("b", checkpoint)):
        imagegen.save_jpeg(tmp_path / name / "x.jpg", 0 if name == "a" else 1)
        commands.append(
            [sys.executable, "-m", "vstore.cli", "ingest", str(tmp_path / name), "--workers", "0"]
            + ["--model", "vstore-tiny", "--pretrained", pretrained]
        )
    env = _env(empty_settings)
    # Hold the first-use lock so that both processes reach it before either may initialise: the race
    # of the first use, made certain instead of likely.
    with psycopg.connect(empty_settings.database_url, autocommit=True) as holder:
        holder.execute("SELECT pg_advisory_lock(%s)", (INIT.key,))
        processes = [
            subprocess.Popen(c, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
            for c in commands
        ]
        waiting = (
            "SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND NOT granted "
            f"AND objid::bigint = {INIT.key}"
        )
        deadline = time.monotonic() + 120
        while holder.execute(waiting).fetchone()[0] < 2:
            assert all(p.poll() is None for p in processes), [p.stderr.read() for p in processes]
            assert time.monotonic() < deadline
            time.sleep(0.05)
        holder.execute("SELECT pg_advisory_unlock(%s)", (INIT.key,))
    results = [(p.wait(timeout=180), p.stderr.read()) for p in processes]

    for _, stderr in results:
        assert "Traceback" not in stderr and "UniqueViolation" not in stderr, stderr
    with connection(empty_settings) as conn:
        recorded = read_model(conn)
    assert recorded is not None
    winner = 0 if recorded.pretrained == "random" else 1
    assert results[winner][0] == 0, results[winner][1]
    # The other asked explicitly for other weights: refused in one line, as a later ingest would be.
    assert results[1 - winner][0] == 1
    assert f"Error: this database holds {recorded.label} vectors" in results[1 - winner][1]
    assert _count(empty_settings, "SELECT count(*) FROM images") == 1


def test_init_without_options_returns_the_recorded_model(settings):
    from vstore.db.migrations import init

    recorded = init(settings)  # no --model/--pretrained: the database's model, not ViT-B-32/openai
    assert (recorded.name, recorded.pretrained, recorded.dim) == ("vstore-tiny", "random", 32)
