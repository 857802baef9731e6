"""One image path: the file a user searches with gives the vector ingest stored for it, EXIF rotation
included. Nothing here computes the expected vector with the function under test: the stored vector
comes from the ingest workers, the query vector from `search --image` / eval's query loader."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from tests.imagegen import draw
from vstore.encode.images import prepare, prepare_file
from vstore.errors import ImageError, NotFound
from vstore.evaluation.queries import encode_queries
from vstore.ingest import ingest
from vstore.search.store import Store


def _save_rotated_jpeg(path: Path) -> Path:
    """A 96x48 picture stored as 48x96 pixels with EXIF orientation 6 (rotate 90 degrees clockwise to
    view), the way phones save portrait shots."""
    upright = draw(3, size=(96, 48))
    stored = upright.transpose(Image.Transpose.ROTATE_90)  # what the sensor wrote
    exif = Image.Exif()
    exif[0x0112] = 6
    stored.save(path, "JPEG", quality=95, exif=exif.tobytes())
    return path


@pytest.fixture
def photos(tmp_path: Path) -> Path:
    root = tmp_path / "photos"
    root.mkdir()
    _save_rotated_jpeg(root / "portrait.jpg")
    for i in range(4):
        draw(i, size=(64, 48)).save(root / f"other{i}.png")
    return root


def test_exif_rotated_photo_searched_by_file_comes_back_first_at_distance_zero(
    settings, tiny_encoder, photos
):
    ingest(settings, photos, encoder=tiny_encoder)
    with Store(settings, encoder=tiny_encoder) as store:
        hits = store.search_image(photos / "portrait.jpg", k=3, exact=True)
    assert hits[0].path.endswith("portrait.jpg")
    assert hits[0].distance < 1e-4


def test_eval_query_loader_gives_the_vector_ingest_stored(settings, tiny_encoder, photos):
    ingest(settings, photos, encoder=tiny_encoder)
    with Store(settings, encoder=tiny_encoder) as store:
        stored = next(
            store.image_vector(h.id)
            for h in store.search_image(photos / "portrait.jpg", k=5, exact=True)
            if h.path.endswith("portrait.jpg")
        )
    query = encode_queries(tiny_encoder, [photos / "portrait.jpg"])[0]
    assert float(1 - np.dot(stored, query)) < 1e-4


def test_exif_orientation_is_applied_not_ignored(tiny_encoder, photos):
    """The rotation changes the vector, so the tests above would fail if it were skipped."""
    transform = tiny_encoder.image_transform()
    applied = prepare_file(photos / "portrait.jpg", transform)
    with Image.open(photos / "portrait.jpg") as raw:
        ignored = transform(raw.convert("RGB")).numpy()
    assert applied.shape == ignored.shape
    assert not np.allclose(applied, ignored, atol=1e-3)
    _, width, height = prepare((photos / "portrait.jpg").read_bytes(), None)
    assert (width, height) == (48, 96)  # the stored size; the prepared picture is the upright one


def test_unreadable_files_raise_typed_errors(tmp_path: Path):
    with pytest.raises(NotFound, match="no image file"):
        prepare_file(tmp_path / "missing.png", None)
    (tmp_path / "broken.png").write_bytes(b"not a png")
    with pytest.raises(ImageError, match="not an image"):
        prepare_file(tmp_path / "broken.png", None)
