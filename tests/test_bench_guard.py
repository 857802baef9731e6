"""Benchmarks that write and delete rows refuse a database holding datasets they did not create."""

from __future__ import annotations

import pytest

from benchmarks import ingest_bench
from tests.imagegen import make_coco
from vstore.cli import main
from vstore.db.connect import connection
from vstore.errors import UserDataPresent
from vstore.ingest import ingest


@pytest.fixture
def user_dataset(settings, tiny_encoder, tmp_path):
    make_coco(tmp_path / "coco", n=3)
    ingest(settings, tmp_path / "coco", encoder=tiny_encoder)
    return settings


def _image_count(settings) -> int:
    with connection(settings) as conn:
        return conn.execute("SELECT count(*) FROM images").fetchone()[0]


def test_ingest_benchmark_refuses_to_delete_a_users_images(user_dataset):
    before = _image_count(user_dataset)
    with pytest.raises(UserDataPresent, match="--force"):
        ingest_bench._clear(user_dataset)
    assert _image_count(user_dataset) == before == 3


def test_bench_synth_cli_refuses_a_users_database_in_one_line(user_dataset, monkeypatch, capsys):
    monkeypatch.setenv("VSTORE_DATABASE_URL", user_dataset.database_url)
    monkeypatch.setenv("VSTORE_HOME", str(user_dataset.home))
    assert main(["bench", "synth", "--rows", "20"]) == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("Error:") and "--force" in err[0]
    assert _image_count(user_dataset) == 3
    assert main(["bench", "synth", "--rows", "20", "--force"]) == 0
    assert _image_count(user_dataset) == 23


def test_ingest_benchmark_may_clear_its_own_datasets(settings):
    with connection(settings) as conn:
        conn.execute("INSERT INTO datasets (name, root, format) VALUES ('bench-copy', '/tmp', 'folder')")
        conn.commit()
    ingest_bench._clear(settings)  # no error: every dataset is the benchmark's
