"""Reading images in worker processes: read the bytes once, hash them, decode, convert to RGB, apply the
model's preprocess transform. Runs in a multiprocessing pool so the encoder never waits on I/O.

A task whose bytes hash to the `expected` digest (the row's stored hash, on --rescan or a touched file)
is not decoded at all: its stored embedding is still right.
"""

from __future__ import annotations

import hashlib
import io
import os
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

_transform: Callable[[Any], Any] | None = None
_draft_size: int | None = None


@dataclass(frozen=True)
class DecodeTask:
    index: int
    file: str | bytes  # os.fspath of the image; bytes keep non-UTF-8 names intact
    expected_hash: str | None = None


@dataclass
class Decoded:
    index: int
    content_hash: str | None = None
    size: int | None = None
    mtime: float | None = None
    width: int | None = None
    height: int | None = None
    pixels: np.ndarray | None = None  # None when the hash matched `expected_hash` or decoding failed
    error: str | None = None
    seconds: float = 0.0


def init_worker(transform: Callable[[Any], Any], draft_size: int | None, threads: int = 1) -> None:
    """Pool initializer: keep the transform in the worker; one torch thread per worker (the pool is the
    parallelism, and the encoder needs the cores)."""
    global _transform, _draft_size
    _transform, _draft_size = transform, draft_size
    try:
        import torch

        if threads > 0:
            torch.set_num_threads(threads)
    except ImportError:  # pragma: no cover - torch is a dependency
        pass


def to_rgb(image: Any) -> Any:
    """Any PIL mode to RGB: EXIF orientation applied; palette/alpha composited on white; 16-bit and float
    greyscale scaled to 8 bits; CMYK and YCbCr converted."""
    from PIL import Image, ImageOps

    image = ImageOps.exif_transpose(image) or image
    if image.mode in ("I;16", "I;16B", "I;16L", "I;16N", "I", "F"):
        array = np.asarray(image, dtype=np.float64)
        high = array.max() if array.size else 0
        scale = 255.0 / 65535.0 if image.mode.startswith("I;16") or high > 255 else 1.0
        if image.mode == "F" and high <= 1.0:
            scale = 255.0
        image = Image.fromarray(np.clip(array * scale, 0, 255).astype(np.uint8), mode="L")
    if image.mode == "P":
        image = image.convert("RGBA") if "transparency" in image.info else image.convert("RGB")
    if image.mode in ("RGBA", "LA", "PA", "La", "RGBa"):
        rgba = image.convert("RGBA")
        background = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
        image = Image.alpha_composite(background, rgba)
    if image.mode != "RGB":
        image = image.convert("RGB")
    return image


def decode_bytes(
    data: bytes, transform: Callable[[Any], Any] | None, draft_size: int | None
) -> tuple[Any, int, int]:
    """(model input, width, height) of an image file's bytes; gif/tiff/webp animations use frame 0."""
    from PIL import Image

    with Image.open(io.BytesIO(data)) as image:
        width, height = image.size
        if draft_size and image.format == "JPEG":
            # Decode at 1/2, 1/4 or 1/8 scale when the result still covers the model's input size:
            # several times faster for photos much larger than 224 px.
            image.draft("RGB", (draft_size, draft_size))
        image.seek(0)
        image.load()
        rgb = to_rgb(image)
        if transform is None:
            return np.asarray(rgb), width, height
        pixels = transform(rgb)
        return (pixels.numpy() if hasattr(pixels, "numpy") else np.asarray(pixels)), width, height


def describe(exc: BaseException) -> str:
    name = type(exc).__name__
    text = str(exc).strip().splitlines()[0] if str(exc).strip() else ""
    if name == "UnidentifiedImageError":
        return "not an image (or an unsupported format)"
    return f"{name}: {text}" if text else name


def decode_one(task: DecodeTask) -> Decoded:
    started = time.perf_counter()
    result = Decoded(index=task.index)
    try:
        stat = os.stat(task.file)
        result.size, result.mtime = stat.st_size, stat.st_mtime
        with open(task.file, "rb") as handle:
            data = handle.read()
    except OSError as exc:
        result.error = f"unreadable: {exc.strerror or describe(exc)}"
        result.seconds = time.perf_counter() - started
        return result
    result.content_hash = hashlib.sha256(data).hexdigest()
    if not data:
        result.error = "empty file (0 bytes)"
    elif result.content_hash != task.expected_hash:
        try:
            result.pixels, result.width, result.height = decode_bytes(data, _transform, _draft_size)
        except Exception as exc:  # PIL raises many types for corrupt or truncated data
            result.error = describe(exc)
        except (MemoryError, RecursionError) as exc:  # decompression bombs and worse
            result.error = describe(exc)
    result.seconds = time.perf_counter() - started
    return result


def decode_many(tasks: Sequence[DecodeTask]) -> list[Decoded]:
    return [decode_one(task) for task in tasks]


def draft_size_of(transform: Any) -> int | None:
    """The square size the transform resizes to (open_clip: Resize(n) then CenterCrop(n)), if visible."""
    for step in getattr(transform, "transforms", ()):
        size = getattr(step, "size", None)
        if isinstance(size, int):
            return size
        if isinstance(size, (tuple, list)) and size:
            return int(max(size))
    return None
