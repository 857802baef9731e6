"""`vstore faiss build|search`: the Faiss side index, built from an export or the database."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from vstore.cli.app import (
    TARGET_METAVAR,
    EfSearchOpt,
    JsonOpt,
    KOpt,
    ProbesOpt,
    app,
    info,
    print_json,
    settings,
    warn,
    warn_random_weights,
)
from vstore.db.knobs import DEFAULT_EF_SEARCH
from vstore.errors import ConfigError

faiss_app = typer.Typer(
    help="The Faiss side index: build it from an export or the database, search it.", no_args_is_help=True
)
app.add_typer(faiss_app, name="faiss")
TargetOpt = Annotated[
    str, typer.Option("--target", metavar=TARGET_METAVAR, help="Which vectors: images or captions.")
]


@faiss_app.command("build")
def faiss_build(
    type: Annotated[
        str, typer.Option("--type", metavar="flat|ivf|hnsw|ivfpq", help="flat (exact), ivf, hnsw or ivfpq.")
    ] = "hnsw",
    target: TargetOpt = "images",
    nlist: Annotated[
        int | None, typer.Option(help="IVF lists (default: rows/1000, as pgvector advises).")
    ] = None,
    m: Annotated[
        int | None, typer.Option("--m", help="HNSW M (default: the pgvector index's, else 16).")
    ] = None,
    ef_construction: Annotated[
        int | None, typer.Option(help="HNSW efConstruction (default: the pgvector index's, else 64).")
    ] = None,
    pq_m: Annotated[
        int | None, typer.Option(help="IVF-PQ sub-quantizers; must divide the dimension.")
    ] = None,
    from_export: Annotated[
        Path | None,
        typer.Option(
            "--from", metavar="FOLDER", help="Build from this `vstore export` directory, not the database."
        ),
    ] = None,
    out: Annotated[
        Path | None,
        typer.Option(metavar="FOLDER", help="Index directory (default $VSTORE_HOME/faiss/TARGET-TYPE)."),
    ] = None,
    threads: Annotated[int, typer.Option(help="Faiss build threads.")] = 2,
    as_json: JsonOpt = False,
) -> None:
    """Build a Faiss index over the stored vectors and save it with its id map and manifest."""
    from vstore.compare.side_index import build_side_index

    manifest = build_side_index(
        settings(),
        type,
        table=target,
        from_export=from_export,
        out_dir=out,
        m=m,
        ef_construction=ef_construction,
        nlist=nlist,
        pq_m=pq_m,
        threads=threads,
    )
    if as_json:
        print_json(manifest)
    else:
        info(
            f"faiss {manifest.type} {manifest.params} over {manifest.rows} {manifest.table} in "
            f"{manifest.build_s:.2f}s, {manifest.size_bytes / 1e6:.1f} MB -> {manifest.path}"
        )


@faiss_app.command("search")
def faiss_search(
    text: Annotated[str | None, typer.Argument(help="What to look for, in words.")] = None,
    image: Annotated[Path | None, typer.Option("--image", help="Query by an image file.")] = None,
    like: Annotated[int | None, typer.Option("--like", help="Query by a stored image's id.")] = None,
    k: KOpt = 10,
    index: Annotated[
        Path | None, typer.Option("--index", metavar="FOLDER", help="Index directory (default: --type's).")
    ] = None,
    type: Annotated[
        str,
        typer.Option(
            "--type", metavar="flat|ivf|hnsw|ivfpq", help="Which default index: flat, ivf, hnsw, ivfpq."
        ),
    ] = "hnsw",
    target: TargetOpt = "images",
    probes: ProbesOpt = None,
    ef_search: EfSearchOpt = None,
    rebuild: Annotated[
        bool, typer.Option("--rebuild", help="Rebuild the index first when the database changed since.")
    ] = False,
    as_json: JsonOpt = False,
) -> None:
    """Search a Faiss side index like `vstore search` does the database; answers are database ids.

    An index built from another database is refused; one built before the last changes (an ingest)
    is searched with a warning, or rebuilt first with --rebuild."""
    from vstore.compare.side_index import SideIndex, default_index_dir, describe_hits, rebuild_side_index
    from vstore.search.store import Store

    if sum(q is not None for q in (text, image, like)) != 1:
        raise ConfigError("give exactly one query: a TEXT argument, --image FILE or --like ID.")
    if not 1 <= k <= 1000:
        raise ConfigError("-k must be between 1 and 1000.")
    s = settings()
    side = SideIndex.load(index or default_index_dir(s, target, type))
    with Store(s) as store:
        model = store.model
        side.check_model(model.name, model.pretrained, model.dim)
        stale = side.check_database(s)  # raises ForeignIndex for another database's index
        if stale and rebuild:
            info(f"rebuilding the Faiss index at {side.manifest.path}: {stale}")
            side = rebuild_side_index(s, side)
        elif stale:
            warn(
                f"the Faiss index at {side.manifest.path} is stale: {stale}; its answers miss the changes. "
                "Pass --rebuild (or run `vstore faiss build`) to bring it up to date."
            )
        if model.random_weights:
            warn_random_weights(model.label)
        if text is not None:
            vector = store.embed_text([text])[0]
        elif image is not None:
            vector = store.encode_image(image)
        else:
            vector = store.image_vector(like)  # type: ignore[arg-type]
    exclude = like if side.manifest.table == "images" else None
    hits = side.search(vector, k, nprobe=probes, ef_search=ef_search or DEFAULT_EF_SEARCH, exclude_id=exclude)
    rows = describe_hits(s, side.manifest.table, hits)
    if as_json:
        for row in rows:
            print_json(row)
        return
    what_header = "path" if side.manifest.table == "images" else "caption"
    typer.echo(f"{'#':>3}  {'id':>10}  {'distance':>8}  {what_header}")
    for rank, row in enumerate(rows, start=1):
        what = row.get("path") or row.get("text") or "(no longer in the database)"
        typer.echo(f"{rank:>3}  {row['id']:>10}  {row['distance']:8.4f}  {what}")
