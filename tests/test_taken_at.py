"""images.taken_at (revision 0006): the EXIF capture date when the file has one, else the file's mtime,
recorded at ingest; rows older than the revision are backfilled from their stored mtime."""

from __future__ import annotations

import io
import os
from datetime import UTC, datetime, timedelta, timezone

import psycopg
from PIL import Image

from tests import imagegen
from vstore.encode.images import capture_time
from vstore.ingest.pipeline import ingest

MTIME = datetime(2011, 3, 4, 5, 6, 7, tzinfo=UTC).timestamp()


def _with_exif(original: str | None, plain: str | None = None, offset: str | None = None) -> bytes:
    image = imagegen.draw(1)
    exif = Image.Exif()
    if plain:
        exif[0x0132] = plain
    sub = exif.get_ifd(0x8769)
    if original:
        sub[0x9003] = original
    if offset:
        sub[0x9011] = offset
    buffer = io.BytesIO()
    image.save(buffer, "JPEG", exif=exif)
    return buffer.getvalue()


def test_capture_time_reads_exif_dates_and_their_offset():
    assert (
        capture_time(_with_exif("2019:07:08 09:10:11"))
        == datetime(2019, 7, 8, 9, 10, 11, tzinfo=UTC).timestamp()
    )
    zoned = datetime(2019, 7, 8, 9, 10, 11, tzinfo=timezone(timedelta(hours=2))).timestamp()
    assert capture_time(_with_exif("2019:07:08 09:10:11", offset="+02:00")) == zoned
    assert (
        capture_time(_with_exif(None, plain="2018:01:02 03:04:05"))
        == datetime(2018, 1, 2, 3, 4, 5, tzinfo=UTC).timestamp()
    )
    assert capture_time(_with_exif("0000:00:00 00:00:00")) is None
    buffer = io.BytesIO()
    imagegen.draw(2).save(buffer, "PNG")
    assert capture_time(buffer.getvalue()) is None
    assert capture_time(b"not an image") is None


def test_ingest_records_the_mtime_when_there_is_no_exif_date(settings, tiny_encoder, tmp_path):
    path = imagegen.save_jpeg(tmp_path / "photos" / "plain.jpg", 3)
    os.utime(path, (MTIME, MTIME))
    ingest(settings, tmp_path / "photos", encoder=tiny_encoder)
    with psycopg.connect(settings.database_url) as conn:
        (taken,) = conn.execute("SELECT taken_at FROM images").fetchone()
    assert taken.timestamp() == MTIME


def test_ingest_records_the_exif_date_over_the_mtime(settings, tiny_encoder, tmp_path):
    path = tmp_path / "photos" / "dated.jpg"
    path.parent.mkdir(parents=True)
    path.write_bytes(_with_exif("2019:07:08 09:10:11"))
    os.utime(path, (MTIME, MTIME))
    ingest(settings, tmp_path / "photos", encoder=tiny_encoder)
    with psycopg.connect(settings.database_url) as conn:
        (taken,) = conn.execute("SELECT taken_at FROM images").fetchone()
    assert taken == datetime(2019, 7, 8, 9, 10, 11, tzinfo=UTC)


def test_the_migration_backfills_taken_at_from_mtime(empty_settings):
    from tests.conftest import TINY_SPEC
    from vstore.db.migrations import upgrade

    upgrade(empty_settings, "0005", TINY_SPEC)
    with psycopg.connect(empty_settings.database_url) as conn:
        dataset = conn.execute(
            "INSERT INTO datasets (name, root, format) VALUES ('d', '/x', 'folder') RETURNING id"
        ).fetchone()[0]
        conn.execute(
            "INSERT INTO images (dataset_id, path, mtime) VALUES (%s, 'a.jpg', %s)", (dataset, MTIME)
        )
        conn.execute("INSERT INTO images (dataset_id, path) VALUES (%s, 'b.jpg')", (dataset,))
        conn.commit()
    upgrade(empty_settings, "head")
    with psycopg.connect(empty_settings.database_url) as conn:
        rows = conn.execute("SELECT path, taken_at FROM images ORDER BY path").fetchall()
    assert rows[0][1].timestamp() == MTIME and rows[1][1] is None
