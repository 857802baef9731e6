"""The Faiss side index: built from an export (or straight from the database), saved with its id map
(row -> database id) and a manifest, loaded back and searched by vector. faiss is imported lazily.

Files in the index directory: `index.faiss`, `ids.npy` (int64 database ids, one per Faiss row) and
`manifest.json` (model, table, rows, type, parameters, build seconds, bytes, and the identity of the
database and rows it was built from: vstore.compare.identity, checked by `check_database`). Database ids
are not contiguous after deletes and re-ingests, which is why the id map exists: Faiss rows are 0..n-1.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np

from vstore.config import Settings
from vstore.db.knobs import DEFAULT_EF_SEARCH
from vstore.encode.paths import filesystem_path
from vstore.errors import ConfigError, ForeignIndex, ModelMismatch, NotFound

FAISS_TYPES = ("flat", "ivf", "hnsw", "ivfpq")
INDEX_FILE = "index.faiss"
IDS_FILE = "ids.npy"
MANIFEST_FILE = "manifest.json"


def default_index_dir(settings: Settings, table: str, kind: str) -> Path:
    return settings.home / "faiss" / f"{table}-{kind}"


@dataclass
class FaissManifest:
    model: str
    pretrained: str
    dim: int
    table: str
    type: str
    rows: int
    params: dict[str, Any] = field(default_factory=dict)
    build_s: float = 0.0
    size_bytes: int = 0
    source: str = ""  # "database" or the export directory
    created: str = ""
    path: str = ""
    # vstore.compare.identity.DatabaseIdentity of the indexed vectors (None: built before it was recorded)
    identity: dict[str, Any] | None = None


@dataclass
class FaissHit:
    id: int
    distance: float  # cosine distance, 1 - inner product, as pgvector's <=>
    similarity: float


def build_side_index(
    settings: Settings,
    kind: str,
    *,
    table: str = "images",
    from_export: Path | None = None,
    out_dir: Path | None = None,
    m: int | None = None,
    ef_construction: int | None = None,
    nlist: int | None = None,
    pq_m: int | None = None,
    threads: int = 2,
) -> FaissManifest:
    """Build and save a Faiss index of `table`'s vectors. HNSW M/efConstruction default to those of the
    table's pgvector HNSW index, so the two are comparable."""
    import faiss

    from vstore.compare.export import load_export
    from vstore.compare.faiss_methods import build_faiss

    if kind not in FAISS_TYPES:
        raise ConfigError(f"unknown Faiss index type {kind!r}; choose one of {', '.join(FAISS_TYPES)}.")
    identity: dict[str, Any] | None
    if from_export is not None:
        ids, vectors, manifest = load_export(Path(from_export), table)
        model, pretrained, dim, source = (
            manifest["model"],
            manifest["pretrained"],
            manifest["dim"],
            str(from_export),
        )
        identity = manifest.get("identity", {}).get(table)
    else:
        from vstore.compare.export import read_vectors_with_identity
        from vstore.db.migrations import require_model

        spec = require_model(settings)
        ids, vectors, dim, read_identity = read_vectors_with_identity(settings, table)
        model, pretrained, source = spec.name, spec.pretrained, "database"
        identity = read_identity.as_dict()
    if len(ids) == 0:
        raise NotFound(f"there are no {table} vectors to index; ingest data first (or `vstore bench synth`).")
    if kind == "hnsw" and (m is None or ef_construction is None):
        from vstore.compare.pg_methods import pg_hnsw_params

        pg_m, pg_efc = pg_hnsw_params(settings, table) if from_export is None else (16, 64)
        m, ef_construction = m or pg_m, ef_construction or pg_efc
    index, params, seconds = build_faiss(
        kind,
        np.asarray(vectors),
        m=m or 16,
        ef_construction=ef_construction or 64,
        nlist=nlist,
        pq_m=pq_m,
        threads=threads,
    )
    out = Path(out_dir) if out_dir else default_index_dir(settings, table, kind)
    out.mkdir(parents=True, exist_ok=True)
    faiss.write_index(index, str(out / INDEX_FILE))
    np.save(out / IDS_FILE, np.asarray(ids, dtype=np.int64))
    result = FaissManifest(
        model=model,
        pretrained=pretrained,
        dim=int(dim),
        table=table,
        type=kind,
        rows=int(index.ntotal),
        params=params,
        build_s=seconds,
        size_bytes=(out / INDEX_FILE).stat().st_size,
        source=source,
        created=datetime.now(UTC).isoformat(timespec="seconds"),
        path=str(out),
        identity=identity,
    )
    (out / MANIFEST_FILE).write_text(json.dumps(asdict(result), indent=2) + "\n")
    return result


