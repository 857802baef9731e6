"""THE one path from bytes to a model-ready image. Ingest workers, `search --image`, eval's image
queries, `vstore serve` uploads and fine-tuning all call `prepare`, so the same file always gives the same
pixels, and so the same vector: EXIF orientation applied, palette/alpha composited on white, 16-bit and
float greyscale scaled to 8 bits, CMYK/YCbCr converted, JPEGs decoded at reduced scale when the result still
covers the model's input, frame 0 of animations, and a pixel limit against decompression bombs.
"""

from __future__ import annotations

import io
import os
import warnings
from collections.abc import Callable
from datetime import UTC
from pathlib import Path
from typing import Any

import numpy as np

from vstore.errors import ImageError, NotFound

IMAGE_SUFFIXES = frozenset({".jpg", ".jpeg", ".png", ".webp", ".bmp", ".gif", ".tif", ".tiff"})
# PIL's own limit (89.5 Mpx) only warns below twice its value; vstore refuses above it, with a clear error.
MAX_PIXELS = 89_478_485


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


def is_image_name(name: str) -> bool:
    """Whether a file name has one of the image suffixes vstore reads."""
    return os.path.splitext(name)[1].lower() in IMAGE_SUFFIXES


def prepare(data: bytes, transform: Callable[[Any], Any] | None) -> tuple[np.ndarray, int, int]:
    """(model input as a numpy array, width, height) of an image file's bytes. Raises ImageError."""
    from PIL import Image

    try:
        with warnings.catch_warnings():
            # PIL's advice ("Palette images with Transparency expressed in bytes should be converted to
            # RGBA images") is followed by to_rgb; shown, it leaks a bare "warnings.warn(" line per image.
            warnings.simplefilter("ignore")
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            with Image.open(io.BytesIO(data)) as image:
                width, height = image.size
                if width * height > MAX_PIXELS:
                    raise ImageError(
                        f"{width}x{height} pixels is over the {MAX_PIXELS:,}-pixel limit; "
                        "resize the image (a few megapixels is plenty for CLIP)."
                    )
                draft_size = draft_size_of(transform)
                if draft_size and image.format == "JPEG":
                    # Decode at 1/2, 1/4 or 1/8 scale when the result still covers the model's input
                    # size: several times faster for photos much larger than 224 px.
                    image.draft("RGB", (draft_size, draft_size))
                image.seek(0)
                image.load()
                rgb = to_rgb(image)
    except ImageError:
        raise
    except Image.DecompressionBombError as exc:  # PIL refuses over twice its limit, before .size is seen
        raise ImageError(
            f"over the {MAX_PIXELS:,}-pixel limit ({describe(exc)}); "
            "resize the image (a few megapixels is plenty for CLIP)."
        ) from exc
    except (Exception, MemoryError, RecursionError) as exc:  # PIL raises many types for bad data
        raise ImageError(describe(exc)) from exc
    if transform is None:
        return np.asarray(rgb), width, height
    pixels = transform(rgb)
    return (pixels.numpy() if hasattr(pixels, "numpy") else np.asarray(pixels)), width, height


# EXIF tags: the Exif sub-IFD, DateTimeOriginal (when the shutter fired) and OffsetTimeOriginal in it,
# and the main IFD's DateTime (when the file was last written by the camera or an editor).
_EXIF_IFD, _DATE_TIME_ORIGINAL, _OFFSET_TIME_ORIGINAL, _DATE_TIME = 0x8769, 0x9003, 0x9011, 0x0132


def capture_time(data: bytes) -> float | None:
    """When the photo was taken, as POSIX seconds, from its EXIF DateTimeOriginal (else DateTime), or None
    when the file has no readable date. EXIF dates carry no zone unless OffsetTimeOriginal says one; a
    date without it is read as UTC. Reads the header only (no pixels)."""
    from datetime import datetime, timedelta, timezone

    from PIL import Image

    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            with Image.open(io.BytesIO(data)) as image:
                exif = image.getexif()
                sub = exif.get_ifd(_EXIF_IFD)
                raw = sub.get(_DATE_TIME_ORIGINAL) or exif.get(_DATE_TIME)
                offset = sub.get(_OFFSET_TIME_ORIGINAL) if sub.get(_DATE_TIME_ORIGINAL) else None
        if not isinstance(raw, str):
            return None
        when = datetime.strptime(raw.strip().rstrip("\x00")[:19], "%Y:%m:%d %H:%M:%S")
        zone = UTC
        if isinstance(offset, str) and len(offset.strip()) >= 6:
            sign = -1 if offset.strip()[0] == "-" else 1
            hours, minutes = int(offset.strip()[1:3]), int(offset.strip()[4:6])
            zone = timezone(sign * timedelta(hours=hours, minutes=minutes))
        return when.replace(tzinfo=zone).timestamp()
    except Exception:  # no EXIF, a malformed date ("0000:00:00 00:00:00"), an unreadable header
        return None


def read_file(path: str | bytes | os.PathLike[str]) -> bytes:
    """The bytes of an image file; ImageError (naming the file and the fix) when it cannot be read."""
    try:
        with open(path, "rb") as handle:
            data = handle.read()
    except (FileNotFoundError, IsADirectoryError) as exc:
        raise NotFound(
            f"no image file at {os.fsdecode(path)}; give the path of a JPEG/PNG/... file."
        ) from exc
    except OSError as exc:
        shown = os.fsdecode(path)
        raise ImageError(f"cannot read {shown}: {exc.strerror or describe(exc)}; check the path.") from exc
    if not data:
        raise ImageError(f"{os.fsdecode(path)} is empty (0 bytes); give a JPEG/PNG/... file.")
    return data


def prepare_file(path: str | Path, transform: Callable[[Any], Any] | None) -> np.ndarray:
    """Model input of an image file (what `search --image` and eval's image queries encode)."""
    data = read_file(Path(path).expanduser())
    try:
        return prepare(data, transform)[0]
    except ImageError as exc:
        fix = "" if str(exc).endswith(".") else "; give a readable JPEG/PNG/... file."  # the pixel limit says
        raise ImageError(f"{path}: {exc}{fix}") from None


def describe(exc: BaseException) -> str:
    name = type(exc).__name__
    text = str(exc).strip().splitlines()[0] if str(exc).strip() else ""
    if name == "UnidentifiedImageError":
        return "not an image (or an unsupported format)"
    return f"{name}: {text}" if text else name


def draft_size_of(transform: Any) -> int | None:
    """The square size the transform resizes to (open_clip: Resize(n) then CenterCrop(n)), if visible."""
    for step in getattr(transform, "transforms", ()):
        size = getattr(step, "size", None)
        if isinstance(size, int):
            return size
        if isinstance(size, (tuple, list)) and size:
            return int(max(size))
    return None
