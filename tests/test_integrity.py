"""The store never mixes, loses or leaks data (issue 10, items 1-3, 6, 7): dataset identity, removed
captions, present rows only, lossless file names, malformed sources. Real embedded PostgreSQL."""

from __future__ import annotations

import json
import os

import numpy as np
import psycopg
import pytest

from tests import imagegen
from vstore.cli import main
from vstore.db.connect import connection
from vstore.db.datasets import list_datasets
from vstore.errors import DatasetConflict, NotFound, SourceError
from vstore.ingest.pipeline import ingest
from vstore.search.store import Store


def rows(settings, sql: str, params: tuple = ()) -> list[tuple]:
    with connection(settings) as conn:
        return conn.execute(sql, params).fetchall()


# -- 1. dataset identity ---------------------------------------------------------------------------------


def test_two_folders_with_the_same_name_are_two_datasets_and_neither_is_repointed(
    settings, tmp_path, tiny_encoder
):
    a, b = tmp_path / "a" / "photos", tmp_path / "b" / "photos"
    imagegen.save_jpeg(a / "x.jpg", 0)
    imagegen.save_jpeg(a / "only_a.jpg", 1)
    imagegen.save_jpeg(b / "x.jpg", 2)  # same relative path, other content

    first = ingest(settings, a, encoder=tiny_encoder)
    second = ingest(settings, b, encoder=tiny_encoder)
    again = ingest(settings, a, encoder=tiny_encoder)

    assert (first.dataset, second.dataset, again.dataset) == ("photos", "photos-2", "photos")
    assert again.missing == 0 and again.added == 0 and again.updated == 0
    stored = rows(
        settings,
        "SELECT d.name, d.root, i.path, i.status FROM images i JOIN datasets d ON d.id = i.dataset_id "
        "ORDER BY 1, 3",
    )
    assert stored == [
        ("photos", str(a.resolve()), "only_a.jpg", "ok"),
        ("photos", str(a.resolve()), "x.jpg", "ok"),
        ("photos-2", str(b.resolve()), "x.jpg", "ok"),
    ]


def test_an_explicit_dataset_name_of_another_folder_is_refused_and_a_moved_folder_keeps_its_rows(
    settings, tmp_path, tiny_encoder
):
    a, b = tmp_path / "a" / "photos", tmp_path / "b" / "photos"
    imagegen.save_jpeg(a / "x.jpg", 0)
    imagegen.save_jpeg(b / "y.jpg", 1)
    ingest(settings, a, encoder=tiny_encoder)
    with pytest.raises(DatasetConflict, match="vstore datasets"):
        ingest(settings, b, dataset="photos", encoder=tiny_encoder)
    with pytest.raises(DatasetConflict, match="already the dataset 'photos'"):
        ingest(settings, a, dataset="other", encoder=tiny_encoder)

    moved = tmp_path / "moved" / "photos"
    a.rename(tmp_path / "a" / "gone")  # the recorded folder no longer exists: --dataset says it moved
    imagegen.save_jpeg(moved / "x.jpg", 0)
    report = ingest(settings, moved, dataset="photos", encoder=tiny_encoder)
    assert report.dataset == "photos" and report.unchanged + report.updated + report.renamed == 1
    assert report.added == 0
    assert rows(settings, "SELECT name, root FROM datasets ORDER BY id") == [("photos", str(moved.resolve()))]


def test_two_manifests_in_one_folder_are_two_datasets(settings, tmp_path, tiny_encoder):
    imagegen.save_jpeg(tmp_path / "m" / "a.jpg", 0)
    imagegen.save_jpeg(tmp_path / "m" / "b.jpg", 1)
    (tmp_path / "m" / "one.csv").write_text("path,caption\na.jpg,a thing\n")
    (tmp_path / "m" / "two.csv").write_text("path,caption\nb.jpg,another thing\n")
    ingest(settings, tmp_path / "m" / "one.csv", encoder=tiny_encoder)
    report = ingest(settings, tmp_path / "m" / "two.csv", encoder=tiny_encoder)
    assert report.missing == 0
    assert rows(settings, "SELECT count(*) FROM images WHERE status = 'ok'") == [(2,)]
    assert [d.name for d in list_datasets(settings)] == ["one", "two"]


