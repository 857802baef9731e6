"""`vstore reembed`: the model switch. Counts unchanged, every vector new, the model record and indexes
updated, search working before, during (old vectors) and after; a crash mid-way (in process, and a
SIGKILLed subprocess) loses nothing and the re-run continues; a dimension change migrates the columns."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from tests import imagegen
from tests.pause import child_env, wait_until_paused
from vstore.config import Settings
from vstore.db.connect import connection, vector_array
from vstore.db.indexes import list_indexes
from vstore.errors import ConfigError
from vstore.ingest.pipeline import ingest
from vstore.search.store import Store
from vstore.train.reembed import ReembedProgress, reembed


def make_checkpoint(path: Path, seed: int = 1) -> Path:
    """The tiny architecture with other random weights, saved as an open_clip checkpoint."""
    import open_clip
    import torch

    torch.manual_seed(seed)
    model, _, _ = open_clip.create_model_and_transforms("vstore-tiny", pretrained=None)
    torch.save({"state_dict": model.state_dict()}, path)
    return path


def shapes(settings: Settings, root: Path, tiny_encoder, n: int, seed: int = 0) -> None:
    imagegen.make_captioned_shapes(root, n, seed=seed)
    ingest(settings, root, encoder=tiny_encoder)


def vectors(settings: Settings, table: str) -> dict[int, np.ndarray]:
    assert table in ("images", "captions")
    with connection(settings) as conn:
        rows = conn.execute(f"SELECT id, embedding FROM {table} WHERE embedding IS NOT NULL").fetchall()
    return {int(r[0]): vector_array(r[1]) for r in rows}


def counts(settings: Settings) -> dict[str, int]:
    with Store(settings) as store:
        return {k: v for k, v in store.counts().items() if k != "text_queries"}


def model_row(settings: Settings) -> tuple:
    with connection(settings) as conn:
        return conn.execute(
            "SELECT name, pretrained, dim, checkpoint_sha256, random_weights FROM embedding_model"
        ).fetchone()


def search_ids(settings: Settings, text: str = "a red circle on the left") -> list[int]:
    with Store(settings) as store:
        return [hit.id for hit in store.search_text(text, k=5)]


def column_types(settings: Settings) -> dict[str, tuple[str, str]]:
    with connection(settings) as conn:
        rows = conn.execute(
            "SELECT c.relname, format_type(a.atttypid, a.atttypmod), a.attstorage FROM pg_attribute a "
            "JOIN pg_class c ON c.oid = a.attrelid WHERE a.attname = 'embedding' "
            "AND c.relname IN ('images', 'captions', 'text_queries')"
        ).fetchall()
    return {r[0]: (r[1], r[2]) for r in rows}


def test_reembed_gives_every_row_a_new_vector_and_keeps_search_working(settings, tmp_path, tiny_encoder):
    from vstore.encode.encoder import OpenClipEncoder, resolve_spec
    from vstore.encode.images import prepare_file

    shapes(settings, tmp_path / "shapes", tiny_encoder, 12)
    checkpoint = make_checkpoint(tmp_path / "other.pt")
    before_counts, before_images, before_captions = (
        counts(settings),
        vectors(settings, "images"),
        vectors(settings, "captions"),
    )
    before_hits = search_ids(settings)  # also puts the query in the text cache
    during: list[list[int]] = []

    def search_midway(event: ReembedProgress) -> None:
        if event.phase == "captions" and not during:  # images done, nothing swapped yet
            during.append(search_ids(settings))

    report = reembed(settings, str(checkpoint), progress=search_midway)

    assert during == [before_hits]  # search used the old vectors while the new ones were written
    assert counts(settings) == before_counts
    after_images, after_captions = vectors(settings, "images"), vectors(settings, "captions")
    assert after_images.keys() == before_images.keys() and after_captions.keys() == before_captions.keys()
    assert all(not np.allclose(before_images[i], after_images[i]) for i in before_images)
    assert all(not np.allclose(before_captions[i], after_captions[i]) for i in before_captions)
    assert report.images == 12 and report.captions == 36 and report.text_cache_cleared == 1
    name, pretrained, dim, sha, random_weights = model_row(settings)
    spec = resolve_spec("vstore-tiny", str(checkpoint))
    assert (name, pretrained, dim, sha, random_weights) == (
        "vstore-tiny",
        str(checkpoint.resolve()),
        32,
        spec.checkpoint_sha256,
        False,
    )
    with connection(settings) as conn:
        assert {i.name for i in list_indexes(conn) if i.valid} == {
            "images_embedding_hnsw",
            "captions_embedding_hnsw",
        }
        assert conn.execute("SELECT count(*) FROM text_queries").fetchone()[0] == 0
        assert conn.execute("SELECT count(*) FROM reembed_images").fetchone()[0] == 0
        some_id, path = conn.execute(
            "SELECT i.id, d.root || '/' || i.path FROM images i "
            "JOIN datasets d ON d.id = i.dataset_id LIMIT 1"
        ).fetchone()
    encoder = OpenClipEncoder(spec, device="cpu")  # the stored vector is the new model's
    expected = encoder.encode_images(prepare_file(path, encoder.image_transform())[None])[0]
    assert np.allclose(after_images[some_id], expected, atol=1e-5)
    assert len(search_ids(settings)) == 5  # search loads the new model from the record
    again = reembed(settings, str(checkpoint))  # idempotent: the re-run after a finished switch
    assert again.already_switched and again.images_encoded == 0
    assert vectors(settings, "images").keys() == after_images.keys()


class Crash(Exception):
    pass


def test_a_crash_mid_way_loses_nothing_and_the_rerun_continues_with_rows_ingested_meanwhile(
    settings, tmp_path, tiny_encoder
):
    shapes(settings, tmp_path / "a", tiny_encoder, 10)
    checkpoint = make_checkpoint(tmp_path / "other.pt")
    before = vectors(settings, "images")
    old_model = model_row(settings)

    def crash_after_first_batch(event: ReembedProgress) -> None:
        if event.phase == "images":
            raise Crash

    with pytest.raises(Crash):
        reembed(settings.with_overrides(batch_size=4), str(checkpoint), progress=crash_after_first_batch)
    assert model_row(settings) == old_model
    assert all(np.array_equal(before[i], v) for i, v in vectors(settings, "images").items())
    assert len(search_ids(settings)) == 5
    shapes(settings, tmp_path / "b", tiny_encoder, 3, seed=1)  # an ingest while the switch is pending

    report = reembed(settings.with_overrides(batch_size=4), str(checkpoint))

    assert report.images == 13 and report.images_encoded == 13 - 4  # the first batch was kept
    after = vectors(settings, "images")
    assert len(after) == 13 and all(not np.allclose(before[i], after[i]) for i in before)
    assert model_row(settings)[1] == str(checkpoint.resolve())


def register_48d_model(folder: Path) -> str:
    """The tiny architecture with 48-d embeddings, registered with open_clip under a test name."""
    import open_clip

    from vstore.resources import model_configs_dir

    config = json.loads((model_configs_dir() / "vstore-tiny.json").read_text())
    config["embed_dim"] = 48
    (folder / "vstore-test-48d.json").write_text(json.dumps(config))
    open_clip.add_model_config(folder / "vstore-test-48d.json")
    return "vstore-test-48d"


def test_switching_to_another_dimension_migrates_the_columns(settings, tmp_path, tiny_encoder):
    register_48d_model(tmp_path)
    shapes(settings, tmp_path / "shapes", tiny_encoder, 6)
    assert column_types(settings)["images"] == ("vector(32)", "p")

    report = reembed(settings, "random", model="vstore-test-48d")

    assert report.dim_changed and report.images == 6 and report.captions == 18
    assert column_types(settings) == {t: ("vector(48)", "p") for t in ("images", "captions", "text_queries")}
    assert {len(v) for v in vectors(settings, "images").values()} == {48}
    assert model_row(settings)[:3] == ("vstore-test-48d", "random", 48)
    with connection(settings) as conn:
        assert {i.name for i in list_indexes(conn) if i.valid} == {
            "images_embedding_hnsw",
            "captions_embedding_hnsw",
        }
    assert len(search_ids(settings)) == 5


def test_a_dimension_change_keeps_halfvec_storage_the_one_place_it_is_recorded(
    empty_settings, tmp_path, tiny_encoder
):
    # The storage is the column type (revision 0007 dropped embedding_model.storage): a reembed to
    # another dimension keeps halfvec, and status, init and the indexes all read it from the columns.
    from vstore.db.migrations import init, stored_vector_type, upgrade
    from vstore.db.status import database_status
    from vstore.encode.encoder import TINY_TEST_MODEL, ModelSpec

    upgrade(empty_settings, "head", ModelSpec(name=TINY_TEST_MODEL, pretrained="random", dim=32), "halfvec")
    shapes(empty_settings, tmp_path / "shapes", tiny_encoder, 4)

    reembed(empty_settings, "random", model=register_48d_model(tmp_path))

    assert column_types(empty_settings) == {
        "images": ("halfvec(48)", "p"),
        "captions": ("halfvec(48)", "p"),
        "text_queries": ("vector(48)", "p"),  # the text cache is always full precision
    }
    assert stored_vector_type(empty_settings) == database_status(empty_settings)["storage"] == "halfvec"
    with connection(empty_settings) as conn:
        assert conn.execute(
            "SELECT count(*) FROM information_schema.columns WHERE table_name = 'embedding_model' "
            "AND column_name = 'storage'"
        ).fetchone() == (0,)
        opclasses = {
            r[0]
            for r in conn.execute(
                "SELECT substring(indexdef from 'USING hnsw \\(embedding (\\w+)\\)') FROM pg_indexes "
                "WHERE schemaname = 'public' AND indexdef LIKE '%%USING hnsw%%'"
            )
        }
    assert opclasses == {"halfvec_cosine_ops"}
    with pytest.raises(ConfigError, match="stores its vectors as halfvec"):
        init(empty_settings, "vstore-test-48d", "random", storage="vector")
    assert len(search_ids(empty_settings)) == 4


def _count(settings: Settings, sql: str) -> int:
    with connection(settings) as conn:
        return int(conn.execute(sql).fetchone()[0])


@pytest.mark.slow
def test_sigkill_during_reembed_then_rerun_completes_with_nothing_lost(settings, tmp_path, tiny_encoder):
    n = 60
    shapes(settings, tmp_path / "shapes", tiny_encoder, n)
    checkpoint = make_checkpoint(tmp_path / "other.pt")
    before = vectors(settings, "images")
    env = child_env(settings, VSTORE_THREADS="1")
    command = [
        sys.executable,
        "-m",
        "vstore.cli",
        "reembed",
        "--pretrained",
        str(checkpoint),
        "--batch-size",
        "2",
        "--json",
    ]
    # the switch waits after 4 images re-embedded (2 committed batches): the SIGKILL lands mid-switch
    paused = child_env(settings, pause="reembed.images:4", VSTORE_THREADS="1")
    process = subprocess.Popen(command, env=paused, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    wait_until_paused(process, settings.home, "reembed.images")
    process.send_signal(signal.SIGKILL)
    process.wait()
    done = _count(settings, "SELECT count(*) FROM reembed_images")
    assert done == 4 and _count(settings, "SELECT count(*) FROM reembed_run") == 1
    assert model_row(settings)[1] == "random" and len(vectors(settings, "images")) == n
    assert len(search_ids(settings)) == 5  # old vectors, still searchable

    rerun = subprocess.run(command, env=env, capture_output=True, text=True, timeout=300)

    assert rerun.returncode == 0, rerun.stderr
    report = json.loads(rerun.stdout)
    assert report["images"] == n and report["images_encoded"] == n - done
    after = vectors(settings, "images")
    assert after.keys() == before.keys() and all(not np.allclose(before[i], after[i]) for i in before)
    assert _count(settings, "SELECT count(*) FROM captions WHERE embedding IS NOT NULL") == 3 * n
    assert model_row(settings)[1] == str(checkpoint.resolve())
    assert len(search_ids(settings)) == 5


def test_vstore_eval_on_the_switched_database_reproduces_the_after_scores(
    settings, tmp_path, tiny_encoder, monkeypatch
):
    from vstore.cli import main
    from vstore.train.finetune import Recipe, finetune

    imagegen.make_captioned_shapes(tmp_path / "train", 16, seed=0)
    imagegen.make_captioned_shapes(tmp_path / "val", 6, seed=1)
    ingest(settings, tmp_path / "train", dataset="shapes-train", encoder=tiny_encoder)
    ingest(settings, tmp_path / "val", dataset="shapes-val", encoder=tiny_encoder)
    current = settings.with_overrides(threads=1)
    run = finetune(
        current, tmp_path / "run", Recipe(epochs=2, lr=1e-3, batch_size=8), eval_dataset="shapes-val"
    )
    assert run.split["heldout_images"] == 6 and run.split["train_images"] == 16
    reembed(current, str(tmp_path / "run"))
    # fine-tuned from random weights: the lineage keeps the warning, and the label names the file, not a path
    name, pretrained, _, sha, random_weights = model_row(settings)
    assert random_weights is True and pretrained.endswith(".pt")
    with Store(settings) as store:
        assert store.model.random_weights
        assert store.model.label == f"{name} (checkpoint {Path(pretrained).name}, sha256 {sha[:12]})"
    monkeypatch.setenv("VSTORE_DATABASE_URL", settings.database_url)
    monkeypatch.setenv("VSTORE_HOME", str(settings.home))

    args = [
        "eval",
        "--methods",
        "exact-numpy",
        "--dataset",
        "shapes-val",
        "--queries",
        "0",
        "--k",
        "1,3,5,7,10",
    ]
    assert main([*args, "--out", str(tmp_path / "eval.json")]) == 0

    measured = json.loads((tmp_path / "eval.json").read_text())["methods"]["exact-numpy"]
    after = run.scores["after"]
    queries = 6 * 3
    for k in (1, 3, 5, 7, 10):
        # the same vectors up to float rounding between batch shapes: at most a near-tie may flip
        assert abs(
            measured[f"caption_image.precision@{k}"] - after[f"search.caption_image.precision@{k}"]
        ) <= (1 / queries + 1e-9)


def test_an_image_missing_during_a_reembed_is_encoded_when_its_file_returns_unchanged(
    settings, tmp_path, tiny_encoder
):
    """Issue 20, item 10: reembed clears the vector of a missing image (it has none from the new model);
    when the file comes back with the same size and mtime, the next ingest must encode it, not mark it
    present with no vector (then it counted as present and no search found it)."""
    root = tmp_path / "shapes"
    shapes(settings, root, tiny_encoder, 6)
    returning, away = root / "00002.png", tmp_path / "away.png"
    os.rename(returning, away)  # a rename keeps size and mtime: the file comes back 'unchanged'
    ingest(settings, root, encoder=tiny_encoder)
    reembed(settings, str(make_checkpoint(tmp_path / "other.pt")))
    with connection(settings) as conn:
        image_id, status, embedding = conn.execute(
            "SELECT id, status, embedding FROM images WHERE path = %s", (returning.name,)
        ).fetchone()
    assert (status, embedding) == ("missing", None)

    os.rename(away, returning)
    report = ingest(settings, root)  # the database's new model (the checkpoint), loaded by the ingest

    assert report.images_encoded == 1
    with connection(settings) as conn:
        status, has_vector = conn.execute(
            "SELECT status, embedding IS NOT NULL FROM images WHERE id = %s", (image_id,)
        ).fetchone()
    assert (status, has_vector) == ("ok", True)
    with Store(settings) as store:
        assert store.search_image(returning, k=1)[0].id == image_id
