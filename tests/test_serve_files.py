"""`/images/{id}` serves only a regular file whose resolved path, at request time, lies inside its dataset's
root: a symlink planted over an ingested file (pointing out of the root), a FIFO and a device file are
refused, while a symlink that stays inside the root is still served (issue 20, hostile case 7)."""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from tests.serve_fixtures import ingested_database
from vstore.config import Settings
from vstore.db.connect import connection
from vstore.serve.app import create_app


@pytest.fixture(scope="module")
def served(server_url, template_url, tiny_encoder, tmp_path_factory):
    root = tmp_path_factory.mktemp("serve-files")
    with ingested_database(server_url, root, tiny_encoder) as settings:
        yield settings, root


@pytest.fixture(scope="module")
def client(served, tiny_encoder):
    with TestClient(create_app(served[0], encoder=tiny_encoder)) as client:
        yield client


def image_id(settings: Settings, path: str) -> int:
    with connection(settings) as conn:
        return int(conn.execute("SELECT id FROM images WHERE path = %s", (path,)).fetchone()[0])


@contextmanager
def planted(target: Path) -> Iterator[Path]:
    """Move an ingested file aside for the duration; the caller plants something in its place."""
    aside = target.with_name(target.name + ".aside")
    target.rename(aside)
    try:
        yield aside
    finally:
        if target.is_symlink() or target.exists():
            target.unlink()
        aside.rename(target)


def refused(response) -> dict:
    assert response.status_code in (403, 404), (response.status_code, response.content[:200])
    assert response.headers["content-type"].startswith("application/json")
    return response.json()


def test_a_symlink_planted_over_an_ingested_file_pointing_out_of_the_root_is_not_served(
    client, served, tmp_path
):
    settings, root = served
    secret = tmp_path / "secret.jpg"  # a readable JPEG outside every dataset root
    shutil.copy(root / "odd" / "large.jpg", secret)
    target = root / "coco" / "val2017" / "000000000104.jpg"
    query = image_id(settings, "val2017/000000000104.jpg")
    with planted(target):
        target.symlink_to(secret)
        for params in ({}, {"size": 64}):
            body = refused(client.get(f"/images/{query}", params=params))
            assert "outside" in body["message"] or "not a regular file" in body["message"]
    assert client.get(f"/images/{query}").content == target.read_bytes()  # the real file again


def test_a_symlink_to_a_file_outside_any_dataset_like_etc_passwd_is_not_served(client, served):
    settings, root = served
    target = root / "odd" / "plain.bmp"
    query = image_id(settings, "plain.bmp")
    with planted(target):
        target.symlink_to("/etc/passwd")
        response = client.get(f"/images/{query}")
        refused(response)
        assert b"root:" not in response.content


def test_a_symlink_that_stays_inside_the_dataset_root_is_served(client, served):
    settings, root = served
    target = root / "odd" / "plain.tiff"
    query = image_id(settings, "plain.tiff")
    with planted(target) as aside:
        target.symlink_to(aside.name)  # relative, same folder: inside the root
        response = client.get(f"/images/{query}")
        assert response.status_code == 200 and response.content == aside.read_bytes()


def test_a_fifo_or_a_device_in_place_of_an_ingested_file_is_refused_without_blocking(client, served):
    settings, root = served
    target = root / "odd" / "grey.png"
    query = image_id(settings, "grey.png")
    with planted(target):
        os.mkfifo(target)  # opening a FIFO for reading would block until a writer comes: it must not
        assert "not a regular file" in refused(client.get(f"/images/{query}"))["message"]
        assert "not a regular file" in refused(client.get(f"/images/{query}", params={"size": 64}))["message"]
    with planted(target):
        target.symlink_to("/dev/zero")
        refused(client.get(f"/images/{query}"))