def test_vstore_datasets_lists_counts_and_json(settings, tmp_path, tiny_encoder, monkeypatch, capsys):
    root = tmp_path / "coco"
    imagegen.make_coco(root, n=3)
    (root / "val2017" / "bad.jpg").write_bytes(b"not a jpeg")
    ingest(settings, root, encoder=tiny_encoder)
    (root / "val2017" / "000000000100.jpg").unlink()
    ingest(settings, root, encoder=tiny_encoder)

    [info] = list_datasets(settings)
    assert (info.name, info.format, info.root) == ("coco", "coco", str(root.resolve()))
    # image 100 (1 caption) is missing; 101 (2 captions) and 102 (3) are present; bad.jpg failed
    assert (info.images, info.captions, info.missing, info.failed) == (2, 5, 1, 1)

    monkeypatch.setenv("VSTORE_DATABASE_URL", settings.database_url)
    assert main(["datasets", "--json"]) == 0
    listed = json.loads(capsys.readouterr().out)
    assert listed == [
        {
            "name": "coco",
            "root": str(root.resolve()),
            "source": str(root.resolve()),
            "format": "coco",
            "images": 2,
            "captions": 5,
            "missing": 1,
            "failed": 1,
        }
    ]
    assert main(["datasets"]) == 0
    assert "coco" in capsys.readouterr().out


def test_an_unknown_dataset_filter_points_to_vstore_datasets(settings, tmp_path, tiny_encoder):
    imagegen.save_jpeg(tmp_path / "d" / "a.jpg", 0)
    ingest(settings, tmp_path / "d", encoder=tiny_encoder)
    with Store(settings, encoder=tiny_encoder) as store, pytest.raises(NotFound, match="vstore datasets"):
        store.search_vector(np.ones(32, np.float32) / np.sqrt(32), dataset="nope")


# -- 2. removed captions --------------------------------------------------------------------------------


def _captions(settings) -> list[str]:
    return [r[0] for r in rows(settings, "SELECT text FROM captions ORDER BY text")]


def test_a_caption_removed_from_the_coco_annotations_is_deleted_on_reingest(settings, tmp_path, tiny_encoder):
    root = tmp_path / "coco"
    data = imagegen.make_coco(root, n=3)
    ingest(settings, root, encoder=tiny_encoder)
    removed = data["annotations"].pop(1)
    (root / "annotations" / "captions_val2017.json").write_text(json.dumps(data))

    report = ingest(settings, root, encoder=tiny_encoder)

    assert removed["caption"] not in _captions(settings)
    assert len(_captions(settings)) == len(data["annotations"])
    with Store(settings, encoder=tiny_encoder) as store:
        hits = store.search_text(removed["caption"], target="captions", k=20)
    assert removed["caption"] not in {h.text for h in hits}
    assert report.captions_removed == 1 and report.captions_added == 0


def test_sidecar_caption_identity_survives_removing_another_line(settings, tmp_path, tiny_encoder):
    root = tmp_path / "side"
    imagegen.save_jpeg(root / "a.jpg", 0)
    (root / "a.txt").write_text("first line\nsecond line\nthird line\n")
    ingest(settings, root, encoder=tiny_encoder)
    ids_before = dict(rows(settings, "SELECT text, id FROM captions"))

    (root / "a.txt").write_text("second line\nthird line\n")
    report = ingest(settings, root, encoder=tiny_encoder)

    assert dict(rows(settings, "SELECT text, id FROM captions")) == {
        "second line": ids_before["second line"],
        "third line": ids_before["third line"],
    }
    assert report.captions_removed == 1 and report.captions_added == 0  # nothing re-embedded


def test_a_manifest_repeating_a_line_gives_one_caption(settings, tmp_path, tiny_encoder):
    imagegen.save_jpeg(tmp_path / "m" / "a.jpg", 0)
    (tmp_path / "m" / "list.csv").write_text(
        "path,caption\na.jpg,a red circle\na.jpg,a red circle\na.jpg,a blue square\n"
    )
    report = ingest(settings, tmp_path / "m" / "list.csv", encoder=tiny_encoder)
    assert _captions(settings) == ["a blue square", "a red circle"]
    assert report.captions_duplicate == 1


# -- 3. only present rows are searched ------------------------------------------------------------------


def test_captions_of_missing_and_failed_images_are_not_searched(settings, tmp_path, tiny_encoder):
    root = tmp_path / "side"
    for i, name in enumerate(("keep", "gone", "broken")):
        imagegen.save_jpeg(root / f"{name}.jpg", i)
        (root / f"{name}.txt").write_text(f"caption of {name}\n")
    ingest(settings, root, encoder=tiny_encoder)
    (root / "gone.jpg").unlink()
    (root / "broken.jpg").write_bytes(b"broken now")
    ingest(settings, root, encoder=tiny_encoder)
    assert dict(rows(settings, "SELECT path, status FROM images")) == {
        "keep.jpg": "ok",
        "gone.jpg": "missing",
        "broken.jpg": "failed",
    }
    keep_id = rows(settings, "SELECT id FROM images WHERE path = 'keep.jpg'")[0][0]

    with Store(settings, encoder=tiny_encoder) as store:
        cli_hits = store.search_text("caption of gone", target="captions", k=10)
        q = store.embed_text(["caption of gone"])[0]
    assert [h.text for h in cli_hits] == ["caption of keep"]

    from pgvector.psycopg import register_vector

    with psycopg.connect(settings.database_url) as conn:
        register_vector(conn)
        api = conn.execute("SELECT text FROM vstore.search_captions(%s, 10)", (q,)).fetchall()
        for_image = conn.execute("SELECT text FROM vstore.captions_for_image(%s, 10)", (keep_id,)).fetchall()
    assert api == [("caption of keep",)]
    assert for_image == [("caption of keep",)]


