"""Faiss side index: built from the database or an export, answers in database ids."""

from __future__ import annotations

import json

import numpy as np
import pytest

from tests.test_export import insert_images, unit_vectors
from vstore.cli import main
from vstore.compare.export import export
from vstore.compare.side_index import SideIndex, build_side_index
from vstore.db.connect import connect
from vstore.errors import ModelMismatch


def database_vectors(settings) -> dict[int, np.ndarray]:
    with connect(settings) as conn:
        rows = conn.execute("SELECT id, embedding FROM images WHERE status = 'ok'").fetchall()
    return {int(r[0]): np.asarray(r[1].to_numpy(), dtype=np.float32) for r in rows}


@pytest.fixture
def gappy_ids(settings) -> dict[int, np.ndarray]:
    """Images whose ids are not contiguous: some deleted, more inserted after, as after re-ingests."""
    ids = insert_images(settings, unit_vectors(60, seed=1))
    with connect(settings) as conn:
        conn.execute("DELETE FROM images WHERE id = ANY(%s)", (ids[::3],))
        conn.commit()
    insert_images(settings, unit_vectors(25, seed=2), dataset="again")
    return database_vectors(settings)


@pytest.mark.parametrize("source", ["database", "export"])
@pytest.mark.parametrize("kind", ["flat", "hnsw"])
def test_id_map_matches_database_ids_after_deletes_and_reinserts(settings, tmp_path, gappy_ids, source, kind):
    export_dir = None
    if source == "export":
        export_dir = tmp_path / "export"
        export(settings, export_dir, tables=("images",))
    manifest = build_side_index(settings, kind, from_export=export_dir, out_dir=tmp_path / "index")
    side = SideIndex.load(tmp_path / "index")

    assert manifest.rows == len(gappy_ids) == 65
    assert sorted(side.ids.tolist()) == sorted(gappy_ids)
    for image_id, vector in gappy_ids.items():
        top = side.search(vector, 3)
        assert top[0].id == image_id and top[0].distance == pytest.approx(0.0, abs=1e-5)


def test_ivf_and_ivfpq_build_and_return_database_ids(settings, tmp_path, gappy_ids):
    for kind in ("ivf", "ivfpq"):
        manifest = build_side_index(settings, kind, out_dir=tmp_path / kind, nlist=4)
        assert manifest.params["nlist"] == 4 and manifest.size_bytes > 0
        hits = SideIndex.load(tmp_path / kind).search(next(iter(gappy_ids.values())), 5, nprobe=4)
        assert {h.id for h in hits} <= set(gappy_ids)


def test_hnsw_parameters_default_to_the_pgvector_index(settings, tmp_path, gappy_ids):
    manifest = build_side_index(settings, "hnsw", out_dir=tmp_path / "h")
    assert manifest.params == {"m": 16, "ef_construction": 64}  # the schema's images_embedding_hnsw
    written = json.loads((tmp_path / "h" / "manifest.json").read_text())
    assert written["model"] == "vstore-tiny" and written["rows"] == 65 and written["build_s"] >= 0


def test_index_from_another_model_is_refused(settings, tmp_path, gappy_ids):
    build_side_index(settings, "flat", out_dir=tmp_path / "f")
    with pytest.raises(ModelMismatch, match="rebuild it"):
        SideIndex.load(tmp_path / "f").check_model("ViT-B-32", "openai", 512)


