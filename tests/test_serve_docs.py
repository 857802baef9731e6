"""The API pages (/docs: Swagger UI, /redoc: ReDoc) work offline: every script, style sheet and icon they
use is served by vstore itself, none comes from another host (issue 20, hostile case 14: /docs was blank
offline because its scripts loaded from a CDN)."""

from __future__ import annotations

import re
from urllib.parse import urlsplit

import pytest
from fastapi.testclient import TestClient

from vstore.serve.app import create_app

# src="...", href="...", spec-url="..." (ReDoc), url: '...' (Swagger UI's options), and any quoted http(s) URL
URL = re.compile(
    r"""(?:src|href|spec-url)\s*=\s*["']([^"']+)["']"""
    r"""|url:\s*["']([^"']+)["']"""
    r"""|["'](https?://[^"']+)"""
)


@pytest.fixture(scope="module")
def client(server_url, template_url, tiny_encoder, tmp_path_factory):
    from tests.conftest import TEMPLATE_DB, _drop_database, _fresh_database, with_database
    from vstore.config import Settings

    name = _fresh_database(server_url, TEMPLATE_DB)
    settings = Settings(database_url=with_database(server_url, name), home=tmp_path_factory.mktemp("docs"))
    try:
        with TestClient(create_app(settings, encoder=tiny_encoder)) as client:
            yield client
    finally:
        _drop_database(server_url, name)


def references(html: str) -> list[str]:
    return [next(g for g in match.groups() if g) for match in URL.finditer(html)]


@pytest.mark.parametrize("page", ["/docs", "/redoc"])
def test_the_api_pages_reference_no_other_host_and_every_asset_loads(client, page):
    response = client.get(page)
    assert response.status_code == 200 and "text/html" in response.headers["content-type"]
    html = response.text
    assert "http://" not in html and "https://" not in html and "//cdn" not in html, html
    urls = references(html)
    assert urls, html
    kinds = set()
    for url in urls:
        parts = urlsplit(url)
        assert not parts.scheme and not parts.netloc, url  # same origin only
        asset = client.get(url)
        assert asset.status_code == 200 and len(asset.content) > 0, (url, asset.status_code)
        kinds.add(asset.headers["content-type"].split(";")[0])
    assert "text/javascript" in kinds or "application/javascript" in kinds
    assert "/openapi.json" in urls


def test_swagger_ui_is_told_not_to_call_the_public_validator(client):
    # Swagger UI's default validatorUrl is a public service it would send the schema's address to.
    assert '"validatorUrl": null' in client.get("/docs").text


def test_the_bundles_are_where_the_adapter_expects_them():
    """docs.py reads fastapi-offline's package data; a release that moves or drops a file fails here."""
    from vstore.serve.docs import ASSET_FILES, assets_folder

    folder = assets_folder()
    assert all((folder / name).is_file() and (folder / name).stat().st_size > 0 for name in ASSET_FILES)
