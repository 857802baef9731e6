"""`vstore ingest PATH`: one call to vstore.ingest.ingest, a progress bar on stderr, a summary at the end."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Annotated, Any

import typer

from vstore.cli.app import app, info, print_json, settings, warn, warn_random_weights

INGEST_HELP = """Embed every image (and caption) under PATH and store them in the database.

PATH is a COCO folder (annotations/captions_<split>.json beside <split>/ image folders, 2014 or 2017
names), any tree of images (jpg, png, webp, bmp, gif, tiff; a same-stem .txt file holds captions, one per
line; a sub-folder's name becomes the image's label), or a .csv/.jsonl manifest of path + caption rows.

COCO: images on disk that no annotation mentions are ingested without captions (counted as
uncaptioned); annotations whose image file is missing are counted and skipped; captions that name an
unknown image id are counted and skipped.

Re-running is cheap and safe: files whose size and mtime are unchanged are not read again, renamed or
copied files reuse their stored embedding, files gone from disk are marked missing (not deleted), and an
interrupted run resumes (each batch is committed on its own). Corrupt, truncated, empty or unreadable
files are recorded as failed rows and listed; the exit code is 1 when any file failed.

The first ingest into an empty database creates it for --model/--pretrained (default ViT-B-32/openai,
downloaded on first use; offline, use --pretrained random or a local checkpoint path). Later ingests use
the model recorded in the database and refuse another one."""


class _Bar:
    """tqdm on stderr fed by the library's progress callback: images/s, captions/s, ETA."""

    def __init__(self) -> None:
        self.bar: Any = None
        self.done = 0

    def __call__(self, event: Any) -> None:
        from tqdm import tqdm

        if self.bar is None:
            # Only on a terminal: redrawn into a file or pipe, a bar fills it with carriage returns.
            self.bar = tqdm(
                total=event.images_total or None,
                unit="img",
                desc="ingest",
                dynamic_ncols=True,
                disable=not sys.stderr.isatty(),
            )
        self.bar.update(event.images_done - self.done)
        self.done = event.images_done
        elapsed = self.bar.format_dict.get("elapsed") or 0.0
        rate = event.captions_encoded / elapsed if elapsed > 0 else 0.0
        self.bar.set_postfix_str(
            f"encoded {event.images_encoded}, captions {event.captions_encoded} ({rate:.1f}/s)"
        )

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()


def _rows_named(format: str) -> str:
    """What names the image files in this format: COCO's annotations, a manifest's rows."""
    return "manifest rows" if format == "manifest" else "annotations"


def _summary(report: Any) -> None:
    splits = f" splits {', '.join(report.splits)}" if report.splits else ""
    where = f"on {report.device}" if report.device else "(model not loaded: nothing to encode)"
    info(f"{report.dataset} ({report.format}{splits}) into {report.model} {where}")
    info(
        f"  images: {report.scanned} found, {report.added} added, {report.updated} updated, "
        f"{report.unchanged} unchanged, {report.renamed} renamed/copied (embedding reused), "
        f"{report.missing} newly missing, {len(report.failed)} failed"
        + (f", {report.imported_adopted} kept their imported vector" if report.imported_adopted else "")
    )
    info(
        f"  captions: {report.captions_added} added, {report.captions_removed} removed (gone from source); "
        f"{report.uncaptioned_images} images without captions; "
        f"{report.annotations_missing_file} {_rows_named(report.format)} naming a missing file skipped; "
        f"{report.captions_unknown_image} captions of unknown images skipped; "
        f"{report.captions_empty} empty captions skipped"
    )
    if report.missing_files:
        more = report.annotations_missing_file - len(report.missing_files)
        named = ", ".join(report.missing_files) + (f" and {more} more" if more > 0 else "")
        warn(f"{_rows_named(report.format)} name files that are not on disk (skipped): {named}")
    if report.captions_invalid or report.captions_duplicate:
        warn(
            f"{report.captions_invalid} captions that are not text (a list, a number) and "
            f"{report.captions_duplicate} repeated captions of the same image were skipped."
        )
    if report.captions_truncated:
        warn(
            f"{report.captions_truncated} captions were longer than the model's text context "
            "and were truncated."
        )
    if report.indexes_rebuilt:
        info(f"  indexes rebuilt after a bulk load: {', '.join(report.indexes_rebuilt)}")
    info(
        f"  time: {report.wall_s:.1f} s wall ({report.model_load_s:.1f} s loading the model, "
        f"{report.index_s:.1f} s rebuilding indexes); "
        f"decode {report.decode_s:.1f} s (workers; model waited "
        f"{report.decode_wait_s:.1f} s), encode {report.encode_s:.1f} s, write {report.write_s:.1f} s; "
        f"{report.images_per_s:.1f} images/s encoded"
    )
    for path, reason in report.failed[:20]:
        info(f"  failed: {path}: {reason}")
    if len(report.failed) > 20:
        info(f"  ... and {len(report.failed) - 20} more (--json lists all)")


@app.command(help=INGEST_HELP)
def ingest(
    path: Annotated[Path, typer.Argument(help="COCO folder, image folder, or .csv/.jsonl manifest.")],
    format: Annotated[
        str | None, typer.Option("--format", help="coco, folder or manifest (default: detected from PATH).")
    ] = None,
    dataset: Annotated[
        str | None, typer.Option(help="Dataset name (default: the folder or manifest name).")
    ] = None,
    split: Annotated[
        list[str] | None,
        typer.Option(help="Only this split (repeatable): a COCO split like val2017, or a top-level folder."),
    ] = None,
    model: Annotated[
        str | None, typer.Option(help="open_clip model for a new database (default ViT-B-32).")
    ] = None,
    pretrained: Annotated[
        str | None,
        typer.Option(help="Weights for a new database: a tag (openai), a checkpoint path, or 'random'."),
    ] = None,
    device: Annotated[
        str | None, typer.Option(metavar="DEVICE", help="auto (cuda when available), cpu or cuda.")
    ] = None,
    batch_size: Annotated[
        int | None, typer.Option(help="Images per encoder batch and per commit (64).")
    ] = None,
    workers: Annotated[
        int | None, typer.Option(help="Decode worker processes (default: half the cores; 0 = decode inline).")
    ] = None,
    rescan: Annotated[
        bool, typer.Option("--rescan", help="Hash every file even when size and mtime are unchanged.")
    ] = False,
    as_json: Annotated[
        bool, typer.Option("--json", help="Print the report as one JSON object on stdout.")
    ] = False,
) -> int:
    from vstore.errors import ConfigError
    from vstore.ingest.pipeline import ingest as run_ingest
    from vstore.ingest.sources import FORMATS

    if format is not None and format not in FORMATS:
        raise ConfigError(f"--format {format!r}: choose one of {', '.join(FORMATS)}.")
    if workers is not None and workers < 0:
        raise ConfigError("--workers must be 0 or more.")
    s = settings(model=model, pretrained=pretrained, device=device, batch_size=batch_size, workers=workers)
    bar = _Bar()
    try:
        report = run_ingest(s, path, format=format, dataset=dataset, split=split, rescan=rescan, progress=bar)
    finally:
        bar.close()
    if report.random_weights:
        warn_random_weights(report.model)
    if as_json:
        print_json(report.as_dict())
    else:
        _summary(report)
    if report.failed:
        info(f"{len(report.failed)} file(s) failed; they are recorded with status 'failed' and their error.")
        return 1
    return 0
