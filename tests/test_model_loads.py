"""The model is loaded only when something needs encoding: an unchanged re-run of an ingest, a search by
a cached text and an index rebuild load nothing (loads counted through vstore.encode.encoder.load_encoder,
which every lazy path calls)."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from tests import imagegen
from tests.pause import child_env
from vstore.ingest.pipeline import ingest
from vstore.search.store import Store


@pytest.fixture
def loads(monkeypatch) -> list[str]:
    """Every model load, by model label; the real loader still runs."""
    from vstore.encode import encoder as encoder_module

    original = encoder_module.load_encoder
    seen: list[str] = []

    def counting(spec, device="auto", threads=None):
        seen.append(spec.label)
        return original(spec, device=device, threads=threads)

    monkeypatch.setattr(encoder_module, "load_encoder", counting)
    return seen


def test_unchanged_rerun_of_an_ingest_loads_no_model(settings, tmp_path, loads):
    root = tmp_path / "coco"
    imagegen.make_coco(root, n=5)
    first = ingest(settings, root)
    assert loads == ["vstore-tiny/random"]
    assert first.model_loaded and first.model_load_s > 0 and first.device == "cpu"
    assert first.added == 5 and first.captions_added == sum(1 + i % 5 for i in range(5))

    again = ingest(settings, root)
    assert loads == ["vstore-tiny/random"]  # still one load: the re-run encoded nothing
    assert (again.unchanged, again.added, again.captions_added) == (5, 0, 0)
    assert not again.model_loaded and again.model_load_s == 0 and again.device == ""


def test_a_changed_caption_alone_loads_the_model_once(settings, tmp_path, loads):
    root = tmp_path / "coco"
    data = imagegen.make_coco(root, n=3)
    ingest(settings, root)
    data["annotations"][0]["caption"] = "a completely different sentence"
    (root / "annotations" / "captions_val2017.json").write_text(json.dumps(data))

    report = ingest(settings, root)
    assert loads == ["vstore-tiny/random"] * 2
    assert report.model_loaded and (report.unchanged, report.captions_added) == (3, 1)


def test_search_by_a_cached_text_and_an_index_rebuild_load_no_model(settings, tmp_path, loads):
    from vstore.db.connect import connection
    from vstore.db.indexes import create_index

    root = tmp_path / "coco"
    imagegen.make_coco(root, n=3)
    ingest(settings, root)
    with Store(settings) as store:
        store.cache_texts(["a red circle"])
    assert len(loads) == 2  # the ingest's, then the new text's

    with Store(settings) as store:
        hits = store.search_text("a red circle", k=2)
        assert len(hits) == 2 and not store.encoder_loaded
    with connection(settings, autocommit=True) as conn:
        create_index(conn, "images", "hnsw")
        create_index(conn, "captions", "ivfflat")
    assert len(loads) == 2


HEAVY = "sorted(m for m in ('torch', 'open_clip') if m in sys.modules)"


@pytest.mark.slow
@pytest.mark.parametrize(
    ("env", "options"),
    [
        pytest.param({}, [], id="recorded-model"),
        pytest.param({"VSTORE_PRETRAINED": "random"}, [], id="VSTORE_PRETRAINED"),
        pytest.param({"VSTORE_MODEL": "vstore-tiny"}, ["--pretrained", "random"], id="--pretrained"),
    ],
)
def test_unchanged_rerun_imports_neither_torch_nor_open_clip(settings, tmp_path, env, options):
    """What makes a re-run fast: a fresh process that finds nothing to encode never imports the model's
    libraries (seconds of import time alone), also when --pretrained / VSTORE_PRETRAINED name the model
    the database records (issue 20, item 11: the README's first command sets VSTORE_PRETRAINED=random)."""
    root = tmp_path / "coco"
    imagegen.make_coco(root, n=4)
    ingest(settings, root)
    code = (
        "import json, sys\n"
        "from vstore.cli import main\n"
        f"code = main(['ingest', {str(root)!r}, '--json', '--workers', '1', *{options!r}])\n"
        f"print(json.dumps({{'code': code, 'heavy': {HEAVY}}}))\n"
    )
    child = child_env(settings, **env)
    out = subprocess.run([sys.executable, "-c", code], env=child, capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr
    report, result = (json.loads(line) for line in out.stdout.strip().splitlines()[-2:])
    assert (report["unchanged"], report["model_loaded"]) == (4, False)
    assert result == {"code": 0, "heavy": []}


def test_an_ask_for_the_recorded_model_is_recognised_and_nothing_else_is_assumed(tmp_path):
    """The check behind the fast re-run (vstore.encode.encoder.surely_same_model): True only for the
    recorded architecture with the recorded tag or a checkpoint of the recorded content; anything else
    goes to the full comparison, which refuses a different model."""
    import hashlib

    from vstore.encode.encoder import ModelSpec, surely_same_model

    tagged = ModelSpec("vstore-tiny", "random", 32)
    assert surely_same_model(tagged, "vstore-tiny", "random")
    assert not surely_same_model(tagged, "ViT-B-32", "random")
    assert not surely_same_model(tagged, "vstore-tiny", "openai")
    checkpoint, copy = tmp_path / "model.pt", tmp_path / "copy.pt"
    checkpoint.write_bytes(b"weights")
    copy.write_bytes(b"weights")
    recorded = ModelSpec("vstore-tiny", str(checkpoint), 32, hashlib.sha256(b"weights").hexdigest())
    assert surely_same_model(recorded, "vstore-tiny", str(checkpoint))
    assert surely_same_model(recorded, "vstore-tiny", str(copy))  # same bytes elsewhere
    assert not surely_same_model(recorded, "vstore-tiny", "random")
    checkpoint.write_bytes(b"other weights")
    assert not surely_same_model(recorded, "vstore-tiny", str(checkpoint))


def test_an_ask_for_another_model_is_still_refused(settings, tmp_path):
    from vstore.db.migrations import resolve_model
    from vstore.errors import ModelMismatch

    assert resolve_model(settings.with_overrides(pretrained="random")).label == "vstore-tiny/random"
    with pytest.raises(ModelMismatch, match="vstore-tiny/random"):
        resolve_model(settings.with_overrides(model="ViT-B-32", pretrained="random"))
