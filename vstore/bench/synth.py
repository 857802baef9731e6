"""Synthetic data for benchmarks: clustered unit vectors (profile "clusters": closer to real CLIP
embeddings than uniform noise, which no index handles well) or CLIP-like ones with a modality gap
(profile "clip", bench/clip_synth.py), and a fast loader that fills a scratch dataset of images and captions
with them by binary COPY, with the vector indexes dropped during the load and rebuilt after.

`vstore bench synth` and the search benchmark (benchmarks/search_bench.py) use it. Rows are fake: paths
point nowhere (the dataset root is `synthetic://NAME`), so only searches and timings are meaningful.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass

import numpy as np
import psycopg

from vstore.config import Settings
from vstore.db.connect import connection, scalar
from vstore.errors import ConfigError, ModelMismatch

SYNTH_FORMAT = "synthetic"
SPLIT_VAL_EVERY = 20  # every 20th image is in split "val" (5% of rows, for filtered-search benchmarks)
_CHUNK = 10_000

# progress(stage, done, total): stage is "images", "captions" or "indexes" (done/total in rows, or
# indexes rebuilt).
Progress = Callable[[str, int, int], None]


def _unit(rows: np.ndarray) -> np.ndarray:
    return rows / np.maximum(np.linalg.norm(rows, axis=1, keepdims=True), 1e-12)


def synth_vectors(
    n: int, dim: int, *, clusters: int | None = None, spread: float = 0.6, seed: int = 0
) -> np.ndarray:
    """`n` L2-normalised float32 vectors drawn around `clusters` random centres (default: one per 1000
    vectors, at least 8). `spread` is the noise norm relative to the unit centre: 0.6 gives
    nearest-neighbour cosine similarities of roughly 0.7-0.9, like CLIP image embeddings of one dataset.
    Deterministic for a given seed."""
    out = np.empty((max(n, 0), max(dim, 0)), dtype=np.float32)
    for start, chunk in synth_chunks(n, dim, clusters=clusters, spread=spread, seed=seed):
        out[start : start + len(chunk)] = chunk
    return out


def synth_chunks(
    n: int, dim: int, *, clusters: int | None = None, spread: float = 0.6, seed: int = 0
) -> Iterator[tuple[int, np.ndarray]]:
    """synth_vectors' rows as (first row, chunk of up to 10k rows): the same vectors, generated as they
    are consumed, so a 1M-row load never holds them all (2 GB at 512-d)."""
    if n < 0 or dim < 1:
        raise ConfigError("synth_vectors needs n >= 0 and dim >= 1.")
    clusters = clusters or max(8, n // 1000)
    rng = np.random.default_rng(seed)
    centres = _unit(rng.standard_normal((clusters, dim), dtype=np.float32))
    for start in range(0, n, _CHUNK):
        stop = min(n, start + _CHUNK)
        which = rng.integers(0, clusters, size=stop - start)
        noise = rng.standard_normal((stop - start, dim), dtype=np.float32) * (spread / np.sqrt(dim))
        # float32 explicitly: np.sqrt gives a float64 scalar, which promotes the noise to float64.
        yield start, _unit(centres[which] + noise).astype(np.float32, copy=False)


@dataclass(frozen=True)
class SynthReport:
    dataset: str
    dataset_id: int
    images: int
    captions: int
    dim: int
    seconds_copy: float
    seconds_index: float

    @property
    def rows_per_second(self) -> float:
        return (self.images + self.captions) / self.seconds_copy if self.seconds_copy else 0.0


def _replace_dataset(conn: psycopg.Connection, name: str) -> int:
    """A fresh, empty dataset row; an older synthetic dataset of that name goes (never a real one)."""
    row = conn.execute("SELECT id, format FROM public.datasets WHERE name = %s", (name,)).fetchone()
    if row is not None:
        if row[1] != SYNTH_FORMAT:
            raise ConfigError(
                f"dataset {name!r} holds real ({row[1]}) data; pick another name for the synthetic one."
            )
        conn.execute("DELETE FROM public.datasets WHERE id = %s", (row[0],))
    return int(
        scalar(
            conn,
            "INSERT INTO public.datasets (name, root, format) VALUES (%s, %s, %s) RETURNING id",
            (name, f"synthetic://{name}", SYNTH_FORMAT),
        )
    )


def _allocate_ids(conn: psycopg.Connection, table: str, n: int) -> np.ndarray:
    """Reserve n ids from the table's identity sequence (so captions can reference images in one COPY)."""
    rows = conn.execute(
        "SELECT nextval(pg_get_serial_sequence(%s, 'id')) FROM generate_series(1, %s)",
        (f"public.{table}", n),
    ).fetchall()
    return np.fromiter((r[0] for r in rows), dtype=np.int64, count=n)


