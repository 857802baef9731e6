"""`vstore finetune`: fine-tune the database's model on its own caption-image pairs. Thin: parse, one
library call (vstore.train.finetune), render. Ctrl-C stops after the current step and saves a resumable
state."""

from __future__ import annotations

import math
import signal
from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated, Any

import typer

from vstore.cli.app import app, info, print_json, settings, warn

FINETUNE_HELP = """Fine-tune the database's own CLIP model on its stored caption-image pairs.

Contrastive training with open_clip's model, training transform and ClipLoss, starting from the weights
the database records (an open_clip tag, a local checkpoint, or random). Each step samples one caption per
image. Images are held out by image: a seeded --holdout fraction (default 0.1), a whole --eval-split, or a
whole --eval-dataset; caption->image and image->caption R@1/5/10 and precision@k are measured on them before
and after training. Defaults are the CLIP fine-tuning recipe (Adam(W) lr 1e-5, betas 0.9/0.98, eps 1e-6,
weight decay 0.2, batch 64, 10 epochs). fp16 autocast on CUDA.

The --out directory gets model.pt (an open_clip checkpoint), recipe.json, database.json, scores.json,
history.json and loss.png. Ctrl-C saves a resumable state: continue with --resume --out DIR. Use the
result with `vstore reembed --pretrained DIR`. Example:

  vstore finetune --holdout 0.2 --epochs 40 --lr 1e-3 --batch-size 32 --out runs/shapes"""


class _Bar:
    """tqdm on stderr: steps, loss, steps/s."""

    def __init__(self) -> None:
        self.bar: Any = None

    def __call__(self, event: Any) -> None:
        from tqdm import tqdm

        if event.phase != "train":
            info("scoring the held-out split " + ("before" if event.phase == "score-before" else "after"))
            return
        if self.bar is None:
            # The first step is the start line, not a timed step: counting it from a bar made a moment ago
            # showed tens of thousands of steps/s.
            self.bar = tqdm(total=event.steps_total, initial=event.step, unit="step", desc="finetune")
        else:
            self.bar.update(event.step - self.bar.n)
        self.bar.set_postfix_str(
            f"epoch {event.epoch + 1}, loss {event.loss:.4f}, {event.steps_per_s:.2f} steps/s"
        )

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()
            self.bar = None


def _render(result: Any) -> None:
    split = result.split
    info(
        f"held out: {split['how']}: {split['heldout_images']} images, {split['heldout_captions']} captions; "
        f"trained on {split['train_images']} images, {split['train_captions']} captions ({result.device})"
    )
    if result.epoch_seconds:
        median = sorted(result.epoch_seconds)[len(result.epoch_seconds) // 2]
        info(f"time per epoch: median {median:.1f} s over {len(result.epoch_seconds)} epochs")
    before, after = result.scores["before"], result.scores.get("after", {})
    keys = [k for k in before if not k.startswith("chance")]
    width = max(len(k) for k in keys)
    typer.echo(f"{'held-out metric':<{width}}  before   after    gain")
    for key in keys:
        b, a = before[key], after.get(key, math.nan)
        typer.echo(f"{key:<{width}}  {b:6.3f}  {a:6.3f}  {a - b:+6.3f}")
    chance = before.get("chance.caption_image.R@5")
    if chance is not None:
        typer.echo(f"(chance caption_image.R@5 = {chance:.3f})")
    info(f"wrote {result.out} (weights: {result.model_path})")
    info(f"switch the database to it: vstore reembed --pretrained {result.out}")


@app.command(help=FINETUNE_HELP)
def finetune(
    split: Annotated[str | None, typer.Option("--split", help="Train only on images of this split.")] = None,
    eval_split: Annotated[
        str | None, typer.Option("--eval-split", help="Hold out every image of this split (e.g. val2017).")
    ] = None,
    eval_dataset: Annotated[
        str | None,
        typer.Option(
            "--eval-dataset",
            help="Hold out every image of this dataset; the scores then also include "
            "'search.*', which `vstore eval --dataset NAME` reproduces after the switch.",
        ),
    ] = None,
    holdout: Annotated[
        float | None, typer.Option(help="Hold out this seeded fraction of the images (default 0.1).")
    ] = None,
    epochs: Annotated[int | None, typer.Option(help="Passes over the training images (10).")] = None,
    lr: Annotated[float | None, typer.Option(help="Learning rate, constant (1e-5).")] = None,
    batch_size: Annotated[int | None, typer.Option(help="Image-caption pairs per step (64).")] = None,
    weight_decay: Annotated[float | None, typer.Option(help="Decoupled weight decay (0.2).")] = None,
    lock_image: Annotated[bool, typer.Option("--lock-image", help="Freeze the image tower.")] = False,
    lock_text: Annotated[bool, typer.Option("--lock-text", help="Freeze the text tower.")] = False,
    out: Annotated[Path | None, typer.Option(help="Run directory (default: ./finetune-<UTC time>).")] = None,
    device: Annotated[
        str | None, typer.Option(metavar="DEVICE", help="auto (cuda when available), cpu or cuda.")
    ] = None,
    seed: Annotated[int, typer.Option(help="Seed of the held-out split, data order and crops.")] = 0,
    resume: Annotated[
        bool, typer.Option("--resume", help="Continue the interrupted run in --out (its recipe applies).")
    ] = False,
    as_json: Annotated[bool, typer.Option("--json", help="Print the result as JSON on stdout.")] = False,
) -> int:
    from vstore.errors import ConfigError
    from vstore.train.finetune import Recipe
    from vstore.train.finetune import finetune as run_finetune

    if sum(x is not None for x in (eval_split, eval_dataset, holdout)) > 1:
        raise ConfigError("give one of --eval-split, --eval-dataset and --holdout.")
    if resume and out is None:
        raise ConfigError("--resume needs --out DIR, the directory of the interrupted run.")
    out = out or Path(f"finetune-{datetime.now(UTC):%Y%m%d-%H%M%S}")
    given: dict[str, Any] = dict(epochs=epochs, lr=lr, batch_size=batch_size, weight_decay=weight_decay)
    recipe = Recipe(  # the defaults live in Recipe, once
        **{k: v for k, v in given.items() if v is not None},
        lock_image=lock_image,
        lock_text=lock_text,
        seed=seed,
    )
    stopping = {"asked": False}

    def on_interrupt(_signum: int, _frame: Any) -> None:
        if stopping["asked"]:  # a second Ctrl-C: stop now, without a checkpoint
            raise KeyboardInterrupt
        stopping["asked"] = True
        warn("stopping after this step; saving a resumable state (Ctrl-C again to abort)")

    previous = signal.signal(signal.SIGINT, on_interrupt)
    bar = _Bar()
    try:
        result = run_finetune(
            settings(device=device),
            out,
            recipe,
            train_split=split,
            eval_split=eval_split,
            eval_dataset=eval_dataset,
            holdout=holdout,
            resume=resume,
            progress=bar,
            stop=lambda: stopping["asked"],
        )
    finally:
        bar.close()
        signal.signal(signal.SIGINT, previous)
    if as_json:
        print_json(result.as_dict())
    if result.interrupted:
        info(
            f"interrupted after step {result.steps_done} of {result.steps_total}; "
            f"continue with: vstore finetune --resume --out {result.out}"
        )
        return 130
    if not as_json:
        _render(result)
    return 0
