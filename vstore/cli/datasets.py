"""`vstore datasets`: what each dataset is (name, folder or manifest, format) and holds."""

from __future__ import annotations

from typing import Annotated

import typer

from vstore.cli.app import app, print_json, settings


@app.command()
def datasets(
    as_json: Annotated[bool, typer.Option("--json", help="Print one JSON list instead of a table.")] = False,
) -> None:
    """List the datasets: name, root folder, format, present images, their captions, missing and failed
    images. A dataset is its folder (or manifest file): two folders with one name are two datasets."""
    from vstore.db.datasets import list_datasets

    found = list_datasets(settings())
    if as_json:
        print_json([{k: v for k, v in vars(d).items() if k != "id"} for d in found])
        return
    if not found:
        typer.echo("no datasets yet; `vstore ingest PATH` adds one")
        return
    width = max(4, *(len(d.name) for d in found))
    header = ("format", "images", "captions", "missing", "failed")
    typer.echo(f"{'name':<{width}}  {header[0]:<8}" + "".join(f" {h:>9}" for h in header[1:]) + "  source")
    for d in found:
        counts = "".join(f" {n:>9}" for n in (d.images, d.captions, d.missing, d.failed))
        typer.echo(f"{d.name:<{width}}  {d.format:<8}{counts}  {d.source}")