def _wrapper(storage: str) -> Callable[[np.ndarray], object]:
    """How a float32 row goes to COPY: as is for vector; pgvector's halfvec dumper wants a HalfVector."""
    if storage == "halfvec":
        from pgvector import HalfVector

        return HalfVector
    if storage != "vector":
        raise ConfigError(f"unknown storage {storage!r}; choose vector or halfvec.")
    return lambda vector: vector


def copy_images(
    conn: psycopg.Connection,
    dataset_id: int,
    ids: Sequence[int] | np.ndarray,
    paths: Sequence[str],
    vectors: Iterable[np.ndarray],
    splits: Sequence[str | None] | None = None,
    progress: Progress | None = None,
    storage: str = "vector",
) -> None:
    """Binary COPY of image rows (status 'ok') with explicit ids; pgvector's adapter writes the vectors
    in the column's binary format (`storage`: vector or halfvec)."""
    sql = (
        "COPY public.images (id, dataset_id, split, path, status, embedding) FROM STDIN WITH (FORMAT BINARY)"
    )
    wrap = _wrapper(storage)
    with conn.cursor().copy(sql) as copy:
        copy.set_types(["int8", "int8", "text", "text", "text", storage])
        for i, (id_, path, vector) in enumerate(zip(ids, paths, vectors, strict=True)):
            copy.write_row((int(id_), dataset_id, splits[i] if splits else None, path, "ok", wrap(vector)))
            if progress and (i + 1) % _CHUNK == 0:
                progress("images", i + 1, len(ids))
    if progress:
        progress("images", len(ids), len(ids))


def copy_captions(
    conn: psycopg.Connection,
    image_ids: Sequence[int] | np.ndarray,
    texts: Sequence[str],
    vectors: np.ndarray,
    progress: Progress | None = None,
    storage: str = "vector",
) -> None:
    """Binary COPY of caption rows; source_id is the caption's position, unique per image."""
    sql = "COPY public.captions (image_id, source_id, text, embedding) FROM STDIN WITH (FORMAT BINARY)"
    wrap = _wrapper(storage)
    with conn.cursor().copy(sql) as copy:
        copy.set_types(["int8", "text", "text", storage])
        for i, (image_id, text, vector) in enumerate(zip(image_ids, texts, vectors, strict=True)):
            copy.write_row((int(image_id), str(i), text, wrap(vector)))
            if progress and (i + 1) % _CHUNK == 0:
                progress("captions", i + 1, len(texts))
    if progress:
        progress("captions", len(texts), len(texts))


PROFILES = ("clusters", "clip")


