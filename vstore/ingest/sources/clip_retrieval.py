"""Reader of clip-retrieval's output layout (`clip-retrieval inference` on Spark or Slurm, or any tool that
writes it): `img_emb/img_emb_N.npy`, `text_emb/text_emb_N.npy` (when captions were encoded) and
`metadata/metadata_N.parquet` (image_path, caption, url, ... in the same row order). N is a shard number,
zero-padded or not.

It never touches the database. `check()` reads every shard once (memory-mapped, chunk by chunk) before
anything is written, so bad input (a missing shard, a row count mismatch, a wrong dimension, NaN) is one
line naming the shard and nothing is half-imported; `chunks()` then yields the rows shard by shard in
bounded chunks, vectors L2-normalised (the ones that were not are counted)."""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from vstore.errors import ConfigError, SourceError

FORMAT = "clip-retrieval"
IMAGE_DIR, TEXT_DIR, META_DIR = "img_emb", "text_emb", "metadata"
CHUNK_ROWS = 50_000
NORM_TOLERANCE = 1e-3  # |norm - 1| above this counts as "not normalised" (float16 round trips stay below)
_SHARD = re.compile(r"^(img_emb|text_emb|metadata)_(\d+)\.(npy|parquet)$")


@dataclass(frozen=True)
class Shard:
    number: int
    image_file: Path
    text_file: Path | None
    metadata_file: Path
    rows: int


@dataclass
class LayoutCheck:
    """What check() found: sizes, and how many vectors had to be normalised."""

    shards: int = 0
    rows: int = 0
    dim: int = 0
    has_text: bool = False
    image_not_normalised: int = 0
    text_not_normalised: int = 0
    notes: list[str] = field(default_factory=list)


@dataclass(frozen=True)
class ImportChunk:
    shard: int
    first_row: int  # the chunk's first row within its shard
    image_paths: list[str]
    captions: list[str | None]
    keys: list[str | None]
    image_vectors: np.ndarray  # float32 [n, dim], L2-normalised
    text_vectors: np.ndarray | None  # float32 [n, dim], L2-normalised; zero rows where caption is None


def _numbered(folder: Path, prefix: str, suffix: str) -> dict[int, Path]:
    found: dict[int, Path] = {}
    if not folder.is_dir():
        return found
    for path in folder.iterdir():
        match = _SHARD.match(path.name)
        if match and match[1] == prefix and match[3] == suffix:
            number = int(match[2])
            if number in found:
                raise SourceError(
                    f"{folder} holds two files for shard {number}: {found[number].name}, {path.name}."
                )
            found[number] = path
    return found


def _pyarrow():
    try:
        import pyarrow.parquet as pq
    except ImportError:  # pragma: no cover - pyarrow is a dependency
        raise ConfigError("reading clip-retrieval metadata needs pyarrow: `pip install pyarrow`.") from None
    return pq


