"""`vstore search`, `vstore embed-text`. Thin: parse, one library call, render."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from vstore.cli.app import (
    TARGET_METAVAR,
    DeviceOpt,
    EfSearchOpt,
    KOpt,
    ProbesOpt,
    app,
    info,
    print_json,
    settings,
    warn,
    warn_random_weights,
)
from vstore.errors import ConfigError
from vstore.search.options import TARGETS, Target

JsonOpt = Annotated[bool, typer.Option("--json", help="One JSON object per line on stdout, nothing else.")]


def _target(value: str) -> Target:
    if value not in TARGETS:
        raise ConfigError(f"unknown target {value!r}; choose images or captions.")
    return value  # type: ignore[return-value]


def _clip(text: str, width: int = 70) -> str:
    text = " ".join(text.split())
    return text if len(text) <= width else text[: width - 1] + "…"


@app.command()
def search(
    text: Annotated[str | None, typer.Argument(help="What to look for, in words (text->image/text).")] = None,
    image: Annotated[
        Path | None, typer.Option("--image", help="Query by an image file (image->image/text).")
    ] = None,
    like: Annotated[int | None, typer.Option("--like", help="Query by a stored image's id.")] = None,
    plus: Annotated[
        list[str] | None,
        typer.Option(
            "--plus",
            metavar="TERM",
            help="Add a text or an image file to the query (repeatable); weight it as 2:'a cat'.",
        ),
    ] = None,
    minus: Annotated[
        list[str] | None,
        typer.Option(
            "--minus", metavar="TERM", help="Move the query away from a text or image file (repeatable)."
        ),
    ] = None,
    target: Annotated[
        str,
        typer.Option("--target", "-t", metavar=TARGET_METAVAR, help="What to return: images or captions."),
    ] = "images",
    k: KOpt = 10,
    dataset: Annotated[
        str | None,
        typer.Option(
            metavar="NAME", help="Only results from this dataset (by name; `vstore datasets` lists them)."
        ),
    ] = None,
    split: Annotated[
        str | None, typer.Option(metavar="NAME", help="Only images of this split (train, val ...).")
    ] = None,
    ef_search: EfSearchOpt = None,
    probes: ProbesOpt = None,
    exact: Annotated[
        bool, typer.Option("--exact", help="Exact scan of every row, no index (slow, exact).")
    ] = False,
    mode: Annotated[
        str,
        typer.Option(
            help="vector (by meaning), text (the captions' words, no model) or hybrid (both, fused by rank)."
        ),
    ] = "vector",
    rrf_k: Annotated[
        int, typer.Option("--rrf-k", help="Hybrid: reciprocal rank fusion constant (higher = flatter).")
    ] = 60,
    label: Annotated[str | None, typer.Option(help="Only images with this label (one of theirs).")] = None,
    taken_after: Annotated[
        str | None,
        typer.Option(
            metavar="DATE", help="Only images taken on or after DATE (YYYY-MM-DD; EXIF date, else mtime)."
        ),
    ] = None,
    taken_before: Annotated[
        str | None, typer.Option(metavar="DATE", help="Only images taken before DATE (YYYY-MM-DD).")
    ] = None,
    min_width: Annotated[
        int | None, typer.Option(metavar="PIXELS", help="Only images at least this wide.")
    ] = None,
    min_height: Annotated[
        int | None, typer.Option(metavar="PIXELS", help="Only images at least this tall.")
    ] = None,
    max_distance: Annotated[
        float | None,
        typer.Option(metavar="D", help="Only hits within cosine distance D (0-2); may return fewer than k."),
    ] = None,
    order: Annotated[
        str, typer.Option(help="similarity (nearest first) or date (newest first).")
    ] = "similarity",
    collapse_duplicates: Annotated[
        bool, typer.Option("--collapse-duplicates", help="One hit per group of near-duplicate images.")
    ] = False,
    explain: Annotated[
        bool,
        typer.Option("--explain", help="Say on stderr how the search ran (HNSW or exact scan, and why)."),
    ] = False,
    device: DeviceOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Search images or captions by text, image file, or stored image, nearest first (cosine distance).

    Examples: vstore search "a dog on a skateboard"; vstore search --image photo.jpg --target captions;
    vstore search --like 42 -k 5 --json. Query arithmetic: vstore search 2:"a cat" --plus beach.jpg
    --minus snow (the weighted sum of the terms' vectors, renormalised; with --plus/--minus the query may
    be TEXT, --image or --like, each with its weight; a weight prefix like 2: reads the same without
    them). Searched texts are cached, so SQL clients can then run
    SELECT * FROM vstore.search_images(vstore.text('a dog on a skateboard'), 10)."""
    from vstore.search.options import ORDERS, parse_date
    from vstore.search.store import SearchOptions, SearchQuery, Store

    if mode not in ("vector", "text", "hybrid"):
        raise typer.BadParameter("choose vector, text or hybrid.", param_hint="--mode")
    if order not in ORDERS:
        raise typer.BadParameter("choose similarity or date.", param_hint="--order")
    query = SearchQuery(text=text, image=image, like=like, plus=plus or (), minus=minus or ())
    options = SearchOptions(
        target=_target(target),
        k=k,
        dataset=dataset,
        split=split,
        ef_search=ef_search,
        probes=probes,
        exact=exact,
        mode=mode,  # type: ignore[arg-type]
        rrf_k=rrf_k,
        label=label,
        taken_after=parse_date(taken_after, "--taken-after") if taken_after else None,
        taken_before=parse_date(taken_before, "--taken-before") if taken_before else None,
        min_width=min_width,
        min_height=min_height,
        max_distance=max_distance,
        order=order,  # type: ignore[arg-type]
        collapse_duplicates=collapse_duplicates,
    )
    with Store(settings(device=device)) as store:
        if store.model.random_weights and mode != "text":
            warn_random_weights(store.model.label)
        result = store.search(query, options)
    if result.uncached:
        warn(
            "this database role may not write the text cache, so the text was searched but not "
            "cached for SQL clients (`vstore embed-text` with the owner's URL caches it)"
        )
    hits = result.hits
    if explain:
        info(f"plan: {result.plan} ({result.took_ms:.1f} ms)")
    if as_json:
        for hit in hits:
            print_json(hit)
        return
    if not hits:
        info("no results (check the --dataset/--split filters, or ingest something first).")
        return
    if target == "captions":
        typer.echo(f"{'#':>3}  {'distance':>8}  {'similarity':>10}  {'id':>8}  {'image':>8}  caption")
        for rank, hit in enumerate(hits, 1):
            typer.echo(
                f"{rank:>3}  {_num(hit.distance, 8)}  {_num(hit.similarity, 10)}  {hit.id:>8}  "
                f"{hit.image_id:>8}  {_clip(hit.text)}"  # type: ignore[union-attr]
            )
    else:
        dated = order == "date"
        typer.echo(
            f"{'#':>3}  {'distance':>8}  {'similarity':>10}  {'id':>8}  "
            + ("taken      " if dated else "")
            + "path"
        )
        for rank, hit in enumerate(hits, 1):
            taken = (hit.taken_at.strftime("%Y-%m-%d ") if hit.taken_at else "-          ") if dated else ""
            typer.echo(
                f"{rank:>3}  {_num(hit.distance, 8)}  {_num(hit.similarity, 10)}  {hit.id:>8}  "
                f"{taken}{hit.path}"
            )


def _num(value: float | None, width: int) -> str:
    """A distance or similarity; '-' for a hit found by words only (--mode text)."""
    return f"{value:{width}.4f}" if value is not None else f"{'-':>{width}}"


@app.command("embed-text")
def embed_text(
    texts: Annotated[list[str], typer.Argument(help="One or more texts to encode and cache.")],
    device: DeviceOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Encode texts into the text_queries cache, so SQL clients can search with vstore.text('...')."""
    from vstore.search.store import Store

    with Store(settings(device=device)) as store:
        cached = store.cache_texts(texts)
    for row in cached:
        if as_json:
            print_json(row)
        else:
            typer.echo(f"{row.id:>6}  {'added ' if row.added else 'cached'}  {row.text}")
    if not as_json:
        info("search from SQL with: SELECT * FROM vstore.search_images(vstore.text('...'), 10);")
