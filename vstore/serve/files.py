"""Image files by id, never by a client-given path: the file is the stored dataset root joined with the
stored relative path, and a stored path that would leave its root (absolute, or with '..') is refused.

At request time the path is resolved (symlinks followed) and must still lie inside the resolved dataset
root and be a regular file: a symlink planted over an ingested file that points elsewhere (/etc/passwd,
another user's folder), a FIFO (whose open would block) or a device is refused with 403. The file is then
opened once, without following a symlink in its last component and without blocking, and its identity
(device, inode) compared with what was checked, so swapping the file between the check and the read
serves nothing; the response streams from that one open file.

Thumbnails go through encode/images.py (the same EXIF, alpha and colour handling as ingest) and are cached
on disk under a key of the file's path, size and mtime, so an edited file gets a new thumbnail."""

from __future__ import annotations

import hashlib
import io
import os
import posixpath
import stat as stat_module
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

from vstore.encode.images import prepare
from vstore.errors import FileNotServed, ImageError, NotFound
from vstore.search.records import ImageRecord

THUMBNAIL_SIZES = (64, 128, 256, 512, 1024)  # a requested size is rounded up to one of these (bounded cache)
CHUNK = 256 * 1024  # bytes per read when streaming a file
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
    path: Path  # resolved: no symlink in it, inside the dataset root
    media_type: str
    stat: os.stat_result


def _inside(path: str, root: str) -> bool:
    return path == root or path.startswith(root.rstrip(os.sep) + os.sep)


def image_file(record: ImageRecord) -> ImageFile:
    """The file of a stored image, checked to resolve (now) to a regular file under its dataset root."""
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
    gone = NotFound(f"image {record.id}'s file is gone from {record.dataset!r}; ingest the dataset again.")
    try:
        real = os.path.realpath(record.path, strict=True)
        root = os.path.realpath(record.root, strict=True)
    except OSError:
        raise gone from None
    if not _inside(real, root):
        raise FileNotServed(
            f"image {record.id}'s file is now a link that resolves outside its dataset root, so it is not "
            "served; replace the link with the file itself (or ingest the folder it points to)."
        )
    try:
        stat = os.stat(real)
    except OSError:
        raise gone from None
    if not stat_module.S_ISREG(stat.st_mode):
        raise FileNotServed(
            f"image {record.id}'s path is not a regular file (a FIFO, device or folder), so it is not "
            "served; put the image file back and ingest the dataset again."
        )
    return ImageFile(Path(real), media_type, stat)


def open_image(file: ImageFile) -> BinaryIO:
    """The checked file, opened once: no symlink followed, no blocking open, and the same file (device
    and inode) as the one checked; FileNotServed when it was swapped in between."""
    flags = os.O_RDONLY | getattr(os, "O_NOFOLLOW", 0) | getattr(os, "O_NONBLOCK", 0)
    try:
        fd = os.open(file.path, flags | getattr(os, "O_CLOEXEC", 0))
    except OSError:
        raise FileNotServed(f"{file.path.name} changed while it was being served; ask again.") from None
    opened = os.fstat(fd)
    same = (opened.st_dev, opened.st_ino) == (file.stat.st_dev, file.stat.st_ino)
    if not same or not stat_module.S_ISREG(opened.st_mode):
        os.close(fd)
        raise FileNotServed(f"{file.path.name} changed while it was being served; ask again.")
    return os.fdopen(fd, "rb")


def stream(handle: BinaryIO) -> Iterator[bytes]:
    """The file's bytes in chunks, closing it at the end (or when the client goes away)."""
    with handle:
        while chunk := handle.read(CHUNK):
            yield chunk


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
    with open_image(file) as handle:
        data = _make_thumbnail(handle.read(), file.path.name, size)
    if cached is not None:
        _write_quietly(cached, data)
    return data


def _make_thumbnail(original: bytes, name: str, size: int) -> bytes:
    from PIL import Image

    if not original:
        raise ImageError(f"{name} is empty (0 bytes); ingest the dataset again.")
    rgb, _, _ = prepare(original, None)  # the ingest path: orientation, alpha, 16-bit, CMYK ...
    image = Image.fromarray(rgb, "RGB")
    image.thumbnail((size, size), Image.Resampling.LANCZOS, reducing_gap=3.0)
    out = io.BytesIO()
    try:
        image.save(out, "JPEG", quality=85, optimize=True)
    except OSError as exc:  # pragma: no cover - PIL's encoder failing on an RGB image is unexpected
        raise ImageError(f"cannot make a thumbnail of {name}: {exc}") from exc
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


__all__ = ["ImageFile", "image_file", "open_image", "stream", "thumbnail", "thumbnail_size"]
