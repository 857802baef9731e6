"""The model is loaded only when something needs encoding: an unchanged re-run of an ingest, a search by
a cached text and an index rebuild load nothing (loads counted through vstore.encode.encoder.load_encoder,
which every lazy path calls)."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from tests import imagegen
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


def test_unchanged_rerun_imports_neither_torch_nor_open_clip(settings, tmp_path):
    """What makes a re-run fast: a fresh process that finds nothing to encode never imports the model's
    libraries (seconds of import time alone)."""
    root = tmp_path / "coco"
    imagegen.make_coco(root, n=4)
    ingest(settings, root)
    code = (
        "import json, sys\n"
        "from pathlib import Path\n"
        "from vstore.config import Settings\n"
        "from vstore.ingest import ingest\n"
        f"s = Settings(database_url={settings.database_url!r}, home=Path({str(settings.home)!r}),\n"
        "    workers=1)\n"
        f"r = ingest(s, {str(root)!r})\n"
        "print(json.dumps({'unchanged': r.unchanged, 'loaded': r.model_loaded,\n"
        "    'heavy': sorted(m for m in ('torch', 'open_clip') if m in sys.modules)}))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert json.loads(out.stdout.strip().splitlines()[-1]) == {"unchanged": 4, "loaded": False, "heavy": []}
