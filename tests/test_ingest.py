"""The ingest pipeline against a real database with the tiny model: COCO layouts, folders with bad and odd
files, incremental re-runs, renames, missing files, model checks."""

from __future__ import annotations

import json
import os

import numpy as np
import pytest

from tests import imagegen
from vstore.config import Settings
from vstore.db.connect import connection
from vstore.db.connect import vector_array as as_array
from vstore.errors import ModelMismatch, SourceError
from vstore.ingest.pipeline import ingest


class CountingEncoder:
    """Wraps the tiny encoder and counts what it is asked to encode."""

    def __init__(self, inner) -> None:
        self.inner = inner
        self.spec, self.device = inner.spec, inner.device
        self.context_length = inner.context_length
        self.images = 0
        self.texts = 0

    @property
    def dim(self) -> int:
        return self.inner.dim

    def image_transform(self):
        return self.inner.image_transform()

    def encode_images(self, pixels):
        self.images += len(pixels)
        return self.inner.encode_images(pixels)

    def encode_texts(self, texts):
        self.texts += len(texts)
        return self.inner.encode_texts(texts)

    def count_tokens(self, text: str) -> int:
        return self.inner.count_tokens(text)


@pytest.fixture
def counting(tiny_encoder) -> CountingEncoder:
    return CountingEncoder(tiny_encoder)


def rows(settings: Settings, sql: str, params: tuple = ()) -> list[tuple]:
    with connection(settings) as conn:
        return conn.execute(sql, params).fetchall()


def test_coco_layout_ingests_images_captions_and_counts_what_it_skips(settings, tmp_path, counting):
    root = tmp_path / "coco"
    data = imagegen.make_coco(root, n=6, uncaptioned=2, missing=1, unknown_image_captions=1, empty_captions=1)
    report = ingest(settings, root, encoder=counting)

    assert (report.format, report.dataset, report.splits) == ("coco", "coco", ["val2017"])
    assert report.added == 8 and report.failed == [] and report.ok
    assert report.uncaptioned_images == 2
    assert report.annotations_missing_file == 1
    assert len(report.missing_files) == 1 and report.missing_files[0].endswith(".jpg")
    assert report.captions_unknown_image == 1
    assert report.captions_empty == 1
    expected_captions = sum(1 + i % 5 for i in range(6))
    assert report.captions_added == expected_captions
    images = rows(
        settings, "SELECT path, split, source_id, status, embedding IS NOT NULL FROM images ORDER BY path"
    )
    assert len(images) == 8
    assert images[0] == ("val2017/000000000100.jpg", "val2017", "100", "ok", True)
    assert {r[0] for r in images if r[2] is None} == {"val2017/extra_000.jpg", "val2017/extra_001.jpg"}
    captions = rows(
        settings,
        "SELECT i.source_id, count(*) FROM captions c JOIN images i ON i.id = c.image_id "
        "GROUP BY 1 ORDER BY 1",
    )
    assert captions == [(str(100 + i), 1 + i % 5) for i in range(6)]
    annotation_ids = {str(a["id"]) for a in data["annotations"]}
    assert {r[0] for r in rows(settings, "SELECT source_id FROM captions")} <= annotation_ids
    norms = [float(np.linalg.norm(as_array(r[0]))) for r in rows(settings, "SELECT embedding FROM images")]
    assert norms == pytest.approx([1.0] * 8, abs=1e-4)


def test_second_run_of_an_unchanged_tree_encodes_nothing(settings, tmp_path, counting):
    root = tmp_path / "coco"
    imagegen.make_coco(root, n=5, uncaptioned=1)
    ingest(settings, root, encoder=counting)
    first = (counting.images, counting.texts)
    report = ingest(settings, root, encoder=counting)
    assert (counting.images, counting.texts) == first
    assert report.unchanged == 6 and report.added == 0 and report.captions_added == 0
    assert rows(settings, "SELECT count(*) FROM images")[0][0] == 6


