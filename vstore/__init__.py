"""vstore: a multimodal (CLIP) vector store on PostgreSQL + pgvector.

The public Python API; the CLI is a thin layer over it. Names are imported on first use, so
`import vstore` (and `vstore --help`) stays fast:

    from vstore import Settings, Store
    from vstore.ingest.pipeline import ingest
    settings = Settings.from_env()
    report = ingest(settings, "coco/")
    with Store(settings) as store:
        hits = store.search_text("a dog on a skateboard", k=5)
        hits = store.search_terms(parse_terms(["2:a cat"], plus=["beach.jpg"], minus=["snow"]))

The commands' entry points live in their wings: vstore.ingest.ingest, vstore.compare.export.export,
vstore.compare.harness.compare, vstore.evaluation.harness.evaluate, vstore.train.finetune.finetune,
vstore.train.reembed.reembed.
"""

from __future__ import annotations

import importlib
from typing import Any

# public name -> module that defines it
_EXPORTS = {
    "Settings": "vstore.config",
    "VstoreError": "vstore.errors",
    "ModelSpec": "vstore.encode.encoder",
    "OpenClipEncoder": "vstore.encode.encoder",
    "load_encoder": "vstore.encode.encoder",
    "init": "vstore.db.migrations",
    "upgrade": "vstore.db.migrations",
    "downgrade": "vstore.db.migrations",
    "IngestReport": "vstore.ingest.report",
    "IngestProgress": "vstore.ingest.report",
    "Store": "vstore.search.store",
    "ImageHit": "vstore.search.store",
    "CaptionHit": "vstore.search.store",
    "QueryTerm": "vstore.search.arithmetic",
    "parse_terms": "vstore.search.arithmetic",
    "ExportReport": "vstore.compare.export",
    "build_side_index": "vstore.compare.side_index",
    "SideIndex": "vstore.compare.side_index",
    "CompareReport": "vstore.compare.harness",
    "EvalReport": "vstore.evaluation.harness",
    "load_synthetic": "vstore.bench.synth",
    "Recipe": "vstore.train.finetune",
    "FinetuneResult": "vstore.train.finetune",
    "ReembedReport": "vstore.train.reembed",
}

__all__ = sorted(_EXPORTS)


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'vstore' has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return __all__