class SideIndex:
    """A loaded side index: search by vector, answers in database ids."""

    def __init__(self, index: Any, ids: np.ndarray, manifest: FaissManifest) -> None:
        self.index = index
        self.ids = ids
        self.manifest = manifest

    @classmethod
    def load(cls, path: Path) -> SideIndex:
        import faiss

        path = Path(path)
        if not (path / MANIFEST_FILE).is_file():
            raise NotFound(f"no Faiss index at {path}; build one with `vstore faiss build --out {path}`.")
        manifest = FaissManifest(**json.loads((path / MANIFEST_FILE).read_text()))
        index = faiss.read_index(str(path / INDEX_FILE))
        ids = np.load(path / IDS_FILE)
        if len(ids) != index.ntotal:
            raise ConfigError(f"{path}: {len(ids)} ids for {index.ntotal} vectors; rebuild the index.")
        return cls(index, ids, manifest)

    def check_model(self, name: str, pretrained: str, dim: int) -> None:
        m = self.manifest
        if (m.model, m.pretrained, m.dim) != (name, pretrained, dim):
            raise ModelMismatch(
                f"the Faiss index at {m.path} holds {m.model}/{m.pretrained} vectors (dim {m.dim}), the "
                f"database {name}/{pretrained} (dim {dim}); rebuild it with `vstore faiss build`."
            )

    def check_database(self, settings: Settings) -> str | None:
        """Refuse an index built from another database (ForeignIndex: its ids would name unrelated rows);
        return why it is stale (rows added, removed or updated since it was built), or None if current."""
        from vstore.compare.identity import (
            DatabaseIdentity,
            database_identity,
            foreign_reason,
            stale_reason,
        )
        from vstore.db.connect import connection

        m = self.manifest
        with connection(settings, autocommit=True) as conn:
            current = database_identity(conn, m.table)
        if m.identity is None:
            return "it records no database identity (built by an older vstore), so it may be out of date"
        recorded = DatabaseIdentity.from_dict(m.identity)
        foreign = foreign_reason(recorded, current)
        if foreign is not None:
            raise ForeignIndex(
                f"the Faiss index at {m.path} was built from {foreign}, not this one: its ids would name "
                f"unrelated rows. Rebuild it here: `vstore faiss build --type {m.type} --table {m.table}`."
            )
        return stale_reason(recorded, current)

    def search(
        self,
        vector: np.ndarray,
        k: int = 10,
        *,
        nprobe: int | None = None,
        ef_search: int | None = None,
        exclude_id: int | None = None,
    ) -> list[FaissHit]:
        import faiss

        if vector.shape != (self.manifest.dim,):
            raise ModelMismatch(
                f"query vector has shape {vector.shape}, the index holds {self.manifest.dim}-d."
            )
        if nprobe is not None and self.manifest.type in ("ivf", "ivfpq"):
            faiss.extract_index_ivf(self.index).nprobe = nprobe
        if self.manifest.type == "hnsw":
            self.index.hnsw.efSearch = max(ef_search or DEFAULT_EF_SEARCH, k + 1)
        want = k + (exclude_id is not None)
        scores, rows = self.index.search(np.asarray(vector, dtype=np.float32).reshape(1, -1), want)
        hits = [
            FaissHit(int(self.ids[r]), float(1.0 - s), float(s))
            for s, r in zip(scores[0], rows[0], strict=True)
            if r >= 0 and int(self.ids[r]) != exclude_id
        ]
        return hits[:k]


def rebuild_side_index(settings: Settings, side: SideIndex, threads: int = 2) -> SideIndex:
    """Build `side` again from the database, with its type, table, parameters and directory."""
    m = side.manifest
    params = {k: m.params.get(k) for k in ("m", "ef_construction", "nlist", "pq_m")}
    build_side_index(settings, m.type, table=m.table, out_dir=Path(m.path), threads=threads, **params)
    return SideIndex.load(Path(m.path))


def describe_hits(settings: Settings, table: str, hits: list[FaissHit]) -> list[dict[str, Any]]:
    """Hits as dicts with what the database knows of each id (an image's path, a caption's text)."""
    from vstore.compare.export import EXPORT_TABLES
    from vstore.db import sql
    from vstore.db.connect import connection

    if table not in EXPORT_TABLES:
        raise ConfigError(f"unknown table {table!r}.")
    with connection(settings) as conn:
        rows = conn.execute(
            sql.load(f"queries/compare_hits_{table}"), {"ids": [h.id for h in hits]}
        ).fetchall()
    known = {int(r[0]): r for r in rows}
    out = []
    for hit in hits:
        row = known.get(hit.id)
        extra: dict[str, Any] = {"missing": True}  # deleted from the database since the index was built
        if row is not None and table == "images":
            extra = {"path": filesystem_path(row[1], row[2])}
        elif row is not None:
            extra = {"image_id": int(row[1]), "text": row[2]}
        out.append({"id": hit.id, "distance": hit.distance, "similarity": hit.similarity, **extra})
    return out
