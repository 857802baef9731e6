"""`vstore reembed`: switch the database to another model, re-embedding every image and caption. Thin:
parse, one library call (vstore.train.reembed), render."""

from __future__ import annotations

from typing import Annotated, Any

import typer

from vstore.cli.app import app, info, print_json, settings, warn

REEMBED_HELP = """Switch the database to another model: every image and caption gets a new vector.

--pretrained is a checkpoint file or a `vstore finetune --out` directory (or an open_clip tag, or random);
--model names the architecture (default: the database's). New vectors are written in committed batches to
shadow tables while search keeps using the old ones; one transaction then swaps them in with the model
record (changing the vector columns' dimension if the new model's differs) and clears the text cache; the
vector indexes are then rebuilt. Interrupted (Ctrl-C, a crash, SIGKILL), nothing is lost: run the same
command again and it continues. Example: vstore reembed --pretrained runs/shapes"""


class _Bar:
    def __init__(self) -> None:
        self.bar: Any = None
        self.phase = ""

    def __call__(self, event: Any) -> None:
        from tqdm import tqdm

        if event.phase != self.phase:
            self.close()
            self.phase = event.phase
            if event.phase in ("swap", "indexes"):
                info("swapping in the new vectors" if event.phase == "swap" else "rebuilding the indexes")
                return
            # Rows done before the first report (a resumed run's, or the first batch) start the bar instead
            # of counting as done in no time: that showed millions of rows/s.
            self.bar = tqdm(total=event.total, initial=event.done, desc=event.phase, unit="row")
        elif self.bar is not None:
            self.bar.update(event.done - self.bar.n)

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()
            self.bar = None


@app.command(help=REEMBED_HELP)
def reembed(
    pretrained: Annotated[
        str, typer.Option(help="The new weights: a checkpoint file or `vstore finetune` directory.")
    ],
    model: Annotated[
        str | None, typer.Option(help="open_clip architecture of the new weights (default: the database's).")
    ] = None,
    device: Annotated[
        str | None, typer.Option(metavar="DEVICE", help="auto (cuda when available), cpu or cuda.")
    ] = None,
    batch_size: Annotated[int | None, typer.Option(help="Rows per encoder batch and commit (64).")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print the report as JSON on stdout.")] = False,
) -> int:
    from vstore.train.reembed import reembed as run_reembed

    bar = _Bar()
    try:
        report = run_reembed(settings(device=device, batch_size=batch_size), pretrained, model, progress=bar)
    finally:
        bar.close()
    if as_json:
        print_json(report.as_dict())
        return 0
    new = report.new_model
    if report.already_switched:
        rebuilt = f"; rebuilt {', '.join(report.indexes_rebuilt)}" if report.indexes_rebuilt else ""
        info(f"the database already holds {new['name']}/{new['pretrained']} vectors{rebuilt}")
        return 0
    if report.discarded_switch:
        warn(f"abandoned an unfinished switch to {report.discarded_switch}")
    old = report.old_model
    info(
        f"switched {old['name']}/{old['pretrained']} (dim {old['dim']}) -> "
        f"{new['name']}/{new['pretrained']} (dim {new['dim']})"
    )
    info(
        f"  {report.images} images, {report.captions} captions re-embedded "
        f"({report.images_encoded} images, {report.captions_encoded} captions by this run); "
        f"text cache cleared ({report.text_cache_cleared}); indexes rebuilt: "
        f"{', '.join(report.indexes_rebuilt) or 'none'}"
    )
    info(
        f"  time: {report.wall_s:.1f} s (model load {report.load_s:.1f} s, "
        f"encode {report.encode_s:.1f} s, swap {report.swap_s:.2f} s, "
        f"indexes {report.index_s:.2f} s)"
    )
    for image_id, reason in report.unreadable[:10]:
        warn(f"image {image_id} could not be read, it has no vector now: {reason}")
    if report.unreadable:
        info("re-run `vstore ingest` on their datasets to mark them missing or read them again")
    return 0
