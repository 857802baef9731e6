"""vstore: a multimodal (CLIP) vector store on PostgreSQL + pgvector.

The public Python API; the CLI is a thin layer over it. Names are imported on first use, so
`import vstore` (and `vstore --help`) stays fast:

    from vstore import Settings, Store
    from vstore.ingest import ingest
    settings = Settings.from_env()
    report = ingest(settings, "coco/")
    with Store(settings) as store:
        hits = store.search_text("a dog on a skateboard", k=5)

The entry points that share their module's name are imported from the module, since a package attribute
would be shadowed by the submodule: vstore.ingest.ingest, vstore.export.export, vstore.compare.compare,
vstore.evaluate.evaluate.
"""

from __future__ import annotations

import importlib
from typing import Any

# public name -> module that defines it
_EXPORTS = {
    "Settings": "vstore.config",
    "VstoreError": "vstore.errors",
    "ModelSpec": "vstore.encoder",
    "OpenClipEncoder": "vstore.encoder",
    "load_encoder": "vstore.encoder",
    "init": "vstore.migrations",
    "upgrade": "vstore.migrations",
    "downgrade": "vstore.migrations",
    "IngestReport": "vstore.ingest_report",
    "IngestProgress": "vstore.ingest_report",
    "Store": "vstore.store",
    "ImageHit": "vstore.store",
    "CaptionHit": "vstore.store",
    "ExportReport": "vstore.export",
    "build_side_index": "vstore.faiss_index",
    "SideIndex": "vstore.faiss_index",
    "CompareReport": "vstore.compare",
    "EvalReport": "vstore.evaluate",
    "load_synthetic": "vstore.synth",
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
