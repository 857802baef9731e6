"""`vstore export`: the stored vectors, ids and metadata to files (for Faiss, notebooks, other tools)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from vstore.cli.app import JsonOpt, app, info, print_json, settings
from vstore.errors import ConfigError


@app.command()
def export(
    out_dir: Annotated[
        Path,
        typer.Argument(
            metavar="FOLDER", help="Directory to write the vectors, ids, metadata and manifest to."
        ),
    ],
    format: Annotated[
        str,
        typer.Option(
            "--format",
            metavar="npy|parquet|clip-retrieval",
            help="npy (float32 arrays + CSV metadata), parquet (embedding as a fixed-size list; DuckDB, "
            "pandas) or clip-retrieval (img_emb/, text_emb/, metadata/ shards; images only).",
        ),
    ] = "npy",
    target: Annotated[
        str,
        typer.Option(
            "--target", metavar="images|captions|both", help="Which vectors: images, captions or both."
        ),
    ] = "both",
    chunk_rows: Annotated[int, typer.Option(help="Rows held in memory at a time while streaming.")] = 8192,
    as_json: JsonOpt = False,
) -> None:
    """Stream vectors out of the database (binary COPY, constant memory) with their database ids and
    metadata: images.npy, images_ids.npy, images_meta.csv (or images.parquet), the same for captions, and
    manifest.json; or clip-retrieval's layout, one row per image with its first caption."""
    from vstore.compare.export import EXPORT_TABLES
    from vstore.compare.export import export as run_export

    if target not in (*EXPORT_TABLES, "both"):
        raise ConfigError(f"--target must be images, captions or both (got {target!r}).")
    tables = EXPORT_TABLES if target == "both" else (target,)
    report = run_export(
        settings(),
        out_dir,
        format=format,
        tables=tables,
        chunk_rows=chunk_rows,
        progress=lambda t, n: info(f"exported {n} {t}"),
    )
    if as_json:
        print_json({**report.__dict__, "counts": report.counts})
    else:
        info(
            f"{', '.join(f'{n} {t}' for t, n in report.counts.items())} ({report.model}, dim {report.dim}) "
            f"-> {report.out_dir} in {report.seconds:.1f}s"
        )
