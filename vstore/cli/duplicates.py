"""`vstore duplicates`: groups of near-identical images for review. Thin: parse, one library call, render."""

from __future__ import annotations

from typing import Annotated

import typer

from vstore.cli.app import app, info, print_json, settings
from vstore.search.duplicates import DEFAULT_MAX_DISTANCE


@app.command()
def duplicates(
    max_distance: Annotated[
        float,
        typer.Option(
            metavar="D", help="Images within cosine distance D of each other are one group (docs/search.md)."
        ),
    ] = DEFAULT_MAX_DISTANCE,
    dataset: Annotated[str | None, typer.Option(help="Only within this dataset (by name).")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="One JSON object on stdout, nothing else.")] = False,
) -> None:
    """List groups of near-duplicate images, each with a suggested keeper (most pixels, then the largest
    file, then the oldest) and every member's distance to it. Deletes and hides nothing."""
    from vstore.search.store import Store

    if not 0.0 <= max_distance < 2.0:
        raise typer.BadParameter("give a cosine distance from 0 to below 2.", param_hint="--max-distance")
    with Store(settings()) as store:
        groups = store.duplicates(max_distance, dataset=dataset)
    if as_json:
        print_json({"groups": [g.as_json() for g in groups]})
        return
    if not groups:
        info(f"no near-duplicates within distance {max_distance}.")
        return
    for n, group in enumerate(groups, 1):
        typer.echo(f"group {n} ({len(group.members)} images)")
        for m in group.members:
            mark = "keep" if m.id == group.keeper else f"{m.distance:.4f}"
            size = f"{m.width}x{m.height}" if m.width and m.height else "?"
            typer.echo(f"  {mark:>6}  {m.id:>8}  {size:>11}  {m.path}")
    info(f"{len(groups)} group(s); nothing was deleted (review them, then remove what you do not want).")
