"""`vstore db backup|restore|dump|load` against real embedded servers: a backup taken while an ingest
runs restores every committed row and the same search results; damaged, partial or unsafe restores are
refused before anything is written."""

from __future__ import annotations

import threading
import time
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest

from tests.ops_fixtures import close_home, make_home, photo_folder, rows, server_folder
from vstore.db import embedded
from vstore.db.backup import MANIFEST, BackupRefused, backup, last_backup, restore
from vstore.db.dump import dump, load
from vstore.ingest.pipeline import ingest
from vstore.search.store import Store


@pytest.fixture
def place():
    with server_folder() as path:
        yield path


@pytest.fixture
def home(place: Path):
    settings = make_home(place / "home")
    yield settings
    close_home(settings)


def _exact_ids(settings, encoder, vectors, dataset: str) -> list[list[tuple[int, float]]]:
    with Store(settings, encoder=encoder) as store:
        return [
            [
                (hit.id, round(hit.distance, 6))
                for hit in store.search_vector(v, k=5, exact=True, dataset=dataset)
            ]
            for v in vectors
        ]


@pytest.mark.slow
def test_backup_during_an_ingest_restores_every_committed_row_and_the_same_searches(
    home, place, tmp_path, tiny_encoder
):
    ingest(home, photo_folder(tmp_path / "before", 24), dataset="before", encoder=tiny_encoder)
    during = photo_folder(tmp_path / "during", 240, first=1000)
    failures: list[BaseException] = []

    def run_ingest() -> None:
        try:
            ingest(home, during, dataset="during", encoder=tiny_encoder)
        except BaseException as exc:  # noqa: BLE001 - surfaced by the assert below
            failures.append(exc)

    worker = threading.Thread(target=run_ingest)
    worker.start()
    deadline = time.monotonic() + 120
    seen = 0
    while seen == 0 and worker.is_alive() and time.monotonic() < deadline:
        time.sleep(0.2)
        seen = rows(home, "SELECT count(*) FROM images i JOIN datasets d ON d.id = i.dataset_id "
                          "WHERE d.name = 'during'")[0][0]  # fmt: skip
    report = backup(home, tmp_path / "backup")
    worker.join(timeout=300)
    assert not failures and not worker.is_alive()
    assert (tmp_path / "backup" / MANIFEST).is_file()
    assert report.rows["images"] >= 24 + seen
    assert last_backup(home)["path"] == str(tmp_path / "backup")

    restored = restore(home, tmp_path / "backup", home=place / "restored")
    new_home = replace(home, home=place / "restored")
    try:
        assert restored.rows["images"] >= report.rows["images"]
        # every restored row is the primary's row, byte for byte (a consistent prefix of the ingest)
        query = "SELECT id, path, embedding::text FROM images ORDER BY id"
        primary_rows = {r[0]: r for r in rows(home, query)}
        restored_rows = rows(new_home, query)
        assert len(restored_rows) == restored.rows["images"]
        assert all(primary_rows[r[0]] == r for r in restored_rows)
        vectors = [np.asarray(tiny_encoder.encode_texts([t]))[0] for t in ("red circle", "blue square")]
        assert _exact_ids(new_home, tiny_encoder, vectors, "before") == _exact_ids(
            home, tiny_encoder, vectors, "before"
        )
    finally:
        embedded.stop(new_home)


@pytest.mark.slow
def test_a_truncated_or_partial_backup_is_refused_and_nothing_is_written(home, tmp_path, tiny_encoder):
    ingest(home, photo_folder(tmp_path / "photos", 12), encoder=tiny_encoder)
    backup(home, tmp_path / "backup")
    biggest = max((tmp_path / "backup" / "pgdata" / "base").rglob("*"), key=lambda p: p.stat().st_size)
    with open(biggest, "r+b") as handle:
        handle.truncate(biggest.stat().st_size // 2)
    with pytest.raises(BackupRefused, match="damaged"):
        restore(home, tmp_path / "backup", home=tmp_path / "new")
    assert not (tmp_path / "new").exists()

    (tmp_path / "backup" / MANIFEST).unlink()
    with pytest.raises(BackupRefused, match="not a complete vstore backup"):
        restore(home, tmp_path / "backup", home=tmp_path / "new")
    assert not (tmp_path / "new").exists()


@pytest.mark.slow
def test_restore_over_a_running_server_is_refused_and_over_a_stopped_one_keeps_the_old_data(
    home, tmp_path, tiny_encoder
):
    ingest(home, photo_folder(tmp_path / "photos", 6), encoder=tiny_encoder)
    backup(home, tmp_path / "backup")
    ingest(home, photo_folder(tmp_path / "more", 4, first=50), encoder=tiny_encoder)
    pid = embedded.status(home).pid

    with pytest.raises(BackupRefused, match="--yes"):
        restore(home, tmp_path / "backup")
    with pytest.raises(BackupRefused, match="running"):
        restore(home, tmp_path / "backup", yes=True)
    assert embedded.status(home).pid == pid
    assert rows(home, "SELECT count(*) FROM images")[0][0] == 10

    embedded.stop(home)
    report = restore(home, tmp_path / "backup", yes=True)
    assert report.rows["images"] == 6
    assert report.replaced is not None and (report.replaced / "PG_VERSION").is_file()


def test_dump_then_load_into_an_empty_database_carries_every_row(
    settings, empty_settings, tmp_path, tiny_encoder
):
    ingest(settings, photo_folder(tmp_path / "photos", 8), encoder=tiny_encoder)
    made = dump(settings, tmp_path / "vstore.dump")
    assert made.bytes > 0
    load(empty_settings, tmp_path / "vstore.dump")
    query = "SELECT id, path, embedding::text FROM images ORDER BY id"
    assert rows(empty_settings, query) == rows(settings, query)
    with pytest.raises(Exception, match="already has tables"):
        load(empty_settings, tmp_path / "vstore.dump")
