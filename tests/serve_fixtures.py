"""Datasets for the `vstore serve` tests: a COCO layout with two splits and a folder of awkward files,
ingested with the tiny model into a database of its own (shared by a module's tests: the server only
reads), and a PNG bomb."""

from __future__ import annotations

import struct
import zlib
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from tests import imagegen
from tests.conftest import TEMPLATE_DB, _drop_database, _fresh_database, with_database
from vstore.config import Settings
from vstore.ingest.pipeline import ingest


@contextmanager
def ingested_database(
    server_url: str,
    root: Path,
    encoder,
    size: tuple[int, int] = (64, 48),  # noqa: ANN001
) -> Iterator[Settings]:
    """A fresh database holding dataset 'coco' (val2017: 12 images, train2017: 6) and 'odd' (a folder of
    odd formats plus one 800x600 JPEG, large enough for the reduced-scale JPEG decode)."""
    name = _fresh_database(server_url, TEMPLATE_DB)
    settings = Settings(
        database_url=with_database(server_url, name), home=root / "home", batch_size=8, workers=1
    )
    try:
        coco = root / "coco"
        imagegen.make_coco(coco, "val2017", n=12, size=size)
        imagegen.make_coco(coco, "train2017", n=6, first_id=500, size=size)
        odd = root / "odd"
        imagegen.make_odd_images(odd)
        imagegen.save_jpeg(odd / "large.jpg", 7, (800, 600))
        ingest(settings, coco, dataset="coco", encoder=encoder)
        ingest(settings, odd, dataset="odd", encoder=encoder)
        yield settings
    finally:
        _drop_database(server_url, name)


def huge_png(width: int, height: int) -> bytes:
    """A valid 1-bit PNG of width x height pixels (all black): a few tens of KB that would decode to
    gigabytes. Written row by row, so making it needs no more memory than one row."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    header = struct.pack(">IIBBBBB", width, height, 1, 0, 0, 0, 0)
    row = b"\x00" * (1 + (width + 7) // 8)
    packer = zlib.compressobj(9)
    body = b"".join(packer.compress(row) for _ in range(height)) + packer.flush()
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", body) + chunk(b"IEND", b"")
