"""`vstore import clip-retrieval DIR`: vectors computed elsewhere (a GPU cluster) into the database, no
re-encoding. One call to vstore.ingest.importer, a progress bar on stderr, a summary at the end."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from vstore.cli.app import JsonOpt, app, info, print_json, settings

import_app = typer.Typer(
    help="Load embeddings computed elsewhere (clip-retrieval's layout), without re-encoding.",
    no_args_is_help=True,
)
app.add_typer(import_app, name="import")


@import_app.command("clip-retrieval")
def clip_retrieval(
    folder: Annotated[
        Path,
        typer.Argument(metavar="DIR", help="clip-retrieval's output folder: img_emb/, text_emb/, metadata/."),
    ],
    model: Annotated[
        str | None,
        typer.Option("--model", metavar="NAME", help="The open_clip model that encoded the vectors."),
    ] = None,
    pretrained: Annotated[
        str | None,
        typer.Option(
            "--pretrained", metavar="TAG", help="Its pretrained tag (e.g. openai, laion2b_s34b_b79k)."
        ),
    ] = None,
    dataset: Annotated[
        str | None,
        typer.Option("--dataset", metavar="NAME", help="Dataset name (default: the folder's name)."),
    ] = None,
    root: Annotated[
        Path | None,
        typer.Option(
            "--root",
            metavar="PATH",
            help="Where the images are: image_path is stored relative to it, and a later "
            "`vstore ingest PATH` reuses the imported vectors of unchanged files.",
        ),
    ] = None,
    storage: Annotated[
        str | None, typer.Option("--storage", metavar="TYPE", help="vector or halfvec, for a new database.")
    ] = None,
    as_json: JsonOpt = False,
) -> None:
    """Import img_emb/img_emb_N.npy, text_emb/text_emb_N.npy and metadata/metadata_N.parquet shard by shard.
    Every shard is checked first (row counts, dimension, NaN): bad input writes nothing. Re-running adds only
    what is missing."""
    from tqdm import tqdm

    from vstore.ingest.importer import import_clip_retrieval

    with tqdm(unit="row", unit_scale=True, desc="import", disable=None, file=None) as bar:

        def progress(done: int, total: int) -> None:
            bar.total = total
            bar.update(done - bar.n)

        report = import_clip_retrieval(
            settings(),
            folder,
            model=model,
            pretrained=pretrained,
            dataset=dataset,
            root=root,
            storage=storage,
            progress=progress,
        )
    if as_json:
        print_json({**report.__dict__, "rows_per_second": report.rows_per_second})
        return
    info(
        f"{report.dataset}: {report.images_added} images and {report.captions_added} captions added from "
        f"{report.rows} rows in {report.shards} shards ({report.model}) in {report.seconds:.1f}s "
        f"({report.rows_per_second:,.0f} rows/s)"
    )
    if report.images_normalised or report.captions_normalised:
        info(
            f"normalised {report.images_normalised} image and {report.captions_normalised} text vectors that "
            "were not unit length (vstore stores L2-normalised vectors)"
        )