class ClipRetrievalLayout:
    """The shards of one clip-retrieval output folder, paired by number and checked for shape."""

    def __init__(self, folder: Path) -> None:
        self.folder = Path(folder).expanduser()
        if not self.folder.is_dir():
            raise SourceError(f"{self.folder} is not a folder; give the clip-retrieval output folder.")
        images = _numbered(self.folder / IMAGE_DIR, "img_emb", "npy")
        texts = _numbered(self.folder / TEXT_DIR, "text_emb", "npy")
        metas = _numbered(self.folder / META_DIR, "metadata", "parquet")
        if not images:
            raise SourceError(
                f"{self.folder} has no {IMAGE_DIR}/img_emb_N.npy shards; is it clip-retrieval's output "
                "folder (with img_emb/, text_emb/, metadata/)?"
            )
        for number in sorted(set(images) | set(metas) | set(texts)):
            if number not in images:
                raise SourceError(f"shard {number}: {IMAGE_DIR}/img_emb_{number}.npy is missing.")
            if number not in metas:
                raise SourceError(f"shard {number}: {META_DIR}/metadata_{number}.parquet is missing.")
            if texts and number not in texts:
                raise SourceError(f"shard {number}: {TEXT_DIR}/text_emb_{number}.npy is missing.")
        pq = _pyarrow()
        self.shards: list[Shard] = []
        for number in sorted(images):
            shape = _npy_shape(images[number])
            self.shards.append(Shard(number, images[number], texts.get(number), metas[number], rows=shape[0]))
            meta_rows = pq.ParquetFile(metas[number]).metadata.num_rows
            if meta_rows != shape[0]:
                raise SourceError(
                    f"shard {number}: {images[number].name} has {shape[0]} rows but "
                    f"{metas[number].name} has {meta_rows}; the shard is incomplete, re-export it."
                )
        self.has_text = bool(texts)

    @property
    def rows(self) -> int:
        return sum(s.rows for s in self.shards)

    def check(self, dim: int) -> LayoutCheck:
        """Read every shard once: shapes, dimension `dim`, finite values, metadata columns."""
        pq = _pyarrow()
        report = LayoutCheck(shards=len(self.shards), rows=self.rows, dim=dim, has_text=self.has_text)
        for shard in self.shards:
            columns = set(pq.ParquetFile(shard.metadata_file).schema_arrow.names)
            if "image_path" not in columns:
                raise SourceError(
                    f"shard {shard.number}: {shard.metadata_file.name} has no image_path column "
                    f"(it has {', '.join(sorted(columns)) or 'none'})."
                )
            if shard.text_file is not None and "caption" not in columns:
                raise SourceError(
                    f"shard {shard.number}: text_emb is there but {shard.metadata_file.name} has no "
                    "caption column."
                )
            report.image_not_normalised += _check_vectors(shard, shard.image_file, dim)
            if shard.text_file is not None:
                report.text_not_normalised += _check_vectors(shard, shard.text_file, dim, zero_ok=True)
        return report

    def chunks(self, chunk_rows: int = CHUNK_ROWS) -> Iterator[ImportChunk]:
        """Rows in shard order, at most `chunk_rows` at a time (one metadata row group slice, one
        memory-mapped slice of each npy): client memory stays flat whatever the shard size."""
        pq = _pyarrow()
        for shard in self.shards:
            images = np.load(shard.image_file, mmap_mode="r")
            texts = np.load(shard.text_file, mmap_mode="r") if shard.text_file is not None else None
            meta = pq.ParquetFile(shard.metadata_file)
            columns = [c for c in ("image_path", "caption", "key") if c in meta.schema_arrow.names]
            start = 0
            for batch in meta.iter_batches(batch_size=chunk_rows, columns=columns):
                n = batch.num_rows
                values = batch.to_pydict()
                captions = values.get("caption", [None] * n)
                text_vectors = None
                if texts is not None:
                    text_vectors = _unit(np.asarray(texts[start : start + n], dtype=np.float32))
                captions = [c if isinstance(c, str) and c.strip() else None for c in captions]
                yield ImportChunk(
                    shard=shard.number,
                    first_row=start,
                    image_paths=[str(p) for p in values["image_path"]],
                    captions=captions,
                    keys=[None if k is None else str(k) for k in values.get("key", [None] * n)],
                    image_vectors=_unit(np.asarray(images[start : start + n], dtype=np.float32)),
                    text_vectors=text_vectors,
                )
                start += n


def _npy_shape(path: Path) -> tuple[int, ...]:
    try:
        return tuple(np.load(path, mmap_mode="r").shape)
    except (ValueError, OSError) as exc:
        raise SourceError(f"{path.name} is not a readable .npy file ({exc}); re-export that shard.") from None


def _check_vectors(shard: Shard, path: Path, dim: int, *, zero_ok: bool = False) -> int:
    """Raise SourceError naming the shard for a wrong shape or a non-finite value; count rows whose norm is
    not 1 (they are normalised on import). Zero rows are allowed for text (an image without a caption)."""
    array = np.load(path, mmap_mode="r")
    if array.ndim != 2 or array.shape[0] != shard.rows:
        raise SourceError(
            f"shard {shard.number}: {path.name} has shape {array.shape}, expected ({shard.rows}, {dim})."
        )
    if array.shape[1] != dim:
        raise SourceError(
            f"shard {shard.number}: {path.name} holds {array.shape[1]}-d vectors but the model is {dim}-d; "
            "import with the --model/--pretrained that encoded them."
        )
    if array.dtype.kind != "f":
        raise SourceError(f"shard {shard.number}: {path.name} holds {array.dtype} values, not floats.")
    off = 0
    for start in range(0, shard.rows, CHUNK_ROWS):
        chunk = np.asarray(array[start : start + CHUNK_ROWS], dtype=np.float32)
        finite = np.isfinite(chunk).all(axis=1)
        if not finite.all():
            row = start + int(np.argmin(finite))
            raise SourceError(f"shard {shard.number}: {path.name} row {row} holds NaN or infinity.")
        norms = np.linalg.norm(chunk, axis=1)
        zero = norms == 0
        if zero.any() and not zero_ok:
            row = start + int(np.argmax(zero))
            raise SourceError(f"shard {shard.number}: {path.name} row {row} is a zero vector.")
        off += int((np.abs(norms[~zero] - 1.0) > NORM_TOLERANCE).sum())
    return off


def _unit(rows: np.ndarray) -> np.ndarray:
    norms = np.linalg.norm(rows, axis=1, keepdims=True)
    return rows / np.where(norms == 0, 1.0, norms)
