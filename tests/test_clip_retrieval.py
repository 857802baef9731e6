"""Embeddings from a cluster (issue 24): clip-retrieval's layout in (vstore import) and out (vstore export
--format clip-retrieval), and the Parquet export read back by DuckDB."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from tests.conftest import TINY_SPEC
from tests.imagegen import make_coco
from vstore.compare.export import export
from vstore.config import Settings
from vstore.db.connect import connect
from vstore.errors import ModelMismatch, SourceError
from vstore.ingest.importer import import_clip_retrieval
from vstore.ingest.pipeline import ingest
from vstore.search.store import Store

DIM = TINY_SPEC.dim


def write_layout(
    folder: Path, shards: list[int], *, dim: int = DIM, seed: int = 0, text: bool = True, scale: float = 1.0
) -> dict[str, np.ndarray]:
    """A clip-retrieval output folder with the given rows per shard; returns the vectors by path."""
    rng = np.random.default_rng(seed)
    by_path = {}
    for folder_name in ("img_emb", "text_emb", "metadata"):
        (folder / folder_name).mkdir(parents=True, exist_ok=True)
    row = 0
    for number, rows in enumerate(shards):
        images = rng.standard_normal((rows, dim)).astype(np.float32)
        images /= np.linalg.norm(images, axis=1, keepdims=True)
        images *= scale
        paths = [f"pics/{row + i:05d}.jpg" for i in range(rows)]
        np.save(folder / "img_emb" / f"img_emb_{number}.npy", images)
        columns = {"image_path": paths, "url": [f"http://x/{p}" for p in paths]}
        if text:
            texts = rng.standard_normal((rows, dim)).astype(np.float32)
            texts /= np.linalg.norm(texts, axis=1, keepdims=True)
            np.save(folder / "text_emb" / f"text_emb_{number}.npy", texts)
            columns["caption"] = [f"caption number {row + i}" for i in range(rows)]
        pq.write_table(pa.table(columns), folder / "metadata" / f"metadata_{number}.parquet")
        by_path.update(zip(paths, images, strict=True))
        row += rows
    return by_path


def counts(settings: Settings) -> tuple[int, int, int]:
    with connect(settings) as conn:
        images = conn.execute("SELECT count(*) FROM images WHERE origin = 'imported'").fetchone()[0]
        captions = conn.execute("SELECT count(*) FROM captions WHERE origin = 'imported'").fetchone()[0]
        datasets = conn.execute("SELECT count(*) FROM datasets").fetchone()[0]
    return images, captions, datasets


def test_import_loads_every_shard_and_a_rerun_adds_nothing(settings, tmp_path):
    vectors = write_layout(tmp_path / "cr", [7, 5, 3])
    report = import_clip_retrieval(settings, tmp_path / "cr", model=TINY_SPEC.name, pretrained="random")
    assert (report.shards, report.rows, report.images_added, report.captions_added) == (3, 15, 15, 15)
    assert counts(settings) == (15, 15, 1)
    with connect(settings) as conn:
        stored = conn.execute("SELECT path, embedding FROM images WHERE path = 'pics/00008.jpg'").fetchone()
    np.testing.assert_allclose(np.asarray(stored[1].to_numpy()), vectors["pics/00008.jpg"], atol=1e-6)
    again = import_clip_retrieval(settings, tmp_path / "cr", model=TINY_SPEC.name, pretrained="random")
    assert (again.images_added, again.captions_added) == (0, 0)
    assert counts(settings) == (15, 15, 1)


def test_import_normalises_vectors_and_says_how_many(settings, tmp_path):
    write_layout(tmp_path / "cr", [4], scale=3.0)
    report = import_clip_retrieval(settings, tmp_path / "cr", model=TINY_SPEC.name, pretrained="random")
    assert report.images_normalised == 4 and report.captions_normalised == 0
    with connect(settings) as conn:
        norms = [r[0] for r in conn.execute("SELECT vector_norm(embedding::vector) FROM images")]
    assert np.allclose(norms, 1.0, atol=1e-5)


@pytest.mark.parametrize(
    "damage, message",
    [
        ("missing_image_shard", "shard 1: img_emb/img_emb_1.npy is missing"),
        ("missing_text_shard", "shard 1: text_emb/text_emb_1.npy is missing"),
        ("row_mismatch", "shard 1: img_emb_1.npy has 5 rows but metadata_1.parquet has 4"),
        ("nan", "shard 1: img_emb_1.npy row 2 holds NaN"),
        ("wrong_dim", "shard 0: img_emb_0.npy holds 16-d vectors but the model is 32-d"),
    ],
)
def test_bad_input_is_one_line_naming_the_shard_and_writes_nothing(settings, tmp_path, damage, message):
    folder = tmp_path / "cr"
    write_layout(folder, [6, 5])
    if damage == "missing_image_shard":
        (folder / "img_emb" / "img_emb_1.npy").unlink()
    elif damage == "missing_text_shard":
        (folder / "text_emb" / "text_emb_1.npy").unlink()
    elif damage == "row_mismatch":
        meta = pq.read_table(folder / "metadata" / "metadata_1.parquet").slice(0, 4)
        pq.write_table(meta, folder / "metadata" / "metadata_1.parquet")
    elif damage == "nan":
        bad = np.load(folder / "img_emb" / "img_emb_1.npy")
        bad[2, 3] = np.nan
        np.save(folder / "img_emb" / "img_emb_1.npy", bad)
    elif damage == "wrong_dim":
        for n, rows in enumerate([6, 5]):
            np.save(folder / "img_emb" / f"img_emb_{n}.npy", np.ones((rows, 16), np.float32) / 4)
    with pytest.raises(SourceError) as caught:
        import_clip_retrieval(settings, folder, model=TINY_SPEC.name, pretrained="random")
    assert message in str(caught.value) and "\n" not in str(caught.value)
    assert counts(settings) == (0, 0, 0)


def test_import_refuses_another_model_than_the_recorded_one(settings, tmp_path):
    write_layout(tmp_path / "cr", [3])
    with pytest.raises(ModelMismatch):
        import_clip_retrieval(settings, tmp_path / "cr", model="ViT-B-32", pretrained="openai")


def test_paths_outside_root_are_refused(settings, tmp_path):
    folder = tmp_path / "cr"
    write_layout(folder, [2])
    meta = pq.read_table(folder / "metadata" / "metadata_0.parquet")
    meta = meta.set_column(0, "image_path", pa.array(["/elsewhere/a.jpg", str(tmp_path / "root" / "b.jpg")]))
    pq.write_table(meta, folder / "metadata" / "metadata_0.parquet")
    (tmp_path / "root").mkdir()
    with pytest.raises(SourceError, match="shard 0 row 0: image_path '/elsewhere/a.jpg' is outside --root"):
        import_clip_retrieval(
            settings, folder, model=TINY_SPEC.name, pretrained="random", root=tmp_path / "root"
        )
    assert counts(settings) == (0, 0, 0)


def test_a_killed_import_resumes_where_it_stopped(settings, tmp_path):
    """A crash between chunks keeps the committed ones; the re-run adds only the rest."""
    folder = tmp_path / "cr"
    write_layout(folder, [10, 10])
    calls = []

    def die_after_first_chunk(done: int, total: int) -> None:
        calls.append(done)
        if len(calls) == 1:
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        import_clip_retrieval(
            settings,
            folder,
            model=TINY_SPEC.name,
            pretrained="random",
            chunk_rows=4,
            progress=die_after_first_chunk,
        )
    assert counts(settings)[0] == 4
    report = import_clip_retrieval(settings, folder, model=TINY_SPEC.name, pretrained="random")
    assert report.images_added == 16
    assert counts(settings) == (20, 20, 1)


def _search_by_path(settings: Settings, query: np.ndarray) -> list[tuple[str, float]]:
    with Store(settings) as store:
        hits = store.search_vector(query, k=8, target="images")
    return [(h.relative_path, h.distance) for h in hits]


def test_export_then_import_round_trip_gives_the_same_search_results(
    settings, tmp_path, tiny_encoder, empty_settings
):
    root = tmp_path / "coco"
    make_coco(root, n=8)
    ingest(settings, root, encoder=tiny_encoder)
    report = export(settings, tmp_path / "out", format="clip-retrieval", chunk_rows=3)
    assert report.counts == {"images": 8}
    meta = pq.read_table(tmp_path / "out" / "metadata" / "metadata_0.parquet").to_pydict()
    assert all(Path(p).is_file() for p in meta["image_path"])
    imported = import_clip_retrieval(
        empty_settings, tmp_path / "out", model=TINY_SPEC.name, pretrained="random", root=root
    )
    assert imported.images_added == 8 and imported.captions_added == 8
    query = np.random.default_rng(1).standard_normal(DIM).astype(np.float32)
    query /= np.linalg.norm(query)
    before, after = _search_by_path(settings, query), _search_by_path(empty_settings, query)
    assert [p for p, _ in before] == [p for p, _ in after]
    np.testing.assert_allclose([d for _, d in before], [d for _, d in after], atol=1e-6)


def test_export_shards_keep_rows_aligned(settings, tmp_path, tiny_encoder):
    root = tmp_path / "coco"
    make_coco(root, n=7)
    ingest(settings, root, encoder=tiny_encoder)
    from vstore.compare.export_clip_retrieval import export_clip_retrieval

    out = tmp_path / "out"
    out.mkdir()
    with connect(settings) as conn:
        conn.execute("BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY")
        files = export_clip_retrieval(settings, conn, out, DIM, 7, chunk_rows=2, shard_rows=3)
        truth = dict(conn.execute("SELECT id, embedding FROM images").fetchall())
    assert sorted(f for f in files if f.startswith("img_emb")) == [
        "img_emb/img_emb_0.npy",
        "img_emb/img_emb_1.npy",
        "img_emb/img_emb_2.npy",
    ]
    for n, rows in enumerate([3, 3, 1]):
        vectors = np.load(out / "img_emb" / f"img_emb_{n}.npy")
        ids = pq.read_table(out / "metadata" / f"metadata_{n}.parquet").column("vstore_id").to_pylist()
        assert vectors.shape == (rows, DIM) and len(ids) == rows
        for vector, image_id in zip(vectors, ids, strict=True):
            np.testing.assert_allclose(vector, truth[image_id].to_numpy(), atol=1e-7)


def test_parquet_export_reads_back_in_duckdb_with_the_same_vectors(settings, tmp_path, tiny_encoder):
    duckdb = pytest.importorskip("duckdb")
    root = tmp_path / "coco"
    make_coco(root, n=6)
    ingest(settings, root, encoder=tiny_encoder)
    export(settings, tmp_path / "out", format="parquet", chunk_rows=4)
    rows = duckdb.sql(
        f"SELECT id, embedding FROM '{tmp_path / 'out' / 'images.parquet'}' ORDER BY id"
    ).fetchall()
    with connect(settings) as conn:
        truth = dict(conn.execute("SELECT id, embedding FROM images").fetchall())
    assert len(rows) == 6
    for image_id, embedding in rows:
        np.testing.assert_allclose(np.asarray(embedding, np.float32), truth[image_id].to_numpy(), atol=1e-7)
    # the docs/scale.md query, as written there
    images = tmp_path / "out" / "images.parquet"
    nearest = duckdb.sql(
        f"SELECT id, path, list_cosine_similarity(embedding, (SELECT embedding FROM '{images}' LIMIT 1)) "
        f"AS sim FROM '{images}' ORDER BY sim DESC LIMIT 5"
    ).fetchall()
    assert len(nearest) == 5 and nearest[0][2] == pytest.approx(1.0, abs=1e-5)
    captions = duckdb.sql(
        f"SELECT count(*), min(len(embedding)) FROM '{tmp_path / 'out' / 'captions.parquet'}'"
    )
    assert captions.fetchall()[0] == (sum(1 + i % 5 for i in range(6)), DIM)


def test_a_later_ingest_of_the_root_adopts_the_imported_vectors_without_encoding(
    settings, tmp_path, tiny_encoder, empty_settings
):
    """import --root ROOT, then `vstore ingest ROOT`: the same dataset, the imported vectors kept (not
    re-encoded), the files' hashes and sizes recorded; a second ingest reads nothing."""
    root = tmp_path / "coco"
    make_coco(root, n=5)
    ingest(settings, root, encoder=tiny_encoder)
    export(settings, tmp_path / "out", format="clip-retrieval")
    # vectors that differ from what the tiny model would compute: kept only if adopted, not re-encoded
    for path in (tmp_path / "out" / "img_emb").iterdir():
        np.save(path, -np.load(path))
    import_clip_retrieval(
        empty_settings, tmp_path / "out", model=TINY_SPEC.name, pretrained="random", root=root
    )
    with connect(empty_settings) as conn:
        before = dict(conn.execute("SELECT path, embedding FROM images").fetchall())
    report = ingest(empty_settings, root, encoder=tiny_encoder)
    assert report.imported_adopted == 5 and report.added == 0 and report.images_encoded == 0
    with connect(empty_settings) as conn:
        after = conn.execute("SELECT path, embedding, content_hash, width, origin FROM images").fetchall()
        datasets = conn.execute("SELECT count(*) FROM datasets").fetchone()[0]
    assert datasets == 1
    for path, embedding, content_hash, width, origin in after:
        np.testing.assert_allclose(embedding.to_numpy(), before[path].to_numpy())
        assert content_hash and width == 64 and origin == "imported"
    again = ingest(empty_settings, root, encoder=tiny_encoder)
    assert again.unchanged == 5 and again.imported_adopted == 0
