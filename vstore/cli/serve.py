"""`vstore serve`: the HTTP API and the web page. Thin: parse, one library call (vstore.serve.server)."""

from __future__ import annotations

from typing import Annotated

import typer

from vstore.cli.app import app, info, settings, warn


@app.command()
def serve(
    host: Annotated[
        str, typer.Option(help="Address to listen on. 127.0.0.1 (default) is this machine only.")
    ] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="Port to listen on.")] = 8765,
    device: Annotated[
        str | None, typer.Option(metavar="DEVICE", help="Encoder device: auto, cpu or cuda.")
    ] = None,
    connections: Annotated[
        int | None,
        typer.Option(
            metavar="N",
            help="Database connections, so N requests run at once (default 4, VSTORE_SERVE_CONNECTIONS).",
        ),
    ] = None,
) -> None:
    """Serve the web page and the JSON API (OpenAPI at /docs) with the database's model loaded once.

    Open the printed address in a browser: search by text or by a dropped image, click an image for its
    captions and similar images. Only reads the database (plus the text cache). Ctrl-C stops it."""
    from vstore.serve.server import is_loopback
    from vstore.serve.server import serve as run_server

    if not is_loopback(host):
        warn(f"listening on {host}: anyone who can reach it can search and download the stored images.")
    current = settings(device=device, serve_connections=connections)

    def ready(url: str, application: object) -> None:
        backend = application.state.backend  # type: ignore[attr-defined]
        random = " (RANDOM WEIGHTS: results are meaningless)" if backend.model.random_weights else ""
        info(f"{backend.model.label} on {backend.device}{random}; {backend.pool.size} database connections")
        info(f"serving {url}  (API docs: {url}docs; Ctrl-C stops)")

    run_server(current, host, port, ready=ready, bound=lambda: info("loading the model ..."))