def test_cli_search_like_returns_database_ids_without_the_query_image(
    settings, tmp_path, gappy_ids, monkeypatch, capsys
):
    monkeypatch.setenv("VSTORE_DATABASE_URL", settings.database_url)
    monkeypatch.setenv("VSTORE_HOME", str(tmp_path / "home"))
    assert main(["faiss", "build", "--type", "flat", "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["rows"] == 65
    query_id = max(gappy_ids)
    assert main(["faiss", "search", "--like", str(query_id), "-k", "4", "--type", "flat", "--json"]) == 0
    hits = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    expected = sorted((float(1 - v @ gappy_ids[query_id]), i) for i, v in gappy_ids.items() if i != query_id)[
        :4
    ]
    assert [h["id"] for h in hits] == [i for _, i in expected]
    assert all(h["path"].startswith("/data/") for h in hits)


def test_cli_search_text_encodes_with_the_database_model(settings, tmp_path, gappy_ids, monkeypatch, capsys):
    monkeypatch.setenv("VSTORE_DATABASE_URL", settings.database_url)
    monkeypatch.setenv("VSTORE_HOME", str(tmp_path / "home"))
    assert main(["faiss", "build", "--type", "hnsw"]) == 0
    capsys.readouterr()
    assert main(["faiss", "search", "a red square", "-k", "3", "--json"]) == 0
    hits = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert len(hits) == 3 and {h["id"] for h in hits} <= set(gappy_ids)
    assert main(["faiss", "search", "a red square", "-k", "3"]) == 0
    table = capsys.readouterr().out.splitlines()
    assert table[0].split() == ["#", "id", "distance", "path"] and len(table) == 4
    assert table[1].split()[1] == str(hits[0]["id"]) and table[1].split()[3].startswith("/data/")


# -- issue 10, item 9: a side index knows which database and which rows it was built from ---------------


def test_an_index_built_before_an_ingest_is_stale_and_the_cli_warns_or_rebuilds(
    settings, tmp_path, gappy_ids, monkeypatch, capsys
):
    side_dir = tmp_path / "flat"
    build_side_index(settings, "flat", out_dir=side_dir)
    assert SideIndex.load(side_dir).check_database(settings) is None
    [new_id] = insert_images(settings, unit_vectors(1, seed=9), dataset="later")

    assert "now 66" in SideIndex.load(side_dir).check_database(settings)
    monkeypatch.setenv("VSTORE_DATABASE_URL", settings.database_url)
    monkeypatch.setenv("VSTORE_HOME", str(tmp_path / "home"))
    like = ["faiss", "search", "--like", str(new_id), "-k", "1", "--index", str(side_dir), "--json"]
    assert main(like) == 0
    captured = capsys.readouterr()
    assert "is stale" in captured.err and "--rebuild" in captured.err

    assert main([*like, "--rebuild"]) == 0
    captured = capsys.readouterr()
    assert "rebuilding" in captured.err and "stale" not in captured.err
    assert SideIndex.load(side_dir).manifest.rows == 66
    assert SideIndex.load(side_dir).check_database(settings) is None


def test_an_updated_vector_with_the_same_row_count_makes_the_index_stale(settings, tmp_path, gappy_ids):
    build_side_index(settings, "flat", out_dir=tmp_path / "f")
    some_id = min(gappy_ids)
    with connect(settings) as conn:
        conn.execute("UPDATE images SET embedding = %s WHERE id = %s", (unit_vectors(1, seed=5)[0], some_id))
        conn.commit()
    assert "updated" in SideIndex.load(tmp_path / "f").check_database(settings)


def test_an_index_from_another_databases_export_is_refused(
    settings, empty_settings, tmp_path, gappy_ids, monkeypatch, capsys
):
    from tests.conftest import TINY_SPEC
    from vstore.db.migrations import upgrade
    from vstore.errors import ForeignIndex

    export(settings, tmp_path / "export", tables=("images",))
    build_side_index(settings, "flat", from_export=tmp_path / "export", out_dir=tmp_path / "f")
    assert SideIndex.load(tmp_path / "f").check_database(settings) is None  # an export of this database
    upgrade(empty_settings, "head", TINY_SPEC)
    other = insert_images(empty_settings, unit_vectors(65, seed=1))  # same shape, other rows

    with pytest.raises(ForeignIndex, match="another database"):
        SideIndex.load(tmp_path / "f").check_database(empty_settings)
    monkeypatch.setenv("VSTORE_DATABASE_URL", empty_settings.database_url)
    monkeypatch.setenv("VSTORE_HOME", str(tmp_path / "home"))
    assert main(["faiss", "search", "--like", str(other[0]), "--index", str(tmp_path / "f")]) == 1
    assert "Error: the Faiss index at" in capsys.readouterr().err
