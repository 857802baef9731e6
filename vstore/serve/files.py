"""Image files by id, never by a client-given path: the file is the stored dataset root joined with the
stored relative path, and a stored path that would leave its root (absolute, or with '..') is refused.
Thumbnails go through encode/images.py (the same EXIF, alpha and colour handling as ingest) and are cached
on disk under a key of the file's path, size and mtime, so an edited file gets a new thumbnail."""

from __future__ import annotations

import hashlib
import io
import os
import posixpath
import tempfile
from dataclasses import dataclass
from pathlib import Path

from vstore.encode.images import prepare, read_file
from vstore.errors import FileNotServed, ImageError, NotFound
from vstore.search.store import ImageRecord

THUMBNAIL_SIZES = (64, 128, 256, 512, 1024)  # a requested size is rounded up to one of these (bounded cache)
MEDIA_TYPES = {
    ".jpg": "image/jpeg",
    ".jpeg": "image/jpeg",
    ".png": "image/png",
    ".webp": "image/webp",
    ".bmp": "image/bmp",
    ".gif": "image/gif",
    ".tif": "image/tiff",
    ".tiff": "image/tiff",
}


@dataclass(frozen=True)
class ImageFile:
    path: Path
    media_type: str
    stat: os.stat_result


def image_file(record: ImageRecord) -> ImageFile:
    """The file of a stored image, checked to lie under its dataset root and to be a readable image file."""
    relative = record.relative_path
    normal = posixpath.normpath(relative) if relative else ""
    if not normal or normal.startswith("/") or normal == ".." or normal.startswith("../") or "\x00" in normal:
        raise FileNotServed(
            f"image {record.id}'s stored path {relative!r} is outside its dataset root, so it is not served; "
            "move the file under the dataset folder and ingest again."
        )
    if record.status != "ok":
        raise NotFound(f"image {record.id} is {record.status}, so there is no file to show.")
    media_type = MEDIA_TYPES.get(posixpath.splitext(normal)[1].lower())
    if media_type is None:
        raise NotFound(f"image {record.id}'s file {normal!r} does not have an image file suffix.")
    path = Path(record.path)
    try:
        stat = path.stat()
    except OSError:
        raise NotFound(
            f"image {record.id}'s file is gone from {record.dataset!r}; ingest the dataset again."
        ) from None
    if not path.is_file():
        raise NotFound(f"image {record.id}'s path is not a file; ingest the dataset again.")
    return ImageFile(path, media_type, stat)


def thumbnail_size(requested: int) -> int:
    """The cached size used for a requested one: the smallest of THUMBNAIL_SIZES that covers it."""
    return next((s for s in THUMBNAIL_SIZES if s >= requested), THUMBNAIL_SIZES[-1])


def thumbnail(file: ImageFile, size: int, cache_dir: Path | None) -> bytes:
    """A JPEG that fits in size x size pixels; read from or written to `cache_dir` when it is usable."""
    key = f"{file.path}\0{file.stat.st_size}\0{file.stat.st_mtime_ns}\0{size}".encode(
        "utf-8", "surrogateescape"
    )
    digest = hashlib.sha256(key).hexdigest()
    cached = cache_dir / digest[:2] / f"{digest}.jpg" if cache_dir is not None else None
    if cached is not None and cached.is_file():
        return cached.read_bytes()
    data = _make_thumbnail(file.path, size)
    if cached is not None:
        _write_quietly(cached, data)
    return data


def _make_thumbnail(path: Path, size: int) -> bytes:
    from PIL import Image

    rgb, _, _ = prepare(read_file(path), None)  # the ingest path: orientation, alpha, 16-bit, CMYK ...
    image = Image.fromarray(rgb, "RGB")
    image.thumbnail((size, size), Image.Resampling.LANCZOS, reducing_gap=3.0)
    out = io.BytesIO()
    try:
        image.save(out, "JPEG", quality=85, optimize=True)
    except OSError as exc:  # pragma: no cover - PIL's encoder failing on an RGB image is unexpected
        raise ImageError(f"cannot make a thumbnail of {path.name}: {exc}") from exc
    return out.getvalue()


def _write_quietly(target: Path, data: bytes) -> None:
    """Atomic write (temporary file, then rename); a cache that cannot be written is simply not used."""
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
        with tempfile.NamedTemporaryFile(dir=target.parent, suffix=".tmp", delete=False) as handle:
            handle.write(data)
        os.replace(handle.name, target)
    except OSError:
        pass


__all__ = ["ImageFile", "image_file", "thumbnail", "thumbnail_size"]