def load_synthetic(
    settings: Settings,
    rows: int,
    *,
    dataset: str = "synth",
    captions_per_image: int | None = None,
    seed: int = 0,
    profile: str = "clusters",
    caption_sample: int | None = None,
    dim: int | None = None,
    clusters: int | None = None,
    progress: Progress | None = None,
    force: bool = False,
) -> SynthReport:
    """Fill dataset `dataset` (replacing an earlier synthetic one of that name) with `rows` images and
    `captions_per_image` captions each (default 1 for `clusters`, 5 for `clip`), vectors of the
    database's dimension (a different `dim` is refused with ModelMismatch). `profile` "clusters": unit
    vectors around spread-out centres, captions near their image; "clip": CLIP-like vectors with a
    modality gap (bench/clip_synth.py). `caption_sample` captions only that many images, evenly spaced
    (query material at 1M rows without a caption table five times the image table). The vector
    indexes are dropped for the load and rebuilt after it, then the tables are ANALYZEd.

    Refused (UserDataPresent) on a database holding non-synthetic datasets, unless `force`: synthetic rows
    would turn up in the user's searches."""
    from vstore.bench.guard import refuse_user_data
    from vstore.db.indexes import VECTOR_TABLES, column_type, defer_indexes, rebuild_deferred
    from vstore.db.migrations import require_model

    if profile not in PROFILES:
        raise ConfigError(f"unknown synthetic profile {profile!r}; choose one of {', '.join(PROFILES)}.")
    if captions_per_image is None:
        captions_per_image = 5 if profile == "clip" else 1
    if rows < 1 or captions_per_image < 0 or (caption_sample is not None and caption_sample < 0):
        raise ConfigError("load_synthetic needs rows >= 1, captions_per_image >= 0, caption_sample >= 0.")
    model = require_model(settings)
    if dim is not None and dim != model.dim:
        raise ModelMismatch(
            f"synthetic vectors of dim {dim} asked for, but this database holds {model.label} vectors of "
            f"dim {model.dim}; drop the dim option or use a database initialised for a {dim}-d model."
        )
    image_rows, captions_of = _sources(
        profile, rows, model.dim, captions_per_image, caption_sample, clusters, seed
    )
    width = len(str(rows))
    paths = [f"{i:0{width}d}.jpg" for i in range(rows)]
    splits = ["val" if i % SPLIT_VAL_EVERY == 0 else "train" for i in range(rows)]

    # autocommit: each step below is its own transaction (the indexes rebuild one by one, committed).
    with connection(settings, autocommit=True) as conn:
        refuse_user_data(conn, lambda _name, _root, fmt: fmt == SYNTH_FORMAT, force=force)
        storage = column_type(conn, "images")[0]
        for table in VECTOR_TABLES:
            defer_indexes(conn, table)
        try:
            started = time.perf_counter()
            with conn.transaction():
                dataset_id = _replace_dataset(conn, dataset)
                image_ids = _allocate_ids(conn, "images", rows)
                copy_images(conn, dataset_id, image_ids, paths, image_rows, splits, progress, storage)
                caption_vectors, owners = captions_of()
                n_captions = len(owners)
                if n_captions:
                    texts = [
                        f"synthetic caption {j % captions_per_image} of image {paths[i]}"
                        for j, i in enumerate(owners)
                    ]
                    copy_captions(conn, image_ids[owners], texts, caption_vectors, progress, storage)
            seconds_copy = time.perf_counter() - started
        finally:
            # Also after a failed load: the indexes must come back (deferred_indexes remembers them).
            started = time.perf_counter()
            rebuilt = rebuild_deferred(conn)
        if progress:
            progress("indexes", len(rebuilt), len(rebuilt))
        if not rebuilt:  # nothing was deferred (indexes dropped by hand): still give the planner statistics
            conn.execute("ANALYZE public.images")
            conn.execute("ANALYZE public.captions")
        seconds_index = time.perf_counter() - started
    return SynthReport(dataset, dataset_id, rows, n_captions, model.dim, seconds_copy, seconds_index)


def _sources(
    profile: str,
    rows: int,
    dim: int,
    per_image: int,
    caption_sample: int | None,
    clusters: int | None,
    seed: int,
) -> tuple[Iterable[np.ndarray], Callable[[], tuple[np.ndarray, np.ndarray]]]:
    """(the image rows, in order; a function giving (caption vectors, each caption's image row) once
    the image rows have been consumed). The clip profile streams its image rows chunk by chunk."""
    if profile == "clip":
        from vstore.bench.clip_synth import ClipGenerator

        gen = ClipGenerator(
            rows,
            dim,
            captions_per_image=per_image,
            caption_sample=caption_sample,
            clusters=clusters,
            seed=seed,
        )
        return (row for chunk in gen.image_chunks() for row in chunk), lambda: (gen.captions(), gen.owners)
    from vstore.bench.clip_synth import captioned_rows

    captioned = captioned_rows(rows, caption_sample)
    kept: list[np.ndarray] = []  # the captioned rows' vectors, gathered while the image rows stream by
    streamed = [False]

    def image_rows() -> Iterator[np.ndarray]:
        for start, chunk in synth_chunks(rows, dim, clusters=clusters, seed=seed):
            lo, hi = np.searchsorted(captioned, [start, start + len(chunk)])
            kept.append(chunk[captioned[lo:hi] - start])
            yield from chunk
        streamed[0] = True

    def captions() -> tuple[np.ndarray, np.ndarray]:
        if not streamed[0]:
            raise ConfigError("consume the image rows before the captions: they are gathered on the way.")
        images = np.concatenate(kept) if kept else np.empty((0, dim), dtype=np.float32)
        vectors, owner_positions = _caption_vectors(images, per_image, seed, np.arange(len(captioned)))
        return vectors, captioned[owner_positions]

    return image_rows(), captions


def _caption_vectors(
    image_vectors: np.ndarray, per_image: int, seed: int, captioned: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """Caption vectors near their image's vector; returns them and each caption's image row index."""
    rng = np.random.default_rng(seed + 1)
    owners = np.repeat(captioned, per_image)
    dim = image_vectors.shape[1]
    noise = rng.standard_normal((len(owners), dim), dtype=np.float32) * (0.5 / np.sqrt(dim))
    return _unit(image_vectors[owners] + noise).astype(np.float32), owners