def test_renamed_file_reuses_its_embedding_without_encoding(settings, tmp_path, counting):
    root = tmp_path / "photos"
    for i in range(4):
        imagegen.save_jpeg(root / f"p{i}.jpg", i)
    ingest(settings, root, encoder=counting)
    before = counting.images
    stored = rows(settings, "SELECT embedding FROM images WHERE path = 'p2.jpg'")[0][0]
    os.rename(root / "p2.jpg", root / "moved.jpg")

    report = ingest(settings, root, encoder=counting)

    assert counting.images == before
    assert report.renamed == 1 and report.missing == 1 and report.unchanged == 3
    moved = rows(settings, "SELECT status, embedding FROM images WHERE path = 'moved.jpg'")[0]
    assert moved[0] == "ok" and np.allclose(as_array(moved[1]), as_array(stored))
    assert rows(settings, "SELECT status FROM images WHERE path = 'p2.jpg'") == [("missing",)]


def test_missing_file_that_comes_back_is_ok_again_without_encoding(settings, tmp_path, counting):
    root = tmp_path / "photos"
    for i in range(3):
        imagegen.save_jpeg(root / f"p{i}.jpg", i)
    ingest(settings, root, encoder=counting)
    os.rename(root / "p1.jpg", tmp_path / "aside.jpg")
    assert ingest(settings, root, encoder=counting).missing == 1
    os.rename(tmp_path / "aside.jpg", root / "p1.jpg")
    before = counting.images
    report = ingest(settings, root, encoder=counting)
    assert counting.images == before and report.unchanged == 3
    assert rows(settings, "SELECT DISTINCT status FROM images") == [("ok",)]


def test_rescan_hashes_every_file_but_encodes_none_that_is_unchanged(settings, tmp_path, counting):
    root = tmp_path / "photos"
    for i in range(3):
        imagegen.save_jpeg(root / f"p{i}.jpg", i)
    ingest(settings, root, encoder=counting)
    before = counting.images
    os.utime(root / "p0.jpg", (1, 1))  # touched, same bytes
    imagegen.save_jpeg(root / "p1.jpg", 9)  # new content under the same name
    report = ingest(settings, root, rescan=True, encoder=counting)
    assert counting.images == before + 1
    assert (report.unchanged, report.updated) == (2, 1)
    assert rows(settings, "SELECT mtime FROM images WHERE path = 'p0.jpg'") == [(1.0,)]


def test_bad_files_become_failed_rows_and_the_rest_is_ingested(settings, tmp_path, counting):
    root = tmp_path / "mixed"
    bad = imagegen.make_bad_images(root / "bad")
    odd = imagegen.make_odd_images(root / "odd")
    report = ingest(settings, root, encoder=counting)

    failed = dict(report.failed)
    assert set(failed) == {f"bad/{name}" for name in bad}
    assert "empty" in failed["bad/zero.jpg"] and "unreadable" in failed["bad/dangling.jpg"]
    assert "not an image" in failed["bad/notes.png"]
    assert report.added == len(odd) and not report.ok
    stored = dict(rows(settings, "SELECT path, status FROM images"))
    assert all(stored[f"odd/{name}"] == "ok" for name in odd)
    assert rows(
        settings, "SELECT count(*) FROM images WHERE status = 'failed' AND embedding IS NULL AND error <> ''"
    )[0][0] == len(bad)
    # width/height are those of the file (EXIF rotation is applied to the pixels only)
    assert dict(rows(settings, "SELECT path, width FROM images"))["odd/rotated.jpg"] == 40


def test_non_utf8_file_name_is_stored_escaped_and_found_again(settings, tmp_path, counting):
    root = tmp_path / "names"
    imagegen.make_non_utf8_name(root)
    report = ingest(settings, root, encoder=counting)
    assert report.added == 1 and report.ok
    assert rows(settings, "SELECT path FROM images") == [("caf\\xe9.jpg",)]
    again = ingest(settings, root, encoder=counting)
    assert again.unchanged == 1 and again.added == 0 and again.missing == 0


def test_class_folders_set_the_label(settings, tmp_path, counting):
    root = tmp_path / "classes"
    imagegen.make_class_folders(root, {"cat": 2, "dog": 3})
    ingest(settings, root, encoder=counting)
    assert rows(settings, "SELECT label, count(*) FROM images GROUP BY 1 ORDER BY 1") == [
        ("cat", 2),
        ("dog", 3),
    ]


def test_sidecar_captions_long_and_empty_lines(settings, tmp_path, counting):
    root = tmp_path / "side"
    imagegen.save_jpeg(root / "a.jpg", 0)
    (root / "a.txt").write_text("a red circle\n\n   \n" + "very long words " * 60 + "\n")
    report = ingest(settings, root, encoder=counting)
    assert report.captions_added == 2 and report.captions_empty == 2 and report.captions_truncated == 1


