"""`vstore finetune`: contrastive fine-tuning of the database's own open_clip model on its caption-image
pairs, with open_clip's model, training transform and ClipLoss (symmetric cross-entropy over the batch's
image-text similarities, learnable temperature), scored on a held-out split before and after.

Determinism: the image order of an epoch is a function of (seed, epoch), the caption chosen per image and
the training transform's random crop a function of (seed, step). So a run stopped after any step and
resumed from its checkpoint (weights + optimizer state) ends with the same weights as an uninterrupted run.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from psycopg import sql as pgsql

from vstore.config import Settings
from vstore.db.connect import connection, redact, scalar
from vstore.db.migrations import require_model
from vstore.encode.encoder import ModelSpec, OpenClipEncoder, create_model, pick_device
from vstore.errors import ConfigError
from vstore.train import checkpoint as ckpt
from vstore.train.data import (
    CaptionedImage,
    Split,
    epoch_order,
    load_pairs,
    read_pixels,
    sample_captions,
    split_pairs,
)
from vstore.train.scores import gains, retrieval_scores

MAX_LOGIT_SCALE = math.log(100)  # open_clip clamps the learnt temperature to 100


@dataclass(frozen=True)
class Recipe:
    """Hyperparameters; the defaults are the CLIP paper's fine-tuning recipe. Adam with decoupled weight
    decay (AdamW, as CLIP and open_clip train), not applied to gains, biases and the temperature."""

    epochs: int = 10
    lr: float = 1e-5
    betas: tuple[float, float] = (0.9, 0.98)
    eps: float = 1e-6
    weight_decay: float = 0.2
    batch_size: int = 64
    lock_image: bool = False
    lock_text: bool = False
    seed: int = 0

    def check(self) -> None:
        if self.epochs < 1:
            raise ConfigError("--epochs must be at least 1.")
        if not self.lr > 0:
            raise ConfigError("--lr must be positive.")
        if self.weight_decay < 0:
            raise ConfigError("--weight-decay must be 0 or more.")
        if self.batch_size < 2:
            raise ConfigError("--batch-size must be at least 2: a contrastive step needs negatives.")
        if self.lock_image and self.lock_text:
            raise ConfigError("--lock-image and --lock-text together leave nothing to train; choose one.")


@dataclass(frozen=True)
class StepProgress:
    step: int  # steps done
    steps_total: int
    epoch: int
    loss: float
    steps_per_s: float
    phase: str  # "score-before", "train", "score-after"


@dataclass
class FinetuneResult:
    out: Path
    model_path: Path | None  # None when interrupted
    interrupted: bool
    steps_done: int
    steps_total: int
    recipe: dict[str, Any]
    split: dict[str, Any]
    scores: dict[str, Any]
    epoch_seconds: list[float] = field(default_factory=list)
    device: str = "cpu"

    def as_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["out"] = str(self.out)
        data["model_path"] = str(self.model_path) if self.model_path else None
        data["split"] = {k: v for k, v in self.split.items() if k != "heldout_image_ids"}
        return data


Progress = Callable[[StepProgress], None]


def _optimizer(model: Any, recipe: Recipe) -> Any:
    import torch

    def no_decay(name: str, p: Any) -> bool:  # open_clip's exclusion list
        return p.ndim < 2 or "bn" in name or "ln" in name or "bias" in name or "logit_scale" in name

    params = [(n, p) for n, p in model.named_parameters() if p.requires_grad]
    groups = [
        {"params": [p for n, p in params if no_decay(n, p)], "weight_decay": 0.0},
        {"params": [p for n, p in params if not no_decay(n, p)], "weight_decay": recipe.weight_decay},
    ]
    return torch.optim.AdamW(groups, lr=recipe.lr, betas=recipe.betas, eps=recipe.eps)


def _searchable(settings: Settings, split: Split, eval_dataset: str | None) -> list[CaptionedImage] | None:
    """Every searchable image, for scores `vstore eval --dataset` can reproduce (only with a held-out
    dataset: eval draws its queries from a dataset)."""
    if eval_dataset is None:
        return None
    from vstore.encode.paths import filesystem_path

    with connection(settings) as conn:
        rows = conn.execute(
            "SELECT i.id, d.root, i.path, i.split, d.name FROM public.images i "
            "JOIN public.datasets d ON d.id = i.dataset_id "
            "WHERE i.status = 'ok' AND i.embedding IS NOT NULL ORDER BY i.id"
        ).fetchall()
    return [CaptionedImage(int(r[0]), filesystem_path(r[1], r[2]), r[3], r[4], (), ()) for r in rows]


def _database_record(settings: Settings, spec: ModelSpec, split: Split) -> dict[str, Any]:
    from vstore.db.connect import database_url

    with connection(settings) as conn:
        tables = ("datasets", "images", "captions")
        count = pgsql.SQL("SELECT count(*) FROM public.{}")
        counts = {t: int(scalar(conn, count.format(pgsql.Identifier(t)))) for t in tables}
        datasets = [r[0] for r in conn.execute("SELECT name FROM public.datasets ORDER BY name")]
    return {
        "url": redact(database_url(settings)),
        "model": asdict(spec),
        "counts": counts,
        "datasets": datasets,
        "split": split.describe(),
    }


class _Trainer:
    """One run: the model, optimizer and data, and the step function."""

    def __init__(self, spec: ModelSpec, split: Split, recipe: Recipe, device: str) -> None:
        import open_clip
        import torch

        self.spec, self.split, self.recipe, self.device = spec, split, recipe, device
        model, self.train_transform, self.eval_transform = create_model(spec)
        self.model = model.to(device)
        if recipe.lock_image:
            self.model.lock_image_tower()
        if recipe.lock_text:
            self.model.lock_text_tower()
        self.tokenizer = open_clip.get_tokenizer(spec.name)
        self.loss = open_clip.ClipLoss()
        self.optimizer = _optimizer(self.model, recipe)
        self.cuda = device.startswith("cuda")
        self.scaler = torch.amp.GradScaler("cuda") if self.cuda else None
        self.batch = min(recipe.batch_size, len(split.train))
        self.steps_per_epoch = len(split.train) // self.batch
        self.steps_total = self.steps_per_epoch * recipe.epochs

    def scores(self, searchable: list[CaptionedImage] | None) -> dict[str, float]:
        encoder = OpenClipEncoder.around(self.spec, self.model, self.eval_transform, self.device)
        try:
            return retrieval_scores(encoder, self.split.heldout, searchable)
        finally:
            self.model.train()

    def step(self, step: int) -> float:
        """One optimizer step (the `step`-th of the run, counted from 0); returns the loss."""
        import torch

        epoch, index = divmod(step, self.steps_per_epoch)
        order = epoch_order(len(self.split.train), self.recipe.seed, epoch)
        images = [self.split.train[i] for i in order[index * self.batch : (index + 1) * self.batch]]
        torch.manual_seed(self.recipe.seed * 1_000_003 + step)  # the training transform's random crops
        pixels = torch.from_numpy(read_pixels(images, self.train_transform)).to(self.device)
        tokens = self.tokenizer(sample_captions(images, self.recipe.seed, step)).to(self.device)
        self.model.train()
        self.optimizer.zero_grad(set_to_none=True)
        with torch.autocast("cuda", dtype=torch.float16, enabled=self.cuda):
            image_features = self.model.encode_image(pixels, normalize=True)
            text_features = self.model.encode_text(tokens, normalize=True)
            loss = self.loss(image_features, text_features, self.model.logit_scale.exp())
        if self.scaler is not None:
            self.scaler.scale(loss).backward()
            self.scaler.step(self.optimizer)
            self.scaler.update()
        else:
            loss.backward()
            self.optimizer.step()
        with torch.no_grad():
            self.model.logit_scale.clamp_(0, MAX_LOGIT_SCALE)
        return float(loss.detach())

    def state(self, step: int, history: list[dict[str, Any]], epoch_s: list[float]) -> dict[str, Any]:
        return {
            "model": self.model.state_dict(),
            "optimizer": self.optimizer.state_dict(),
            "scaler": self.scaler.state_dict() if self.scaler is not None else {},
            "step": step,
            "history": history,
            "epoch_seconds": epoch_s,
        }

    def restore(self, state: dict[str, Any]) -> None:
        self.model.load_state_dict(state["model"])
        self.optimizer.load_state_dict(state["optimizer"])
        if self.scaler is not None and state.get("scaler"):
            self.scaler.load_state_dict(state["scaler"])


def finetune(
    settings: Settings,
    out: Path,
    recipe: Recipe | None = None,
    *,
    train_split: str | None = None,
    eval_split: str | None = None,
    eval_dataset: str | None = None,
    holdout: float | None = None,
    resume: bool = False,
    progress: Progress | None = None,
    stop: Callable[[], bool] | None = None,
) -> FinetuneResult:
    """Fine-tune the database's model; write the run directory (see train/checkpoint.py). `stop` is asked
    after every step: when it answers True the run saves a resumable state and returns interrupted.
    With `resume`, the recipe and split are read back from `out` (the arguments given are ignored)."""
    import torch

    out = Path(out).expanduser()
    ckpt.prepare_out(out, resume)
    spec = require_model(settings)
    if resume:
        saved = ckpt.read_json(out / ckpt.RECIPE_FILE)
        recipe = Recipe(**{**saved["recipe"], "betas": tuple(saved["recipe"]["betas"])})
        train_split, eval_split = saved["train_split"], saved["eval_split"]
        eval_dataset, holdout = saved["eval_dataset"], saved["holdout"]
        same = ("name", "pretrained", "dim", "checkpoint_sha256")  # older recipes lack from_random
        if any(saved["model"].get(key) != getattr(spec, key) for key in same):
            raise ConfigError(
                f"{out} was started on {saved['model']['name']}/{saved['model']['pretrained']}; this "
                f"database now holds {spec.label}. Resume it against the database it came from."
            )
    recipe = recipe or Recipe()
    recipe.check()
    device = pick_device(settings.device)
    if settings.threads:
        torch.set_num_threads(settings.threads)
    with connection(settings) as conn:
        pairs = load_pairs(conn)
    split = split_pairs(
        pairs,
        train_split=train_split,
        eval_split=eval_split,
        eval_dataset=eval_dataset,
        holdout=holdout,
        seed=recipe.seed,
    )
    trainer = _Trainer(spec, split, recipe, device)
    searchable = _searchable(settings, split, eval_dataset)
    say = progress or (lambda _event: None)
    history: list[dict[str, Any]] = []
    epoch_s: list[float] = []
    first = 0
    if resume:
        state = ckpt.load_torch(out / ckpt.RESUME_FILE)
        if [i.image_id for i in split.heldout] != ckpt.read_json(out / ckpt.DATABASE_FILE)["split"][
            "heldout_image_ids"
        ]:
            raise ConfigError(
                f"the database's captioned images changed since {out} was started (the held-out split "
                "differs); start a new run."
            )
        trainer.restore(state)
        first, history, epoch_s = int(state["step"]), list(state["history"]), list(state["epoch_seconds"])
        before = ckpt.read_json(out / ckpt.SCORES_FILE)["before"]
    else:
        recipe_record = {
            "recipe": asdict(recipe),
            "model": asdict(spec),
            "device": device,
            "train_split": train_split,
            "eval_split": eval_split,
            "eval_dataset": eval_dataset,
            "holdout": holdout,
            "steps_per_epoch": trainer.steps_per_epoch,
            "batch_size_used": trainer.batch,
            "loss": "open_clip.ClipLoss",
            "optimizer": "torch.optim.AdamW (no decay on gains, biases, logit_scale)",
            "schedule": "constant learning rate",
            "precision": "fp16 autocast + GradScaler on cuda, fp32 on cpu",
        }
        ckpt.write_json(out / ckpt.RECIPE_FILE, recipe_record)
        ckpt.write_json(out / ckpt.DATABASE_FILE, _database_record(settings, spec, split))
        say(StepProgress(0, trainer.steps_total, 0, math.nan, 0.0, "score-before"))
        before = trainer.scores(searchable)
        ckpt.write_json(out / ckpt.SCORES_FILE, {"before": before})

    started, epoch_started = time.perf_counter(), time.perf_counter()
    for step in range(first, trainer.steps_total):
        epoch = step // trainer.steps_per_epoch
        loss = trainer.step(step)
        history.append({"step": step + 1, "epoch": epoch, "loss": loss})
        if (step + 1) % trainer.steps_per_epoch == 0:
            epoch_s.append(time.perf_counter() - epoch_started)
            epoch_started = time.perf_counter()
        rate = (step + 1 - first) / max(time.perf_counter() - started, 1e-9)
        say(StepProgress(step + 1, trainer.steps_total, epoch, loss, rate, "train"))
        settings.pause_point("finetune.step", step + 1)  # test-only: crash tests stop here
        if stop is not None and step + 1 < trainer.steps_total and stop():
            ckpt.save_torch(out / ckpt.RESUME_FILE, trainer.state(step + 1, history, epoch_s))
            return FinetuneResult(
                out, None, True, step + 1, trainer.steps_total, asdict(recipe), split.describe(),
                {"before": before}, epoch_s, device,
            )  # fmt: skip

    say(StepProgress(trainer.steps_total, trainer.steps_total, recipe.epochs, math.nan, 0.0, "score-after"))
    after = trainer.scores(searchable)
    model_path = out / ckpt.MODEL_FILE
    ckpt.save_torch(model_path, {"state_dict": trainer.model.state_dict()})
    scores = {"before": before, "after": after, "gain": gains(before, after)}
    ckpt.write_json(out / ckpt.SCORES_FILE, scores)
    ckpt.write_json(out / ckpt.HISTORY_FILE, {"steps": history, "epoch_seconds": epoch_s})
    if history:
        ckpt.plot_loss(history, out / ckpt.PLOT_FILE, f"vstore finetune: {spec.label}, {split.how}")
    (out / ckpt.RESUME_FILE).unlink(missing_ok=True)
    return FinetuneResult(
        out, model_path, False, trainer.steps_total, trainer.steps_total, asdict(recipe), split.describe(),
        scores, epoch_s, device,
    )  # fmt: skip
