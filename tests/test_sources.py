"""Dataset readers on their own (no database): detection, COCO, folders, manifests, bad annotation files."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests import imagegen
from vstore.errors import SourceError
from vstore.ingest.sources import open_source


def test_detects_coco_folder_and_manifest(tmp_path):
    imagegen.make_coco(tmp_path / "coco", n=1)
    imagegen.save_jpeg(tmp_path / "plain" / "a.jpg", 0)
    (tmp_path / "list.csv").write_text("path,caption\nplain/a.jpg,a picture\n")
    assert open_source(tmp_path / "coco").format == "coco"
    assert open_source(tmp_path / "plain").format == "folder"
    assert open_source(tmp_path / "list.csv").format == "manifest"
    assert open_source(tmp_path / "coco", format="folder").format == "folder"


def test_coco_finds_all_splits_and_respects_split_choice(tmp_path):
    imagegen.make_coco(tmp_path, "train2014", n=2, first_id=1)
    imagegen.make_coco(tmp_path, "val2014", n=3, first_id=50)
    assert open_source(tmp_path).splits == ("train2014", "val2014")
    source = open_source(tmp_path, splits=["val2014"])
    assert [r.split for r in source.records()] == ["val2014"] * 3
    with pytest.raises(SourceError, match="splits found: train2014, val2014"):
        open_source(tmp_path, splits=["test2017"])


def test_coco_instance_categories_become_the_images_labels(tmp_path):
    imagegen.make_coco(tmp_path, "val2017", n=3, first_id=10)
    instances = {
        "images": [{"id": i, "file_name": f"{i:012d}.jpg"} for i in (10, 11, 12)],
        "categories": [{"id": 1, "name": "dog"}, {"id": 2, "name": "cat"}, {"id": 3, "name": "frisbee"}],
        "annotations": [
            {"id": 1, "image_id": 10, "category_id": 1},
            {"id": 2, "image_id": 10, "category_id": 2},
            {"id": 3, "image_id": 10, "category_id": 1},  # a second dog: one label
            {"id": 4, "image_id": 11, "category_id": 3},
        ],
    }
    (tmp_path / "annotations" / "instances_val2017.json").write_text(json.dumps(instances))
    labels = {r.source_id: r.label for r in open_source(tmp_path).records()}
    assert labels == {"10": "cat|dog", "11": "frisbee", "12": None}


@pytest.mark.parametrize(
    "content, message",
    [
        ("", "not valid JSON"),
        ('{"images": [{"id": 1, "file_name": "a.jpg"}], "annotations": [', "not valid JSON"),
        ('["not", "coco"]', "not a COCO captions file"),
        ('{"images": [{"file_name": "a.jpg"}]}', "lacks 'id'"),
    ],
)
def test_malformed_annotation_file_is_a_clear_source_error(tmp_path, content, message):
    (tmp_path / "annotations").mkdir()
    (tmp_path / "annotations" / "captions_val2017.json").write_text(content)
    with pytest.raises(SourceError, match=message):
        source = open_source(tmp_path)
        source.estimate()
        list(source.records())


def test_manifest_csv_merges_rows_of_one_image_and_counts_missing_files(tmp_path):
    for name in ("a.jpg", "b.jpg"):
        imagegen.save_jpeg(tmp_path / "img" / name, 0)
    (tmp_path / "m.csv").write_text(
        "path,caption,label\nimg/a.jpg,first,cat\nimg/a.jpg,second,cat\nimg/b.jpg,,dog\nimg/gone.jpg,lost,dog\n"
    )
    source = open_source(tmp_path / "m.csv")
    records = list(source.records())
    assert [(r.path, r.label, [c.text for c in r.captions]) for r in records] == [
        ("img/a.jpg", "cat", ["first", "second"]),
        ("img/b.jpg", "dog", []),
    ]
    assert source.stats.annotations_missing_file == 1 and source.stats.uncaptioned_images == 1
    assert source.stats.missing_files == ["img/gone.jpg"]


def test_manifest_jsonl_with_caption_lists_and_a_bad_line(tmp_path):
    imagegen.save_jpeg(tmp_path / "a.jpg", 0)
    rows = [{"file": "a.jpg", "captions": ["one", "two", ""], "id": 7}]
    (tmp_path / "m.jsonl").write_text("\n".join(json.dumps(r) for r in rows) + "\n")
    source = open_source(tmp_path / "m.jsonl")
    (record,) = list(source.records())
    assert record.source_id == "7" and [c.text for c in record.captions] == ["one", "two"]
    assert source.stats.captions_empty == 1
    (tmp_path / "m.jsonl").write_text(json.dumps(rows[0]) + '\n{"file": "a.jp')
    with pytest.raises(SourceError, match="line 2 is not valid JSON"):
        open_source(tmp_path / "m.jsonl").estimate()


def test_manifest_without_a_path_column_is_refused(tmp_path):
    (tmp_path / "m.csv").write_text("url,caption\nhttp://x/a.jpg,hi\n")
    with pytest.raises(SourceError, match="no path column"):
        open_source(tmp_path / "m.csv").estimate()


def test_folder_split_reads_only_that_top_level_folder(tmp_path: Path):
    imagegen.make_class_folders(tmp_path / "train", {"cat": 1})
    imagegen.make_class_folders(tmp_path / "val", {"dog": 2})
    records = list(open_source(tmp_path, splits=["val"]).records())
    assert [(r.path, r.split, r.label) for r in records] == [
        ("val/dog/0000.jpg", "val", "dog"),
        ("val/dog/0001.jpg", "val", "dog"),
    ]
