"""The API's browsable pages, /docs (Swagger UI) and /redoc (ReDoc), with every asset served by vstore, so
they work on a machine without internet access. FastAPI's own pages load their scripts from a CDN and
their icon from fastapi.tiangolo.com: offline, /docs was blank.

The assets come from the `fastapi-offline` package (MIT; it ships the Swagger UI and ReDoc bundles, both
under their own permissive licences, about 2.8 MB installed). Only its package data is used, through
ASSETS below; tests/test_serve_docs.py fails if that folder moves or loses a file.
"""

from __future__ import annotations

from importlib.resources import files
from pathlib import Path

from fastapi import FastAPI
from fastapi.openapi.docs import get_redoc_html, get_swagger_ui_html, swagger_ui_default_parameters
from fastapi.responses import HTMLResponse
from fastapi.staticfiles import StaticFiles

ASSETS_URL = "/docs-assets"
ASSET_FILES = ("swagger-ui-bundle.js", "swagger-ui.css", "redoc.standalone.js", "favicon.png")


def assets_folder() -> Path:
    """Where fastapi-offline keeps the bundles (its package data)."""
    return Path(str(files("fastapi_offline") / "static"))


def add_api_pages(app: FastAPI) -> None:
    """/docs and /redoc over app.openapi_url; the app must be made with docs_url=None, redoc_url=None."""
    openapi_url = app.openapi_url or "/openapi.json"
    app.mount(ASSETS_URL, StaticFiles(directory=assets_folder()), name="docs-assets")
    # validatorUrl null: Swagger UI would otherwise send the schema's address to a public validator.
    parameters = {**swagger_ui_default_parameters, "validatorUrl": None}

    @app.get("/docs", include_in_schema=False)
    def swagger_ui() -> HTMLResponse:
        return get_swagger_ui_html(
            openapi_url=openapi_url,
            title=f"{app.title} - API",
            swagger_js_url=f"{ASSETS_URL}/swagger-ui-bundle.js",
            swagger_css_url=f"{ASSETS_URL}/swagger-ui.css",
            swagger_favicon_url=f"{ASSETS_URL}/favicon.png",
            swagger_ui_parameters=parameters,
        )

    @app.get("/redoc", include_in_schema=False)
    def redoc() -> HTMLResponse:
        return get_redoc_html(
            openapi_url=openapi_url,
            title=f"{app.title} - API",
            redoc_js_url=f"{ASSETS_URL}/redoc.standalone.js",
            redoc_favicon_url=f"{ASSETS_URL}/favicon.png",
            with_google_fonts=False,
        )


__all__ = ["ASSETS_URL", "ASSET_FILES", "add_api_pages", "assets_folder"]
