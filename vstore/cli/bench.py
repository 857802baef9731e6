"""`vstore bench models`: embedding models side by side on this machine. Thin: one library call."""

from __future__ import annotations

from typing import Annotated

import typer

from vstore.cli.app import info, print_json, settings
from vstore.cli.compare import JsonOpt, bench_app


@bench_app.command("models")
def bench_models_command(
    models: Annotated[
        str,
        typer.Option(
            "--models",
            metavar="NAMES",
            help="open_clip models, comma-separated (the ImageNet DET study's set).",
        ),
    ] = "ViT-B-32,ViT-B-16,ViT-L-14,RN50,RN50x4,ViT-S-32",
    pretrained: Annotated[
        str, typer.Option(help="Weights: 'random' (the architecture's cost, no download) or a tag.")
    ] = "random",
    batch: Annotated[
        int, typer.Option(help="Images and texts per encoder call (the same for every model).")
    ] = 16,
    repeats: Annotated[int, typer.Option(help="Timed batches after one warm-up batch.")] = 3,
    threads: Annotated[int, typer.Option(help="torch threads (the same for every model).")] = 1,
    device: Annotated[str, typer.Option(help="cpu or cuda.")] = "cpu",
    as_json: JsonOpt = False,
) -> None:
    """Compare embedding models on this machine: parameters, weights on disk, dimension, images/s and
    texts/s through vstore's encoder, peak memory (each model in its own process)."""
    from vstore.bench.models import bench_models, format_models

    rows = bench_models(
        [models], pretrained, batch=batch, repeats=repeats, threads=threads, device=device, progress=info
    )
    if as_json:
        print_json(rows)
    else:
        typer.echo(format_models(rows))


@bench_app.command("load")
def bench_load_command(
    k: Annotated[int, typer.Option("-k", help="Neighbours per query.")] = 10,
    repeats: Annotated[int, typer.Option(help="Reads and warm queries; medians are reported.")] = 5,
    restart: Annotated[
        bool,
        typer.Option(
            "--restart",
            help="Restart the embedded PostgreSQL first, to time pgvector's first query with empty "
            "shared buffers (interrupts other sessions on it; refused for VSTORE_DATABASE_URL).",
        ),
    ] = False,
    as_json: JsonOpt = False,
) -> None:
    """Time getting each index ready: Faiss side indexes read from disk (and their first query), pgvector
    warm and, with --restart, cold after a server restart."""
    from vstore.bench.load import format_load_times, load_times

    rows = load_times(settings(), k=k, repeats=repeats, restart=restart, progress=info)
    if as_json:
        print_json(rows)
    else:
        typer.echo(format_load_times(rows))