# (tests/test_sql_api.py::test_present_only_caption_queries_still_use_the_hnsw_index checks the plans)


# -- 6. file names that are not UTF-8 ---------------------------------------------------------------------


def test_a_latin1_name_and_a_literal_backslash_name_are_two_stable_rows(settings, tmp_path, tiny_encoder):
    root = tmp_path / "names"
    imagegen.make_non_utf8_name(root, index=1)  # b"caf\xe9.jpg"
    imagegen.save_jpeg(root / "caf\\xe9.jpg", 2)  # a backslash, an x, an e and a 9

    first = ingest(settings, root, encoder=tiny_encoder)
    second = ingest(settings, root, encoder=tiny_encoder)

    assert first.added == 2 and first.ok
    assert (second.unchanged, second.updated, second.added, second.missing) == (2, 0, 0, 0)
    stored = dict(rows(settings, "SELECT path, content_hash FROM images"))
    assert set(stored) == {"caf\\xe9.jpg", "caf\\\\xe9.jpg"}
    assert len(set(stored.values())) == 2
    with Store(settings, encoder=tiny_encoder) as store:
        paths = {store.get(i).path for (i,) in rows(settings, "SELECT id FROM images")}
    assert {os.fsencode(p) for p in paths} == {
        os.fsencode(root) + b"/caf\xe9.jpg",
        os.fsencode(root) + b"/caf\\xe9.jpg",
    }
    assert all(os.path.isfile(p) for p in paths)


def test_stored_paths_round_trip_through_the_escapes():
    from vstore.encode.paths import native_path, stored_path

    for name in ("plain/a.jpg", "caf\udce9.jpg", "caf\\xe9.jpg", "a\\\\b", "é/ü.png", "x\\"):
        assert native_path(stored_path(name)) == name
    assert stored_path("caf\udce9.jpg") != stored_path("caf\\xe9.jpg")


# -- 7. malformed sources ---------------------------------------------------------------------------------


def test_non_string_captions_are_rejected_and_counted(settings, tmp_path, tiny_encoder):
    imagegen.save_jpeg(tmp_path / "m" / "a.jpg", 0)
    lines = [
        {"path": "a.jpg", "caption": ["a", "list"]},
        {"path": "a.jpg", "caption": 42},
        {"path": "a.jpg", "captions": ["a real caption", {"not": "text"}]},
    ]
    (tmp_path / "m" / "list.jsonl").write_text("".join(json.dumps(line) + "\n" for line in lines))
    report = ingest(settings, tmp_path / "m" / "list.jsonl", encoder=tiny_encoder)
    assert _captions(settings) == ["a real caption"]
    assert report.captions_invalid == 3


def test_a_csv_manifest_with_a_utf8_bom_is_accepted(settings, tmp_path, tiny_encoder):
    imagegen.save_jpeg(tmp_path / "m" / "a.jpg", 0)
    (tmp_path / "m" / "excel.csv").write_bytes("\ufeffpath,caption\na.jpg,café au lait\n".encode())
    report = ingest(settings, tmp_path / "m" / "excel.csv", encoder=tiny_encoder)
    assert report.added == 1 and _captions(settings) == ["café au lait"]


def test_a_coco_file_that_fails_validation_leaves_no_dataset_row(settings, tmp_path, tiny_encoder):
    root = tmp_path / "coco"
    data = imagegen.make_coco(root, n=2)
    del data["images"][1]["file_name"]
    (root / "annotations" / "captions_val2017.json").write_text(json.dumps(data))
    with pytest.raises(SourceError, match="lacks 'id' or 'file_name'"):
        ingest(settings, root, encoder=tiny_encoder)
    assert rows(settings, "SELECT count(*) FROM datasets") == [(0,)]


def test_a_source_failing_mid_ingest_leaves_no_empty_dataset_row(
    settings, tmp_path, tiny_encoder, monkeypatch
):
    """The general mechanism behind the COCO case: whatever fails before a row is written, the dataset
    row this ingest created goes again."""
    from vstore.ingest.sources.folder import FolderSource

    def broken(self):
        raise SourceError("cannot read the tree")
        yield  # pragma: no cover

    monkeypatch.setattr(FolderSource, "records", broken)
    imagegen.save_jpeg(tmp_path / "d" / "a.jpg", 0)
    with pytest.raises(SourceError):
        ingest(settings, tmp_path / "d", encoder=tiny_encoder)
    assert rows(settings, "SELECT count(*) FROM datasets") == [(0,)]