def test_malformed_annotation_json_fails_before_writing_anything(settings, tmp_path, counting):
    root = tmp_path / "coco"
    imagegen.make_coco(root, n=3)
    path = root / "annotations" / "captions_val2017.json"
    path.write_text(path.read_text()[:-40])
    with pytest.raises(SourceError, match="not valid JSON"):
        ingest(settings, root, encoder=counting)
    assert rows(settings, "SELECT count(*) FROM images") == [(0,)]


def test_a_different_model_is_refused(settings, tmp_path, counting):
    imagegen.save_jpeg(tmp_path / "d" / "a.jpg", 0)
    with pytest.raises(ModelMismatch):
        ingest(
            Settings(database_url=settings.database_url, model="ViT-B-32", pretrained="random"),
            tmp_path / "d",
        )


def test_first_ingest_into_an_empty_database_creates_the_schema(empty_settings, tmp_path, counting):
    imagegen.save_jpeg(tmp_path / "d" / "a.jpg", 0)
    tiny = Settings(
        database_url=empty_settings.database_url, model="vstore-tiny", pretrained="random", workers=1
    )
    report = ingest(tiny, tmp_path / "d", encoder=counting)
    assert report.added == 1 and report.random_weights and report.model == "vstore-tiny/random"


@pytest.mark.parametrize("kind", ["csv", "jsonl"])
def test_manifest_ingest_stores_images_and_captions(settings, tmp_path, counting, kind):
    for i in range(3):
        imagegen.save_jpeg(tmp_path / "img" / f"{i}.jpg", i)
    if kind == "csv":
        (tmp_path / "list.csv").write_text(
            "path,caption\n" + "".join(f"img/{i}.jpg,picture {i}\n" for i in range(3)) + "img/0.jpg,again\n"
        )
    else:
        lines = [json.dumps({"path": f"img/{i}.jpg", "captions": [f"picture {i}"]}) for i in range(3)]
        (tmp_path / "list.jsonl").write_text("\n".join(lines) + "\n")
    report = ingest(settings, tmp_path / f"list.{kind}", encoder=counting)
    assert report.format == "manifest" and report.dataset == "list" and report.added == 3
    assert report.captions_added == (4 if kind == "csv" else 3)
    assert rows(settings, "SELECT count(*) FROM captions") == [(report.captions_added,)]
    again = ingest(settings, tmp_path / f"list.{kind}", encoder=counting)
    assert again.unchanged == 3 and again.captions_added == 0


def test_new_annotation_captions_are_added_to_unchanged_images(settings, tmp_path, counting):
    root = tmp_path / "coco"
    data = imagegen.make_coco(root, n=2)
    ingest(settings, root, encoder=counting)
    data["annotations"].append({"id": 500, "image_id": 100, "caption": "a late caption"})
    (root / "annotations" / "captions_val2017.json").write_text(json.dumps(data))
    before = counting.images
    report = ingest(settings, root, encoder=counting)
    assert counting.images == before and report.captions_added == 1 and report.unchanged == 2


def test_bulk_load_defers_and_rebuilds_the_vector_indexes(settings, tmp_path, counting):
    from dataclasses import replace

    from vstore.db.indexes import list_indexes

    root = tmp_path / "d"
    for i in range(4):
        imagegen.save_jpeg(root / f"{i}.jpg", i)
    report = ingest(replace(settings, bulk_load_rows=3), root, encoder=counting)
    assert sorted(report.indexes_rebuilt) == ["captions_embedding_hnsw", "images_embedding_hnsw"]
    with connection(settings) as conn:
        assert {i.name for i in list_indexes(conn)} >= {"images_embedding_hnsw", "captions_embedding_hnsw"}
        assert conn.execute("SELECT count(*) FROM deferred_indexes").fetchone()[0] == 0


def test_ingest_heals_indexes_left_deferred_by_a_crashed_bulk_load(settings, tmp_path, counting):
    from vstore.db.indexes import defer_indexes, list_indexes

    with connection(settings, autocommit=True) as conn:
        defer_indexes(conn, "images")
    imagegen.save_jpeg(tmp_path / "d" / "a.jpg", 0)
    report = ingest(settings, tmp_path / "d", encoder=counting)
    assert report.indexes_rebuilt == ["images_embedding_hnsw"]
    with connection(settings) as conn:
        assert "images_embedding_hnsw" in {i.name for i in list_indexes(conn)}
