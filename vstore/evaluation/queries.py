"""The queries `vstore eval` asks: a seeded sample of stored captions and images (optionally of one
dataset), and external queries read from a file (texts, or paths of image files) and encoded with the
database's model."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from vstore.db.connect import vector_array
from vstore.encode.encoder import Encoder, l2_normalise
from vstore.encode.images import is_image_name
from vstore.errors import NotFound


@dataclass
class Queries:
    caption_vectors: np.ndarray  # [n, d]
    caption_images: np.ndarray  # the image id of each caption
    image_ids: np.ndarray  # image->image queries (ids in the corpus)
    external: np.ndarray  # [m, d]


def sample(n: int, limit: int | None, rng: np.random.Generator) -> np.ndarray:
    if not limit or n <= limit:
        return np.arange(n)
    return np.sort(rng.choice(n, size=limit, replace=False))


def load_captions(conn: Any, dataset_id: int | None, limit: int | None, rng: np.random.Generator):
    pairs = conn.execute(
        "SELECT c.id, c.image_id FROM public.captions c JOIN public.images i ON i.id = c.image_id "
        "WHERE c.embedding IS NOT NULL AND i.embedding IS NOT NULL AND i.status = 'ok' "
        "AND (%(d)s::bigint IS NULL OR i.dataset_id = %(d)s::bigint) ORDER BY c.id",
        {"d": dataset_id},
    ).fetchall()
    chosen = [pairs[i] for i in sample(len(pairs), limit, rng)]
    if not chosen:
        return np.zeros((0, 0), np.float32), np.zeros(0, np.int64)
    rows = conn.execute(
        "SELECT id, embedding FROM public.captions WHERE id = ANY(%s) ORDER BY id", ([c[0] for c in chosen],)
    ).fetchall()
    vectors = l2_normalise(np.stack([vector_array(r[1]) for r in rows]))
    return vectors, np.array([c[1] for c in chosen], dtype=np.int64)


def load_caption_sets(
    conn: Any, dataset_id: int | None, limit: int | None, rng: np.random.Generator
) -> tuple[np.ndarray, list[frozenset[int]]]:
    """A seeded sample of embedded images with embedded captions (of one dataset, or all), each with the
    ids of all its captions: the relevant set of an image -> caption query."""
    rows = conn.execute(
        "SELECT c.image_id, array_agg(c.id ORDER BY c.id) FROM public.captions c "
        "JOIN public.images i ON i.id = c.image_id "
        "WHERE c.embedding IS NOT NULL AND i.embedding IS NOT NULL AND i.status = 'ok' "
        "AND (%(d)s::bigint IS NULL OR i.dataset_id = %(d)s::bigint) GROUP BY c.image_id ORDER BY c.image_id",
        {"d": dataset_id},
    ).fetchall()
    chosen = [rows[i] for i in sample(len(rows), limit, rng)]
    return np.array([r[0] for r in chosen], dtype=np.int64), [frozenset(r[1]) for r in chosen]


def load_image_ids(
    conn: Any, dataset_id: int | None, corpus_ids: np.ndarray, limit: int | None, rng: np.random.Generator
) -> np.ndarray:
    if dataset_id is None:
        ids = corpus_ids
    else:
        rows = conn.execute("SELECT id FROM public.images WHERE dataset_id = %s", (dataset_id,)).fetchall()
        ids = np.intersect1d(corpus_ids, np.array([r[0] for r in rows], dtype=np.int64))
    return ids[sample(len(ids), limit, rng)]


def read_queries_file(path: Path) -> list[str | Path]:
    """One query per line: an image path (relative to the file's folder or absolute) or a text.
    Blank lines and lines starting with '#' are skipped."""
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except OSError as exc:
        raise NotFound(f"cannot read --queries-file {path}: {exc.strerror or exc}.") from exc
    queries: list[str | Path] = []
    for line in (raw.strip() for raw in lines):
        if not line or line.startswith("#"):
            continue
        candidate = Path(line).expanduser()
        if not candidate.is_absolute():
            candidate = path.parent / candidate
        queries.append(candidate if is_image_name(candidate.name) and candidate.is_file() else line)
    return queries


def encode_queries(encoder: Encoder, queries: Sequence[str | Path]) -> np.ndarray:
    """Texts through the text tower, image files through the image tower (prepared as ingest prepares
    them), in the file's order."""
    from vstore.encode.images import prepare_file

    out = np.zeros((len(queries), encoder.dim), dtype=np.float32)
    texts = [(i, q) for i, q in enumerate(queries) if isinstance(q, str)]
    images = [(i, q) for i, q in enumerate(queries) if isinstance(q, Path)]
    if texts:
        out[[i for i, _ in texts]] = encoder.encode_texts([t for _, t in texts])
    if images:
        transform = encoder.image_transform()
        pixels = np.stack([prepare_file(image_path, transform) for _, image_path in images])
        out[[i for i, _ in images]] = encoder.encode_images(pixels)
    return l2_normalise(out)
