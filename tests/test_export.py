"""Export: binary COPY out to .npy in constant memory, ids and metadata alongside, manifest."""

from __future__ import annotations

import csv
import json

import numpy as np
import pytest

from vstore.cli import main
from vstore.compare.export import export, iter_vector_chunks, load_export
from vstore.config import Settings
from vstore.db.connect import connect
from vstore.errors import ConfigError


def unit_vectors(n: int, dim: int = 32, seed: int = 0) -> np.ndarray:
    vectors = np.random.default_rng(seed).standard_normal((n, dim)).astype(np.float32)
    return vectors / np.linalg.norm(vectors, axis=1, keepdims=True)


def insert_images(
    settings: Settings, vectors: np.ndarray, *, dataset: str = "d", status: str = "ok"
) -> list[int]:
    """Images straight into the table (no ingest); returns their database ids in order."""
    with connect(settings) as conn:
        row = conn.execute("SELECT id FROM datasets WHERE name = %s", (dataset,)).fetchone()
        dataset_id = (
            row[0]
            if row
            else conn.execute(
                "INSERT INTO datasets (name, root, format) VALUES (%s, '/data', 'folder') RETURNING id",
                (dataset,),
            ).fetchone()[0]
        )
        ids = []
        for i, vector in enumerate(vectors):
            ids.append(
                conn.execute(
                    "INSERT INTO images (dataset_id, path, split, status, embedding) "
                    "VALUES (%s, %s, 'train', %s, %s) RETURNING id",
                    (dataset_id, f"{dataset}/{status}/{i}.jpg", status, vector),
                ).fetchone()[0]
            )
        conn.commit()
    return ids


def insert_captions(settings: Settings, image_ids: list[int], vectors: np.ndarray) -> list[int]:
    with connect(settings) as conn:
        ids = [
            conn.execute(
                "INSERT INTO captions (image_id, source_id, text, embedding) "
                "VALUES (%s, %s, %s, %s) RETURNING id",
                (image_id, str(i), f"caption {i}", vector),
            ).fetchone()[0]
            for i, (image_id, vector) in enumerate(zip(image_ids, vectors, strict=True))
        ]
        conn.commit()
    return ids


def test_npy_export_equals_database_vectors_with_ids_and_metadata(settings, tmp_path):
    vectors = unit_vectors(37)
    ids = insert_images(settings, vectors)
    insert_images(settings, unit_vectors(3, seed=9), status="failed")  # not searchable: not exported
    caption_ids = insert_captions(settings, ids[:5], unit_vectors(5, seed=1))

    report = export(settings, tmp_path / "out", chunk_rows=4)  # many chunks, one partial at the end

    assert report.counts == {"images": 37, "captions": 5}
    out_ids, out_vectors, manifest = load_export(tmp_path / "out", "images")
    assert out_ids.tolist() == ids
    np.testing.assert_array_equal(np.asarray(out_vectors), vectors)  # bit-exact float32
    assert np.load(tmp_path / "out" / "captions_ids.npy").tolist() == caption_ids
    assert manifest["dim"] == 32 and manifest["model"] == "vstore-tiny" and manifest["counts"]["images"] == 37
    with open(tmp_path / "out" / "images_meta.csv", newline="") as handle:
        meta = list(csv.DictReader(handle))
    assert (
        [int(m["id"]) for m in meta] == ids and meta[0]["dataset"] == "d" and meta[0]["path"] == "d/ok/0.jpg"
    )
    with open(tmp_path / "out" / "captions_meta.csv", newline="") as handle:
        captions = list(csv.DictReader(handle))
    assert [int(c["image_id"]) for c in captions] == ids[:5] and captions[0]["text"] == "caption 0"


@pytest.mark.parametrize("chunk_rows", [1, 7, 1000])
def test_copy_stream_yields_chunks_no_larger_than_asked(settings, chunk_rows):
    vectors = unit_vectors(20)
    ids = insert_images(settings, vectors)
    with connect(settings) as conn:
        chunks = list(iter_vector_chunks(conn, "images", 32, chunk_rows))
    assert max(len(c[0]) for c in chunks) <= chunk_rows
    assert np.concatenate([c[0] for c in chunks]).tolist() == ids
    np.testing.assert_array_equal(np.concatenate([c[1] for c in chunks]), vectors)


def test_empty_tables_export_empty_arrays(settings, tmp_path):
    report = export(settings, tmp_path / "out", tables=("images",))
    assert report.counts == {"images": 0}
    assert np.load(tmp_path / "out" / "images.npy").shape == (0, 32)


def test_parquet_without_pyarrow_says_how_to_install(settings, tmp_path):
    insert_images(settings, unit_vectors(2))
    try:
        import pyarrow  # noqa: F401
    except ImportError:
        with pytest.raises(ConfigError, match="pip install pyarrow"):
            export(settings, tmp_path / "out", format="parquet")
    else:
        report = export(settings, tmp_path / "out", format="parquet")
        assert report.counts["images"] == 2


def test_cli_export_writes_manifest_and_reports_counts(settings, tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("VSTORE_DATABASE_URL", settings.database_url)
    insert_images(settings, unit_vectors(4))
    assert main(["export", str(tmp_path / "cli"), "--table", "images", "--json"]) == 0
    printed = json.loads(capsys.readouterr().out)
    assert printed["counts"] == {"images": 4}
    assert json.loads((tmp_path / "cli" / "manifest.json").read_text())["counts"] == {"images": 4}
    assert main(["export", str(tmp_path / "bad"), "--format", "csv"]) == 2


def test_export_into_a_file_is_a_config_error(settings, tmp_path):
    (tmp_path / "afile").write_text("x")
    with pytest.raises(ConfigError, match="is a file"):
        export(settings, tmp_path / "afile")
