"""`vstore bench synth|storage|models|load`: synthetic data at scale and the benchmarks that need no
compare harness. Thin: one library call each."""

from __future__ import annotations

from typing import Annotated

import typer

from vstore.cli.app import JsonOpt, app, info, print_json, settings

bench_app = typer.Typer(
    help="Benchmark helpers: synthetic data at scale, embedding models.", no_args_is_help=True
)
app.add_typer(bench_app, name="bench")


@bench_app.command("models")
def bench_models_command(
    models: Annotated[
        str,
        typer.Option(
            "--models",
            metavar="NAME[,NAME...]",
            help="open_clip models, comma-separated (default: the ImageNet DET study's set).",
        ),
    ] = "ViT-B-32,ViT-B-16,ViT-L-14,RN50,RN50x4,ViT-S-32",
    pretrained: Annotated[
        str, typer.Option(help="Weights: 'random' (the architecture's cost, no download) or a tag.")
    ] = "random",
    batch: Annotated[
        int,
        typer.Option("--batch-size", help="Images and texts per encoder call (the same for every model)."),
    ] = 16,
    repeats: Annotated[int, typer.Option(help="Timed batches after one warm-up batch.")] = 3,
    threads: Annotated[int, typer.Option(help="torch threads (the same for every model).")] = 1,
    device: Annotated[str, typer.Option(metavar="DEVICE", help="cpu or cuda.")] = "cpu",
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
    k: Annotated[int, typer.Option("-k", "--k", metavar="N", help="Neighbours per query.")] = 10,
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


@bench_app.command("synth")
def bench_synth(
    rows: Annotated[int, typer.Option("--rows", help="Images to generate (each with its captions).")],
    dim: Annotated[
        int | None, typer.Option(help="Vector dimension; must equal the database model's.")
    ] = None,
    profile: Annotated[
        str,
        typer.Option(
            metavar="clusters|clip",
            help="clusters: unit vectors around spread-out centres; clip: CLIP-like (modality gap, "
            "low intrinsic dimension, uneven clusters), see docs/benchmarks.md.",
        ),
    ] = "clusters",
    captions_per_image: Annotated[
        int | None, typer.Option(help="Captions per image (default 1 for clusters, 5 for clip).")
    ] = None,
    caption_sample: Annotated[
        int | None,
        typer.Option(help="Caption only this many images, evenly spaced (query material at scale)."),
    ] = None,
    seed: Annotated[int, typer.Option(help="Random seed (same seed, same vectors).")] = 0,
    dataset: Annotated[
        str, typer.Option(metavar="NAME", help="Dataset name (an earlier one of that name is replaced).")
    ] = "synth",
    force: Annotated[
        bool, typer.Option("--force", help="Load even into a database that holds real datasets.")
    ] = False,
    as_json: JsonOpt = False,
) -> None:
    """Fill a scratch dataset with synthetic normalised vectors for benchmarks when no real data is at
    hand: clustered (--profile clusters) or CLIP-like (--profile clip). Indexes are rebuilt after the
    load; the report gives the copy and index-build seconds."""
    from vstore.bench.synth import load_synthetic

    def progress(stage: str, done: int, total: int) -> None:
        if stage == "indexes" or done == total:
            info(f"{stage}: {done}/{total}")

    report = load_synthetic(
        settings(),
        rows,
        dataset=dataset,
        captions_per_image=captions_per_image,
        caption_sample=caption_sample,
        profile=profile,
        seed=seed,
        dim=dim,
        progress=progress,
        force=force,
    )
    if as_json:
        print_json({**report.__dict__, "rows_per_second": report.rows_per_second})
    else:
        info(
            f"{report.images} images + {report.captions} captions ({report.dim}-d) in dataset "
            f"{report.dataset!r}: copy {report.seconds_copy:.1f}s, indexes {report.seconds_index:.1f}s"
        )


@bench_app.command("storage")
def bench_storage(
    queries: Annotated[int, typer.Option(help="Query vectors (sampled from the images).")] = 20,
    k: Annotated[int, typer.Option("-k", "--k", metavar="N", help="Neighbours per query.")] = 10,
    repeats: Annotated[int, typer.Option(help="Timed passes; latencies are medians.")] = 3,
    as_json: JsonOpt = False,
) -> None:
    """Exact-scan latency with the embedding stored PLAIN, EXTENDED (PostgreSQL's default: TOASTed) or
    as halfvec, on scratch copies of the images' vectors (dropped after)."""
    from vstore.bench.storage import storage_effect

    rows = storage_effect(settings(), queries=queries, k=k, repeats=repeats)
    if as_json:
        print_json([row.__dict__ for row in rows])
        return
    typer.echo("variant   heap_MB  toast_MB  p50_ms  server_ms")
    for row in rows:
        typer.echo(
            f"{row.variant:<9} {row.heap_bytes / 1e6:>7.1f} {row.toast_bytes / 1e6:>9.1f} "
            f"{row.p50_ms:>7.2f} {row.server_ms:>10.2f}"
        )
