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
        Path, typer.Argument(help="Directory to write the vectors, ids, metadata and manifest to.")
    ],
    format: Annotated[
        str, typer.Option("--format", help="npy (float32 arrays + CSV metadata) or parquet.")
    ] = "npy",
    table: Annotated[str, typer.Option("--table", help="images, captions or both.")] = "both",
    chunk_rows: Annotated[int, typer.Option(help="Rows held in memory at a time while streaming.")] = 8192,
    as_json: JsonOpt = False,
) -> None:
    """Stream vectors out of the database (binary COPY, constant memory) with their database ids and
    metadata: <table>.npy, <table>_ids.npy, <table>_meta.csv (or <table>.parquet) and manifest.json."""
    from vstore.compare.export import EXPORT_TABLES
    from vstore.compare.export import export as run_export

    if table not in (*EXPORT_TABLES, "both"):
        raise ConfigError(f"--table must be images, captions or both (got {table!r}).")
    tables = EXPORT_TABLES if table == "both" else (table,)
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
